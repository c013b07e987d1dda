// SwiGLU activation of the MLP: out = silu(gate) * up, elementwise.

import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';

const WG = 64;

export function swiglu(b: Batch, a: { gate: Tensor; up: Tensor; out: Tensor; n: number }): void {
  if (a.n < 0) throw shapeError(`swiglu: bad n=${a.n}`);
  expectAtLeast('swiglu.gate', a.gate, a.n, ['f32']);
  expectAtLeast('swiglu.up', a.up, a.n, ['f32']);
  expectAtLeast('swiglu.out', a.out, a.n, ['f32']);
  b.dispatch(
    b.gpu.pipeline('swiglu', { WG }),
    packParams([['u32', a.n]]),
    [a.gate.buffer, a.up.buffer, a.out.buffer],
    flatGrid(b, a.n, WG),
  );
}
