import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import { readF32, uploadTensor } from '../../src/gpu/tensor.js';
import { swiglu } from '../../src/kernels/swiglu.js';
import { swigluRef } from '../../src/kernels/swiglu.ref.js';
import { expectClose, randomArray, testGpu } from '../helpers/gpu.js';

async function check(gate: Float32Array, up: Float32Array, n: number, seed: number) {
  const gpu = await testGpu();
  const owner = `test-swiglu-${seed}`;
  const t = (label: string, v: Float32Array) =>
    uploadTensor(gpu, { tag: 'scratch', owner, label, shape: [v.length] }, v);
  // The output is one longer than n: the element past n must keep its value.
  const out = t('out', new Float32Array(n + 1).fill(7));
  const b = new Batch(gpu);
  swiglu(b, { gate: t('gate', gate), up: t('up', up), out, n });
  b.submit();
  const got = await readF32(gpu, out);
  gpu.releaseOwner(owner);
  expectClose(got, [...swigluRef(gate, up, n), 7], 1e-5, 1e-6);
}

describe('swiglu', () => {
  it('matches the CPU reference on random sizes and magnitudes', async () => {
    const arb = fc.record({ n: fc.integer({ min: 1, max: 5000 }), scale: fc.constantFrom(1, 10, 100), seed: fc.nat() });
    await fc.assert(
      fc.asyncProperty(arb, ({ n, scale, seed }) =>
        check(randomArray(n, seed, scale), randomArray(n, seed + 1, 2), n, seed),
      ),
      { numRuns: 20 },
    );
  });

  it('pinned: stays finite and exact in the tails (no exp overflow)', () => {
    const gate = Float32Array.of(-1e30, -1000, -88, -20, 0, 20, 88, 1000, 1e30, 3e38);
    return check(gate, new Float32Array(gate.length).fill(0.5), gate.length, 1);
  });

  it('pinned: more workgroups than one grid dimension allows (2-D grid)', () => {
    const n = 65535 * 64 + 100;
    return check(randomArray(n, 3, 4), randomArray(n, 4), n, 7);
  });

  it('refuses a too-small output', async () => {
    const gpu = await testGpu();
    const t = (n: number) =>
      uploadTensor(gpu, { tag: 'scratch', owner: 'neg', label: 'x', shape: [n] }, new Float32Array(n));
    expect(() => swiglu(new Batch(gpu), { gate: t(8), up: t(8), out: t(4), n: 8 })).toThrow(/swiglu.out/);
    gpu.releaseOwner('neg');
  });
});
