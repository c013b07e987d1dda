// ggml tensor types: their codes and block sizes, CPU dequantization of the types ccmem reads (F32, F16,
// BF16, Q8_0, Q4_0, Q4_K, Q6_K) and the reference quantizers of Q8_0 and Q4_0, all bit-exact with
// llama.cpp's scalar definitions (ggml-quants.c: dequantize_row_*, quantize_row_*_ref). Every float
// operation is rounded to f32 (Math.fround) in the C order of operations, without fused multiply-adds.
// Blocks are little-endian; f16 scales are IEEE halves.
import { modelFormat } from '../errors.js';
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '../gpu/half.js';

/** ggml's type codes (ggml.h enum ggml_type); the gaps are codes ggml retired. */
const TYPE_NAMES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  8: 'Q8_0',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  30: 'BF16',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};

export type QuantType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_K' | 'Q6_K';

/** The types ccmem reads: code, elements per block, bytes per block. */
export const QUANT_TYPES: Record<QuantType, { code: number; blockSize: number; blockBytes: number }> = {
  F32: { code: 0, blockSize: 1, blockBytes: 4 },
  F16: { code: 1, blockSize: 1, blockBytes: 2 },
  BF16: { code: 30, blockSize: 1, blockBytes: 2 },
  Q8_0: { code: 8, blockSize: 32, blockBytes: 34 },
  Q4_0: { code: 2, blockSize: 32, blockBytes: 18 },
  Q4_K: { code: 12, blockSize: 256, blockBytes: 144 },
  Q6_K: { code: 14, blockSize: 256, blockBytes: 210 },
};

export const SUPPORTED_TYPES = Object.keys(QUANT_TYPES) as QuantType[];

/** "Q5_K (13)", or "unknown type 77" for a code ggml does not define. */
export function ggmlTypeLabel(code: number): string {
  const name = TYPE_NAMES[code];
  return name === undefined ? `unknown type ${code}` : `${name} (${code})`;
}

/** The supported type of a ggml code, or undefined. */
export function quantTypeOf(code: number): QuantType | undefined {
  return SUPPORTED_TYPES.find((t) => QUANT_TYPES[t].code === code);
}

/** Bytes that `count` elements of `type` take; `count` must be whole blocks. */
export function quantBytes(type: QuantType, count: number): number {
  const { blockSize, blockBytes } = QUANT_TYPES[type];
  if (count % blockSize !== 0) {
    throw modelFormat(`${count} elements are not a whole number of ${type} blocks of ${blockSize}`);
  }
  return (count / blockSize) * blockBytes;
}

const f = Math.fround;

/** Decodes `bytes` (whole blocks of `type`) into f32 values exactly as llama.cpp does. */
export function dequantize(type: QuantType, bytes: Uint8Array): Float32Array {
  const { blockSize, blockBytes } = QUANT_TYPES[type];
  if (bytes.byteLength % blockBytes !== 0) {
    throw modelFormat(`${bytes.byteLength} bytes are not a whole number of ${type} blocks (${blockBytes} bytes)`);
  }
  const blocks = bytes.byteLength / blockBytes;
  const out = new Float32Array(blocks * blockSize);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const half = (pos: number) => f16BitsToF32(view.getUint16(pos, true));
  switch (type) {
    case 'F32':
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < out.length; i++) out[i] = half(2 * i);
      break;
    case 'BF16':
      for (let i = 0; i < out.length; i++) out[i] = bf16BitsToF32(view.getUint16(2 * i, true));
      break;
    case 'Q8_0':
      for (let b = 0; b < blocks; b++) {
        const at = b * 34;
        const d = half(at);
        for (let j = 0; j < 32; j++) out[b * 32 + j] = f(view.getInt8(at + 2 + j) * d);
      }
      break;
    case 'Q4_0':
      for (let b = 0; b < blocks; b++) {
        const at = b * 18;
        const d = half(at);
        for (let j = 0; j < 16; j++) {
          const q = bytes[at + 2 + j]!;
          out[b * 32 + j] = f(((q & 0xf) - 8) * d); // low nibbles: elements 0-15
          out[b * 32 + j + 16] = f(((q >> 4) - 8) * d); // high nibbles: 16-31
        }
      }
      break;
    case 'Q4_K':
      for (let b = 0; b < blocks; b++) dequantQ4K(bytes, view, b * 144, out, b * 256);
      break;
    case 'Q6_K':
      for (let b = 0; b < blocks; b++) dequantQ6K(bytes, view, b * 210, out, b * 256);
      break;
  }
  return out;
}

