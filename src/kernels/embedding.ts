// Token embedding lookup from the (possibly half-precision) table, plus extra f32 rows appended after
// the vocabulary (COMP/sentinel embeddings). Ids are validated on the CPU; the shader still writes
// zeros for any id past both tables instead of reading out of bounds.

import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor, weightDefines } from '../gpu/tensor.js';
import { shader } from './shaders.js';

export interface EmbeddingArgs {
  ids: Tensor;
  idsOffset?: number;
  table: Tensor;
  extra?: Tensor;
  out: Tensor;
  rows: number;
  dim: number;
  vocab: number;
}

const WG = 64;

export function embedding(b: Batch, a: EmbeddingArgs): void {
  const idsOffset = a.idsOffset ?? 0;
  if (a.rows < 0 || a.dim < 1 || a.vocab < 1) {
    throw shapeError(`embedding: bad dims rows=${a.rows} dim=${a.dim} vocab=${a.vocab}`);
  }
  expectAtLeast('embedding.ids', a.ids, idsOffset + a.rows, ['u32']);
  if (a.table.shape.at(-1) !== a.dim) throw shapeError(`embedding.table: rows of [${a.table.shape}] are not ${a.dim}`);
  expectAtLeast('embedding.table', a.table, a.vocab * a.dim, ['f32', 'f16', 'f16p']);
  let extraRows = 0;
  if (a.extra) {
    if (a.extra.shape.length !== 2 || a.extra.shape[1] !== a.dim) {
      throw shapeError(`embedding.extra: expected shape [m, ${a.dim}], got [${a.extra.shape}]`);
    }
    expectAtLeast('embedding.extra', a.extra, 0, ['f32']);
    extraRows = a.extra.shape[0] as number;
  }
  expectAtLeast('embedding.out', a.out, a.rows * a.dim, ['f32']);
  const count = a.rows * a.dim;
  const params = packParams([
    ['u32', count],
    ['u32', a.dim],
    ['u32', a.vocab],
    ['u32', extraRows],
    ['u32', idsOffset],
    ['u32', a.table.rowStride],
  ]);
  // Without extra rows the binding still needs a buffer; the table is bound again (never read as such).
  const extra = a.extra?.buffer ?? a.table.buffer;
  b.dispatch(
    b.gpu.pipeline(shader('embedding'), { WG, W_BINDING: 2, ...weightDefines(a.table) }),
    params,
    [a.ids.buffer, a.table.buffer, extra, a.out.buffer],
    flatGrid(b, count, WG),
  );
}
