// RMSNorm over rows of an f32 activation. `xRowOffset` lets the final norm read only the selected
// rows (e.g. the last prompt position) without a copy.

import { shapeError } from '../errors.js';
import { type Batch, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';
import { shader } from './shaders.js';

export interface RmsnormArgs {
  x: Tensor;
  weight: Tensor;
  out: Tensor;
  rows: number;
  dim: number;
  eps: number;
  xRowOffset?: number;
}

const WG = 64;

export function rmsnorm(b: Batch, a: RmsnormArgs): void {
  const off = a.xRowOffset ?? 0;
  if (a.dim < 1 || a.rows < 0) throw shapeError(`rmsnorm: bad dims rows=${a.rows} dim=${a.dim}`);
  expectAtLeast('rmsnorm.x', a.x, (off + a.rows) * a.dim, ['f32']);
  expectAtLeast('rmsnorm.weight', a.weight, a.dim, ['f32']);
  expectAtLeast('rmsnorm.out', a.out, a.rows * a.dim, ['f32']);
  const params = packParams([
    ['u32', a.rows],
    ['u32', a.dim],
    ['f32', a.eps],
    ['u32', off],
  ]);
  b.dispatch(b.gpu.pipeline(shader('rmsnorm'), { WG }), params, [a.x.buffer, a.weight.buffer, a.out.buffer], [a.rows]);
}
