import { describe, expect, it, vi } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import { readF32, uploadTensor } from '../../src/gpu/tensor.js';
import { rmsnorm } from '../../src/kernels/rmsnorm.js';
import { rmsnormRef } from '../../src/kernels/rmsnorm.ref.js';
import { expectClose, randomArray, testGpu } from '../helpers/gpu.js';

describe('bind group cache', () => {
  it('creates each bind group once across repeated steps, and none for a destroyed buffer', async () => {
    const gpu = await testGpu();
    const up = (label: string, v: Float32Array) =>
      uploadTensor(gpu, { tag: 'scratch', owner: 'bg', label, shape: [2, 8] }, v);
    const x = up('x', randomArray(16, 1));
    const weight = uploadTensor(gpu, { tag: 'scratch', owner: 'bg', label: 'w', shape: [8] }, randomArray(8, 2));
    const step = (out: typeof x) => {
      const b = new Batch(gpu);
      rmsnorm(b, { x, weight, out, rows: 2, dim: 8, eps: 1e-5 });
      b.submit();
    };
    const created = vi.spyOn(gpu.device, 'createBindGroup');
    try {
      const out1 = up('out1', new Float32Array(16));
      step(out1);
      step(out1);
      step(out1);
      expect(created).toHaveBeenCalledTimes(1);
      // a new output buffer: a new bind group, never the old one bound to freed memory
      gpu.destroyBuffer(out1.buffer);
      const out2 = up('out2', new Float32Array(16));
      step(out2);
      expect(created).toHaveBeenCalledTimes(2);
      const want = rmsnormRef(randomArray(16, 1), randomArray(8, 2), 2, 8, 1e-5);
      expectClose(await readF32(gpu, out2), want, 1e-5, 1e-6);
    } finally {
      created.mockRestore();
      gpu.releaseOwner('bg');
    }
  });
});
