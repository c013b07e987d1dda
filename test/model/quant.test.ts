// ggml dequantization and the Q8_0 / Q4_0 reference quantizers, bit for bit against gguf-py's numpy
// implementations (test/model/ggml_quants_oracle.py, in the .venv of train/setup.sh), on random blocks
// and edge cases: all-zero and negative-zero blocks, halfway roundings, ties of magnitude, scales that
// overflow or underflow f16, subnormal inputs; plus pinned values from llama.cpp's definitions.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { f32ToF16Bits } from '../../src/gpu/half.js';
import {
  dequantize,
  ggmlTypeLabel,
  QUANT_TYPES,
  type QuantType,
  quantBytes,
  quantizeQ4_0,
  quantizeQ8_0,
  SUPPORTED_TYPES,
} from '../../src/model/quant.js';
import { mulberry32 } from '../../src/util/random.js';

const ROOT = join(import.meta.dirname, '../..');
const PYTHON = join(ROOT, '.venv/bin/python');
const ORACLE = join(import.meta.dirname, 'ggml_quants_oracle.py');

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** Blocks of 32 floats: random scales over 60 decades and the edge cases. */
function quantInputs(seed: number): Float32Array {
  const r = mulberry32(seed);
  const blocks: number[][] = [
    new Array(32).fill(0),
    new Array(32).fill(-0),
    [-0, ...new Array(31).fill(0)],
    // halfway cases: with amax 127, d = 1 and x * id = x exactly
    [127, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, ...Array.from({ length: 23 }, (_, i) => i - 11.5)],
    // equal magnitudes of opposite sign: Q4_0 takes the first one as max
    [-3, 3, ...Array.from({ length: 30 }, (_, i) => (i % 7) - 3)],
    [3, -3, ...Array.from({ length: 30 }, (_, i) => (i % 5) - 2)],
    [1e-42, -3e-43, ...new Array(30).fill(1e-45)], // subnormal f32 inputs
    new Array(32).fill(0).map((_, i) => (i === 5 ? 1e30 : i)), // d overflows f16 to infinity
    new Array(32).fill(0).map((_, i) => (i - 16) * 1e-9), // d underflows to an f16 subnormal or zero
    new Array(32).fill(7.25), // a constant block
  ];
  for (let b = 0; b < 200; b++) {
    const scale = 10 ** (r() * 60 - 30);
    blocks.push(Array.from({ length: 32 }, () => (r() * 2 - 1) * scale));
  }
  return Float32Array.from(blocks.flat());
}

