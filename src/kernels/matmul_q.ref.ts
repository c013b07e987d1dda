// CPU reference for matmul_q (f64 accumulation) over the repacked layout the kernel reads (repackQuant):
// each block's 32 weights as d * q (Q8_0: q the int8 of the words; Q4_0: byte j's low nibble is element j,
// its high nibble element j + 16, q - 8), with matmul's bias / accumulate / offsets and the fused SwiGLU.
// The tests hold dequantQuant to llama.cpp's dequantization (src/model/quant.ts) bit for bit.
import { f16BitsToF32 } from '../gpu/half.js';
import { type MatmulRefOptions, matmulRef } from './matmul.ref.js';
import type { QuantFormat } from './matmul_q.js';
import { swigluRef } from './swiglu.ref.js';

/** The weights of repacked blocks (row-major, 32 per block), as f32. */
export function dequantQuant(format: QuantFormat, qs: Uint32Array, scales: Uint16Array): Float32Array {
  const words = format === 'q8_0' ? 8 : 4;
  const count = qs.length / words;
  const out = new Float32Array(count * 32);
  const bytes = new Uint8Array(qs.buffer, qs.byteOffset, qs.byteLength);
  for (let b = 0; b < count; b++) {
    const d = f16BitsToF32(scales[b]!);
    const q = bytes.subarray(b * words * 4, (b + 1) * words * 4);
    for (let j = 0; j < 32; j++) {
      const v = format === 'q8_0' ? (q[j]! << 24) >> 24 : j < 16 ? (q[j]! & 15) - 8 : (q[j - 16]! >> 4) - 8;
      out[b * 32 + j] = v * d;
    }
  }
  return out;
}

/**
 * The whole output buffer after the product; W ([n, k], or [2n, k] with swiglu) as repacked blocks. With
 * swiglu, rows [outRowOffset, outRowOffset + rows) become silu(x Wg^T) * (x Wu^T).
 */
export function matmulQRef(
  x: Float32Array,
  w: { format: QuantFormat; qs: Uint32Array; scales: Uint16Array },
  rows: number,
  n: number,
  k: number,
  opts: Omit<MatmulRefOptions, 'lora'> & { swiglu?: boolean } = {},
): Float32Array {
  const weights = dequantQuant(w.format, w.qs, w.scales);
  if (!opts.swiglu) return matmulRef(x, weights, rows, n, k, opts);
  const o = { xRowOffset: opts.xRowOffset };
  const gate = matmulRef(x, weights.subarray(0, n * k), rows, n, k, o);
  const up = matmulRef(x, weights.subarray(n * k, 2 * n * k), rows, n, k, o);
  const outRowOffset = opts.outRowOffset ?? 0;
  const out = opts.out ? opts.out.slice() : new Float32Array((outRowOffset + rows) * n);
  out.set(swigluRef(gate, up, rows * n), outRowOffset * n);
  return out;
}
