// Rotary position embedding (Hugging Face rotate_half layout) applied in place on the GPU. The inverse
// frequencies it reads come from the model config (src/model/rope-freq.ts).
import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';
import { shader } from './shaders.js';

export interface RopeArgs {
  x: Tensor;
  /** A u32 tensor whose values the kernel reads as i32 (same bits): negative positions are allowed. */
  positions: Tensor;
  positionsOffset?: number;
  invFreq: Tensor;
  rows: number;
  heads: number;
  headDim: number;
  rowOffset?: number;
}

const WG = 64;

export function rope(b: Batch, a: RopeArgs): void {
  const posOffset = a.positionsOffset ?? 0;
  const rowOffset = a.rowOffset ?? 0;
  if (a.rows < 0 || a.heads < 1 || a.headDim < 2 || a.headDim % 2 !== 0) {
    throw shapeError(`rope: bad dims rows=${a.rows} heads=${a.heads} headDim=${a.headDim} (headDim must be even)`);
  }
  const half = a.headDim / 2;
  expectAtLeast('rope.x', a.x, (rowOffset + a.rows) * a.heads * a.headDim, ['f32']);
  expectAtLeast('rope.positions', a.positions, posOffset + a.rows, ['u32']);
  expectAtLeast('rope.invFreq', a.invFreq, half, ['f32']);
  const count = a.rows * a.heads * half;
  const params = packParams([
    ['u32', count],
    ['u32', a.heads],
    ['u32', half],
    ['u32', posOffset],
    ['u32', rowOffset],
  ]);
  b.dispatch(
    b.gpu.pipeline(shader('rope'), { WG }),
    params,
    [a.x.buffer, a.positions.buffer, a.invFreq.buffer],
    flatGrid(b, count, WG),
  );
}
