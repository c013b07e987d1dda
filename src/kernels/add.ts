// Residual add in place (x += y). Also home of `flatGrid`, the workgroup grid shared by the kernels
// that run one invocation per element.

import { shapeError } from '../errors.js';
import type { Batch } from '../gpu/batch.js';
import { packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';

const WG = 64;

/**
 * Workgroups for `invocations` threads in groups of `wg`, folded into x*y so that no dimension exceeds
 * maxComputeWorkgroupsPerDimension. Shaders recover the index as (wid.y * nwg.x + wid.x) * WG + lid and
 * return when it is past the count.
 */
export function flatGrid(b: Batch, invocations: number, wg: number): [number, number] {
  const groups = Math.ceil(invocations / wg);
  const x = Math.min(groups, b.gpu.limits.maxComputeWorkgroupsPerDimension);
  return [x, x ? Math.ceil(groups / x) : 0];
}

export function addInPlace(b: Batch, a: { x: Tensor; y: Tensor; n: number }): void {
  if (a.n < 0) throw shapeError(`add: bad n=${a.n}`);
  expectAtLeast('add.x', a.x, a.n, ['f32']);
  expectAtLeast('add.y', a.y, a.n, ['f32']);
  if (a.x.buffer === a.y.buffer) throw shapeError('add: x and y must be different buffers');
  b.dispatch(b.gpu.pipeline('add', { WG }), packParams([['u32', a.n]]), [a.x.buffer, a.y.buffer], flatGrid(b, a.n, WG));
}