/** Random blocks of `type` with finite f16/bf16/f32 values (NaN payloads are not portable), plus edge scales. */
function randomBlocks(type: QuantType, count: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const { blockBytes } = QUANT_TYPES[type];
  const out = new Uint8Array(count * blockBytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  const view = new DataView(out.buffer);
  const edgeHalves = [0x0000, 0x8000, 0x0001, 0x83ff, 0x7bff, 0xfbff, 0x3c00];
  const finiteHalf = (b: number) => {
    const h = edgeHalves[b] ?? Math.floor(r() * 0x10000);
    return (h & 0x7c00) === 0x7c00 ? h & 0xbfff : h; // exponent 31 (inf/NaN) -> a finite exponent
  };
  for (let b = 0; b < count; b++) {
    const at = b * blockBytes;
    if (type === 'Q8_0' || type === 'Q4_0') view.setUint16(at, finiteHalf(b), true);
    if (type === 'Q4_K') {
      view.setUint16(at, finiteHalf(b), true);
      view.setUint16(at + 2, finiteHalf(b + 3), true);
    }
    if (type === 'Q6_K') view.setUint16(at + 208, finiteHalf(b), true);
  }
  if (type === 'F16') for (let i = 0; i < count; i++) view.setUint16(2 * i, finiteHalf(i), true);
  if (type === 'BF16') {
    for (let i = 0; i < count; i++) {
      const h = view.getUint16(2 * i, true);
      if ((h & 0x7f80) === 0x7f80) view.setUint16(2 * i, h & 0xbfff, true);
    }
  }
  if (type === 'F32') {
    for (let i = 0; i < count; i++) {
      const w = view.getUint32(4 * i, true);
      if ((w & 0x7f800000) === 0x7f800000) view.setUint32(4 * i, w & 0xbfffffff, true);
    }
  }
  return out;
}

/** Element counts per type: a few hundred blocks, the scalar types some thousand values. */
const BLOCKS: Record<QuantType, number> = {
  F32: 4096,
  F16: 4096,
  BF16: 4096,
  Q8_0: 300,
  Q4_0: 300,
  Q4_K: 60,
  Q6_K: 60,
};

describe.skipIf(!existsSync(PYTHON))('ggml quants vs gguf-py (skipped: no .venv, run train/setup.sh)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ccmem-quant-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const values = quantInputs(1);
  const blocks = new Map(SUPPORTED_TYPES.map((t, i) => [t, randomBlocks(t, BLOCKS[t], 10 + i)] as const));
  let ran = false;
  const oracle = (file: string) => {
    if (!ran) {
      writeFileSync(join(dir, 'values.f32'), new Uint8Array(values.buffer));
      for (const [t, b] of blocks) writeFileSync(join(dir, `${t}.blocks`), b);
      const r = spawnSync(PYTHON, [ORACLE, dir], { encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0) throw new Error(`the gguf-py oracle failed (run train/setup.sh):\n${r.stderr}`);
      ran = true;
    }
    return new Uint8Array(readFileSync(join(dir, file)));
  };

  for (const type of SUPPORTED_TYPES) {
    it(`dequantizes ${type} blocks bit-exactly`, () => {
      const want = oracle(`${type}.dequant.f32`);
      const got = dequantize(type, blocks.get(type)!);
      expect(bits(got)).toEqual(bits(new Float32Array(want.buffer, want.byteOffset, want.byteLength / 4)));
    });
  }

  for (const [type, quantize] of [
    ['Q8_0', quantizeQ8_0],
    ['Q4_0', quantizeQ4_0],
  ] as const) {
    it(`quantizes ${type} blocks bit-exactly`, () => {
      const got = quantize(values);
      const want = oracle(`${type}.quant`);
      // gguf-py's Q4_0 takes the block's first value as the max when all are zero, so a block of -0 gives
      // d = +0 there; llama.cpp's C starts from max = +0 and stores d = 0 / -8 = -0 (checked below)
      const fromC = (b: number) => type === 'Q4_0' && values.subarray(b * 32, b * 32 + 32).every((v) => v === 0);
      const size = QUANT_TYPES[type].blockBytes;
      for (let b = 0; b < values.length / 32; b++) {
        if (fromC(b)) continue;
        expect(Array.from(got.subarray(b * size, (b + 1) * size)), `block ${b}`).toEqual(
          Array.from(want.subarray(b * size, (b + 1) * size)),
        );
      }
    });
  }
});

describe('ggml quants: llama.cpp definitions', () => {
  it('Q8_0: d = amax / 127 as f16, q = roundf(x / d), halves away from zero', () => {
    const x = Float32Array.from({ length: 32 }, (_, i) => [127, 0.5, -0.5, 1.5, -2.5][i] ?? 0);
    const q = quantizeQ8_0(x);
    expect(new DataView(q.buffer).getUint16(0, true)).toBe(0x3c00); // 1.0
    expect(Array.from(new Int8Array(q.buffer, 2, 5))).toEqual([127, 1, -1, 2, -3]);
    expect(Array.from(dequantize('Q8_0', q).subarray(0, 5))).toEqual([127, 1, -1, 2, -3]);
  });

  it('Q4_0: d = max / -8, low nibbles are elements 0-15, high nibbles 16-31, value (q - 8) * d', () => {
    const x = new Float32Array(32);
    x[0] = -8; // max: d = 1, q = trunc(x + 8.5)
    x[1] = 7;
    x[16] = 3.4;
    x[17] = 8; // 16.5 -> clamped to 15
    const q = quantizeQ4_0(x);
    expect(new DataView(q.buffer).getUint16(0, true)).toBe(0x3c00);
    expect(q[2]).toBe(0 | (11 << 4));
    expect(q[3]).toBe(15 | (15 << 4));
    const back = dequantize('Q4_0', q);
    expect([back[0], back[1], back[16], back[17], back[2]]).toEqual([-8, 7, 3, 7, 0]);
  });

  it('Q4_0: an all-zero block (also of -0) stores d = -0, like the C reference', () => {
    for (const zero of [0, -0]) {
      const q = quantizeQ4_0(new Float32Array(32).fill(zero));
      expect(new DataView(q.buffer).getUint16(0, true)).toBe(0x8000);
      expect(Array.from(q.subarray(2))).toEqual(new Array(16).fill(0x88));
    }
  });

  it('Q4_K: six-bit scales and mins, 64 elements per pair of sub-blocks', () => {
    const b = new Uint8Array(144);
    const v = new DataView(b.buffer);
    v.setUint16(0, f32ToF16Bits(0.5), true); // d
    v.setUint16(2, f32ToF16Bits(0.25), true); // dmin
    b[4] = 2 | (1 << 6); // scale 0 = 2; its top bits are bits 4-5 of scale 4
    b[8] = 3; // min 0 = 3
    b[12] = 5 | (6 << 4); // scale 4 low bits 5, min 4 low bits 6
    b[16] = 0x7a; // element 0: q = 0xa, element 32: q = 7
    b[16 + 64] = 0x04; // element 128 (sub-block 4): q = 4
    const y = dequantize('Q4_K', b);
    expect(y[0]).toBe(0.5 * 2 * 10 - 0.25 * 3);
    expect(y[32]).toBe(0); // sub-block 1: scale 0, min 0
    expect(y[128]).toBe(0.5 * (5 | (1 << 4)) * 4 - 0.25 * 6);
  });

  it('Q6_K: ql low/high nibbles and qh two-bit pairs, int8 scales per 16 elements', () => {
    const b = new Uint8Array(210);
    const v = new DataView(b.buffer);
    v.setUint16(208, f32ToF16Bits(0.5), true);
    v.setInt8(192, -3); // scale of elements 0-15
    v.setInt8(194, 7); // scale of elements 32-47
    b[0] = 0x05; // element 0 low bits 5, element 64 low bits 0
    b[32] = 0x10; // element 32 low bits 0, element 96 low bits 1
    b[128] = 0b10_01_11_10; // high bits: element 0 -> 2, 32 -> 3, 64 -> 1, 96 -> 2
    const y = dequantize('Q6_K', b);
    expect(y[0]).toBe(0.5 * -3 * (5 + 32 - 32));
    expect(y[32]).toBe(0.5 * 7 * (48 - 32));
  });

  it('refuses partial blocks and names unknown types', () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(
      isCcmemError(
        err(() => dequantize('Q4_K', new Uint8Array(143))),
        'MODEL_FORMAT',
      ),
    ).toBe(true);
    expect(
      isCcmemError(
        err(() => quantizeQ8_0(new Float32Array(31))),
        'MODEL_FORMAT',
      ),
    ).toBe(true);
    expect(
      isCcmemError(
        err(() => quantBytes('Q6_K', 128)),
        'MODEL_FORMAT',
      ),
    ).toBe(true);
    expect(quantBytes('Q6_K', 512)).toBe(420);
    expect(ggmlTypeLabel(13)).toBe('Q5_K (13)');
    expect(ggmlTypeLabel(77)).toBe('unknown type 77');
  });
});
