// The repacked Q8_0 / Q4_0 layout that matmul_q reads, as its CPU reference decodes it, equals llama.cpp's
// dequantization of the original GGUF blocks bit for bit (random blocks, all-zero and extreme scales).
import { describe, expect, it } from 'vitest';
import { repackQuant } from '../../src/kernels/matmul_q.js';
import { dequantQuant } from '../../src/kernels/matmul_q.ref.js';
import { dequantize, quantizeQ4_0, quantizeQ8_0 } from '../../src/model/quant.js';
import { mulberry32 } from '../../src/util/random.js';

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('matmul_q layout', () => {
  for (const [format, type, quantize] of [
    ['q8_0', 'Q8_0', quantizeQ8_0],
    ['q4_0', 'Q4_0', quantizeQ4_0],
  ] as const) {
    it(`${type}: repacked blocks decode to llama.cpp's values (odd block counts pad the scales)`, () => {
      const r = mulberry32(3);
      const values = Float32Array.from({ length: 32 * 37 }, (_, i) =>
        i < 32 ? 0 : (r() * 2 - 1) * 10 ** (r() * 8 - 4),
      );
      const blocks = quantize(values);
      const { qs, scales } = repackQuant(format, blocks);
      expect(scales.length).toBe(38);
      expect(bits(dequantQuant(format, qs, scales))).toEqual(bits(dequantize(type, blocks)));
    });
  }
});
