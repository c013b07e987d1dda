// Residual add in place (x += y).

import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';

const WG = 64;

export function addInPlace(b: Batch, a: { x: Tensor; y: Tensor; n: number }): void {
  if (a.n < 0) throw shapeError(`add: bad n=${a.n}`);
  expectAtLeast('add.x', a.x, a.n, ['f32']);
  expectAtLeast('add.y', a.y, a.n, ['f32']);
  if (a.x.buffer === a.y.buffer) throw shapeError('add: x and y must be different buffers');
  b.dispatch(b.gpu.pipeline('add', { WG }), packParams([['u32', a.n]]), [a.x.buffer, a.y.buffer], flatGrid(b, a.n, WG));
}