/** block_q4_K: f16 d, f16 dmin, scales[12] (8 six-bit scales and 8 six-bit mins, packed), qs[128]. */
function dequantQ4K(bytes: Uint8Array, view: DataView, at: number, out: Float32Array, o: number): void {
  const d = f16BitsToF32(view.getUint16(at, true));
  const dmin = f16BitsToF32(view.getUint16(at + 2, true));
  const sc = at + 4;
  // get_scale_min_k4: sub-blocks 0-3 in the low 6 bits of bytes 0-7; 4-7 split over bytes 8-11 and the top bits
  const scaleMin = (j: number): [number, number] =>
    j < 4
      ? [bytes[sc + j]! & 63, bytes[sc + j + 4]! & 63]
      : [
          (bytes[sc + j + 4]! & 0xf) | ((bytes[sc + j - 4]! >> 6) << 4),
          (bytes[sc + j + 4]! >> 4) | ((bytes[sc + j]! >> 6) << 4),
        ];
  for (let g = 0; g < 4; g++) {
    // 64 elements: the low nibbles of 32 bytes, then their high nibbles, each with its own scale and min
    const [s1, m1] = scaleMin(2 * g);
    const [s2, m2] = scaleMin(2 * g + 1);
    const d1 = f(d * s1);
    const min1 = f(dmin * m1);
    const d2 = f(d * s2);
    const min2 = f(dmin * m2);
    const q = at + 16 + 32 * g;
    for (let l = 0; l < 32; l++) {
      out[o + 64 * g + l] = f(f(d1 * (bytes[q + l]! & 0xf)) - min1);
      out[o + 64 * g + 32 + l] = f(f(d2 * (bytes[q + l]! >> 4)) - min2);
    }
  }
}

/** block_q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], f16 d; values (q - 32) * d * scale. */
function dequantQ6K(bytes: Uint8Array, view: DataView, at: number, out: Float32Array, o: number): void {
  const d = f16BitsToF32(view.getUint16(at + 208, true));
  for (let n = 0; n < 2; n++) {
    const ql = at + 64 * n;
    const qh = at + 128 + 32 * n;
    const sc = at + 192 + 8 * n;
    const y = o + 128 * n;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = bytes[qh + l]!;
      const lo = bytes[ql + l]!;
      const hi = bytes[ql + l + 32]!;
      const q1 = ((lo & 0xf) | ((h & 3) << 4)) - 32;
      const q2 = ((hi & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((lo >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((hi >> 4) | (((h >> 6) & 3) << 4)) - 32;
      out[y + l] = f(f(d * view.getInt8(sc + is)) * q1);
      out[y + l + 32] = f(f(d * view.getInt8(sc + is + 2)) * q2);
      out[y + l + 64] = f(f(d * view.getInt8(sc + is + 4)) * q3);
      out[y + l + 96] = f(f(d * view.getInt8(sc + is + 6)) * q4);
    }
  }
}

function checkBlocks(type: 'Q8_0' | 'Q4_0', values: Float32Array): number {
  if (values.length % 32 !== 0) throw modelFormat(`${type}: ${values.length} values are not whole blocks of 32`);
  return values.length / 32;
}

/**
 * NON_FINITE: when d is an f32 subnormal, 1 / d overflows to infinity and x * id is infinite (or NaN for
 * x = 0). C's cast of such a value to int8_t is undefined; on x86 (and in gguf-py's numpy) it gives 0.
 */

/** C's roundf: halves away from zero. */
const roundf = (x: number) => Math.sign(x) * Math.floor(Math.abs(x) + 0.5);

/** quantize_row_q8_0_ref: d = amax / 127 (stored as f16), q = roundf(x / d) with x / d taken as x * (1 / d). */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  const blocks = checkBlocks('Q8_0', values);
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[b * 32 + j]!));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    view.setUint16(b * 34, f32ToF16Bits(d), true);
    // setInt8 stores a non-finite value as 0 (NON_FINITE)
    for (let j = 0; j < 32; j++) view.setInt8(b * 34 + 2 + j, roundf(f(values[b * 32 + j]! * id)));
  }
  return out;
}

/**
 * quantize_row_q4_0_ref: d = max / -8 where max is the first value of largest magnitude (so it maps to
 * q = 0), q = min(15, trunc(x / d + 8.5)); elements j and j + 16 share byte j (low and high nibble).
 */
export function quantizeQ4_0(values: Float32Array): Uint8Array {
  const blocks = checkBlocks('Q4_0', values);
  const out = new Uint8Array(blocks * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = values[b * 32 + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d ? f(1 / d) : 0;
    view.setUint16(b * 18, f32ToF16Bits(d), true);
    const q = (x: number) => {
      const t = f(f(x * id) + 8.5);
      return Number.isFinite(t) ? Math.min(15, Math.trunc(t)) : 0; // see NON_FINITE
    };
    for (let j = 0; j < 16; j++) {
      out[b * 18 + 2 + j] = q(values[b * 32 + j]!) | (q(values[b * 32 + 16 + j]!) << 4);
    }
  }
  return out;
}
