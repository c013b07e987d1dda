// CPU reference for matmul (f64 accumulation), with the same bias / accumulate / offsets / gated LoRA
// semantics as src/kernels/matmul.ts.
export interface LoraRef {
  a: Float32Array; // [rank, k]
  b: Float32Array; // [n, rank]
  scale: number;
  gate: Float32Array; // [rows]
  rank: number;
}

export interface MatmulRefOptions {
  bias?: Float32Array;
  xRowOffset?: number;
  outRowOffset?: number;
  /** Initial contents of the output buffer (default zeros of (outRowOffset + rows) * n); not modified. */
  out?: Float32Array;
  accumulate?: boolean;
  lora?: LoraRef;
}

/** Returns the whole output buffer after the product. `w` holds [n, k] row-major (unpadded). */
export function matmulRef(
  x: Float32Array,
  w: Float32Array,
  rows: number,
  n: number,
  k: number,
  opts: MatmulRefOptions = {},
): Float32Array {
  const { bias, xRowOffset = 0, outRowOffset = 0, accumulate = false, lora } = opts;
  const out = opts.out ? opts.out.slice() : new Float32Array((outRowOffset + rows) * n);
  const dot = (a: Float32Array, ai: number, b: Float32Array, bi: number, len: number) => {
    let s = 0;
    for (let i = 0; i < len; i++) s += (a[ai + i] as number) * (b[bi + i] as number);
    return s;
  };
  for (let r = 0; r < rows; r++) {
    const xi = (xRowOffset + r) * k;
    const u =
      lora && lora.gate[r] !== 0 ? Array.from({ length: lora.rank }, (_, j) => dot(x, xi, lora.a, j * k, k)) : null;
    for (let c = 0; c < n; c++) {
      let v = dot(x, xi, w, c * k, k) + (bias ? (bias[c] as number) : 0);
      if (lora && u) {
        let s = 0;
        for (let j = 0; j < lora.rank; j++) s += (u[j] as number) * (lora.b[c * lora.rank + j] as number);
        v += (lora.gate[r] as number) * lora.scale * s;
      }
      const o = (outRowOffset + r) * n + c;
      out[o] = (accumulate ? (out[o] as number) : 0) + v;
    }
  }
  return out;
}
