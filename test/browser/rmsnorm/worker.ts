// Runs the rmsnorm kernel on WebGPU inside a module worker and compares it with the CPU reference.
import { Batch } from '../../../src/gpu/batch.js';
import { createTensor, readF32, uploadTensor } from '../../../src/gpu/tensor.js';
import { rmsnorm } from '../../../src/kernels/rmsnorm.js';
import { rmsnormRef } from '../../../src/kernels/rmsnorm.ref.js';
import { serveRequests, withGpu } from '../worker-kit.js';

export interface RmsnormCase {
  rows: number;
  dim: number;
  xRowOffset: number;
  /** (xRowOffset + rows) * dim values. */
  x: Float32Array;
  weight: Float32Array;
}

export interface RmsnormReport {
  adapter: string;
  f16: boolean;
  /** Per case: max |gpu - ref| / (1 + |ref|) over all outputs. */
  maxErrors: number[];
}

const EPS = 1e-5;

serveRequests<RmsnormCase[]>((cases) =>
  withGpu(async (gpu): Promise<RmsnormReport> => {
    const maxErrors: number[] = [];
    for (const [i, c] of cases.entries()) {
      const owner = `browser-rmsnorm-${i}`;
      const x = uploadTensor(gpu, { tag: 'scratch', owner, label: 'x', shape: [c.xRowOffset + c.rows, c.dim] }, c.x);
      const weight = uploadTensor(gpu, { tag: 'weights', owner, label: 'w', shape: [c.dim] }, c.weight);
      const out = createTensor(gpu, { tag: 'scratch', owner, label: 'y', shape: [c.rows, c.dim] });
      const b = new Batch(gpu);
      rmsnorm(b, { x, weight, out, rows: c.rows, dim: c.dim, eps: EPS, xRowOffset: c.xRowOffset });
      b.submit();
      const got = await readF32(gpu, out);
      gpu.releaseOwner(owner);
      const want = rmsnormRef(c.x.subarray(c.xRowOffset * c.dim), c.weight, c.rows, c.dim, EPS);
      let worst = 0;
      for (let j = 0; j < want.length; j++) {
        const e = want[j] as number;
        worst = Math.max(worst, Math.abs((got[j] as number) - e) / (1 + Math.abs(e)));
      }
      maxErrors.push(worst);
    }
    return { adapter: gpu.adapterName, f16: gpu.features.f16, maxErrors };
  }),
);
