// CPU reference for RoPE (rotate_half layout). The angle is rounded to f32 as in transformers, which
// computes inv_freq @ positions in float32; cos/sin and the rotation are in f64.
export interface RopeRefOptions {
  positionsOffset?: number;
  rowOffset?: number;
}

/**
 * Returns a copy of `x` with rows [rowOffset, rowOffset + rows) rotated. Positions are read as i32, as
 * the kernel reads its u32 table, so a Uint32Array holding the bits of a negative value works too.
 */
export function ropeRef(
  x: Float32Array,
  positions: Uint32Array | Int32Array,
  invFreq: Float32Array,
  rows: number,
  heads: number,
  headDim: number,
  opts: RopeRefOptions = {},
): Float32Array {
  const { positionsOffset = 0, rowOffset = 0 } = opts;
  const half = headDim / 2;
  const out = x.slice();
  for (let r = 0; r < rows; r++) {
    const pos = (positions[positionsOffset + r] as number) | 0;
    for (let h = 0; h < heads; h++) {
      const base = ((rowOffset + r) * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos * (invFreq[i] as number));
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const x1 = x[base + i] as number;
        const x2 = x[base + i + half] as number;
        out[base + i] = x1 * c - x2 * s;
        out[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}
