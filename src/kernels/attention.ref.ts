// CPU reference for attention (plain loops, f64 accumulation, two-pass softmax).
export interface AttentionRefArgs {
  q: Float32Array; // [queries, heads, headDim]
  k: Float32Array; // [>= keys, kvHeads, headDim]
  v: Float32Array;
  queries: number;
  keys: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  scale?: number;
  /** [queries, ceil(keys/32)] u32 words; replaces causality when given. */
  mask?: Uint32Array;
}

export function attentionRef(a: AttentionRefArgs): Float32Array {
  const { queries, keys, heads, kvHeads, headDim } = a;
  const scale = a.scale ?? 1 / Math.sqrt(headDim);
  const words = Math.ceil(keys / 32);
  const past = keys - queries;
  const sees = (t: number, j: number) =>
    a.mask ? (((a.mask[t * words + (j >> 5)] as number) >>> (j & 31)) & 1) === 1 : j <= past + t;
  const out = new Float32Array(queries * heads * headDim);
  const scores = new Float64Array(keys);
  for (let t = 0; t < queries; t++) {
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / (heads / kvHeads));
      const qb = (t * heads + h) * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < keys; j++) {
        if (!sees(t, j)) continue;
        const kb = (j * kvHeads + kvh) * headDim;
        let s = 0;
        for (let d = 0; d < headDim; d++) s += (a.q[qb + d] as number) * (a.k[kb + d] as number);
        scores[j] = s * scale;
        max = Math.max(max, s * scale);
      }
      if (max === Number.NEGATIVE_INFINITY) continue; // sees no key: zeros
      let sum = 0;
      const acc = new Float64Array(headDim);
      for (let j = 0; j < keys; j++) {
        if (!sees(t, j)) continue;
        const w = Math.exp((scores[j] as number) - max);
        sum += w;
        const vb = (j * kvHeads + kvh) * headDim;
        for (let d = 0; d < headDim; d++) acc[d] = (acc[d] as number) + w * (a.v[vb + d] as number);
      }
      for (let d = 0; d < headDim; d++) out[qb + d] = (acc[d] as number) / sum;
    }
  }
  return out;
}
