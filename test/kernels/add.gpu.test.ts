import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import { readF32, uploadTensor } from '../../src/gpu/tensor.js';
import { addInPlace } from '../../src/kernels/add.js';
import { addRef } from '../../src/kernels/add.ref.js';
import { expectClose, randomArray, testGpu } from '../helpers/gpu.js';

/** x holds `extra` elements past n, which must keep their values. */
async function check(n: number, extra: number, seed: number) {
  const gpu = await testGpu();
  const owner = `test-add-${seed}`;
  const x = randomArray(n + extra, seed, 10);
  const y = randomArray(n, seed + 1, 10);
  const tx = uploadTensor(gpu, { tag: 'scratch', owner, label: 'x', shape: [x.length] }, x);
  const b = new Batch(gpu);
  addInPlace(b, { x: tx, y: uploadTensor(gpu, { tag: 'scratch', owner, label: 'y', shape: [n] }, y), n });
  b.submit();
  const got = await readF32(gpu, tx);
  gpu.releaseOwner(owner);
  // One f32 rounding on either side.
  expectClose(got, addRef(x, y, n), 1.2e-7, 0);
}

describe('add', () => {
  it('matches the CPU reference on random sizes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 20000 }), fc.integer({ min: 0, max: 5 }), fc.nat(), check),
      { numRuns: 20 },
    );
  });

  it('pinned: more workgroups than one grid dimension allows (2-D grid)', () => check(65535 * 64 + 100, 3, 7));

  it('refuses y shorter than n', async () => {
    const gpu = await testGpu();
    const t = (n: number) =>
      uploadTensor(gpu, { tag: 'scratch', owner: 'neg', label: 'x', shape: [n] }, new Float32Array(n));
    expect(() => addInPlace(new Batch(gpu), { x: t(8), y: t(4), n: 8 })).toThrow(/add.y/);
    gpu.releaseOwner('neg');
  });
});
