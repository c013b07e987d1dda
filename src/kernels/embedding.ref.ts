// CPU reference for the embedding lookup (ids past the table and the extra rows give zero rows).
export function embeddingRef(
  ids: Uint32Array,
  table: Float32Array,
  extra: Float32Array | undefined,
  rows: number,
  dim: number,
  vocab: number,
  idsOffset = 0,
): Float32Array {
  const out = new Float32Array(rows * dim);
  const extraRows = extra ? extra.length / dim : 0;
  for (let r = 0; r < rows; r++) {
    const id = ids[idsOffset + r] as number;
    if (id < vocab) out.set(table.subarray(id * dim, (id + 1) * dim), r * dim);
    else if (extra && id - vocab < extraRows)
      out.set(extra.subarray((id - vocab) * dim, (id - vocab + 1) * dim), r * dim);
  }
  return out;
}
