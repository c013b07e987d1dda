import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import { readF32, uploadTensor } from '../../src/gpu/tensor.js';
import { rmsnorm } from '../../src/kernels/rmsnorm.js';
import { rmsnormRef } from '../../src/kernels/rmsnorm.ref.js';
import { expectClose, randomArray, testGpu } from '../helpers/gpu.js';

async function check(rows: number, dim: number, seed: number, xRowOffset = 0) {
  const gpu = await testGpu();
  const owner = `test-rmsnorm-${seed}`;
  const x = randomArray((rows + xRowOffset) * dim, seed, 3);
  const w = randomArray(dim, seed + 1);
  const tx = uploadTensor(gpu, { tag: 'scratch', owner, label: 'x', shape: [rows + xRowOffset, dim] }, x);
  const tw = uploadTensor(gpu, { tag: 'weights', owner, label: 'w', shape: [dim] }, w);
  const ty = uploadTensor(gpu, { tag: 'scratch', owner, label: 'y', shape: [rows, dim] }, new Float32Array(rows * dim));
  const b = new Batch(gpu);
  rmsnorm(b, { x: tx, weight: tw, out: ty, rows, dim, eps: 1e-5, xRowOffset });
  b.submit();
  const got = await readF32(gpu, ty);
  gpu.releaseOwner(owner);
  expectClose(got, rmsnormRef(x.subarray(xRowOffset * dim), w, rows, dim, 1e-5), 1e-5, 1e-5);
}

describe('rmsnorm', () => {
  it('matches the CPU reference on random shapes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 700 }), fc.nat(), (r, d, s) =>
        check(r, d, s),
      ),
      { numRuns: 12 },
    );
  });

  it('reads rows from an offset (final norm on the last position only)', () => check(1, 64, 7, 5));

  it('pinned: dim not a multiple of the workgroup', () => check(3, 65, 42));

  it('refuses a too-small output', async () => {
    const gpu = await testGpu();
    const t = uploadTensor(gpu, { tag: 'scratch', owner: 'neg', label: 'x', shape: [2, 8] }, new Float32Array(16));
    const small = uploadTensor(gpu, { tag: 'scratch', owner: 'neg', label: 'y', shape: [1, 8] }, new Float32Array(8));
    const w = uploadTensor(gpu, { tag: 'weights', owner: 'neg', label: 'w', shape: [8] }, new Float32Array(8));
    expect(() => rmsnorm(new Batch(gpu), { x: t, weight: w, out: small, rows: 2, dim: 8, eps: 1e-5 })).toThrow(
      /rmsnorm.out/,
    );
    gpu.releaseOwner('neg');
  });
});
