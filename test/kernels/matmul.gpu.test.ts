import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import { roundToF16 } from '../../src/gpu/half.js';
import { readF32, type Tensor, uploadTensor, type WeightFormat } from '../../src/gpu/tensor.js';
import { type LoraArgs, MATMUL_VARIANTS, type MatmulVariant, matmul } from '../../src/kernels/matmul.js';
import { type LoraRef, matmulRef } from '../../src/kernels/matmul.ref.js';
import { swigluRef } from '../../src/kernels/swiglu.ref.js';
import { expectClose, randomArray, rng, testGpu, weightFormats } from '../helpers/gpu.js';

interface Case {
  rows: number;
  n: number;
  k: number;
  format: WeightFormat;
  bias: boolean;
  accumulate: boolean;
  rank: number; // 0: no LoRA
  xRowOffset: number;
  outRowOffset: number;
  seed: number;
  /** Fills lora.u with NaN first: rows whose gate is 0 must not read it. */
  poisonU?: boolean;
  gates?: number[];
  /** Forced design; the chooser's pick when absent. */
  variant?: MatmulVariant;
  /** Fused gate/up + SwiGLU: w has 2n rows; bias, accumulate and rank must be off. */
  swiglu?: boolean;
  /** Weights in the blocked layout (needs a half format, n in 32s, k in 8s). */
  blocked?: boolean;
}

async function check(c: Case) {
  const gpu = await testGpu();
  const owner = `test-matmul-${c.seed}`;
  const up = (label: string, shape: number[], v: Float32Array, format: WeightFormat = 'f32', blocked = false) =>
    uploadTensor(gpu, { tag: 'scratch', owner, label, shape, format, blocked }, v);
  const xRows = c.xRowOffset + c.rows;
  const outRows = c.outRowOffset + c.rows;
  const x = randomArray(xRows * c.k, c.seed);
  const wRows = c.swiglu ? 2 * c.n : c.n;
  const w = randomArray(wRows * c.k, c.seed + 1);
  const bias = c.bias ? randomArray(c.n, c.seed + 2) : undefined;
  const out0 = randomArray(outRows * c.n, c.seed + 3);
  let lora: LoraArgs | undefined;
  let loraRef: LoraRef | undefined;
  if (c.rank > 0) {
    const r = rng(c.seed + 4);
    // Scaled as a trained LoRA-down roughly is, so that u and the LoRA term stay O(1) for every k.
    const a = randomArray(c.rank * c.k, c.seed + 5, 1 / Math.sqrt(c.k));
    const b = randomArray(c.n * c.rank, c.seed + 6);
    const gate = Float32Array.from(c.gates ?? Array.from({ length: c.rows }, () => (r() < 0.5 ? 0 : 1)));
    const scale = 0.25 + r() * 2;
    const u = new Float32Array(c.rows * c.rank).fill(c.poisonU ? Number.NaN : 0);
    lora = {
      a: up('lora.a', [c.rank, c.k], a),
      b: up('lora.b', [c.n, c.rank], b),
      gate: up('gate', [c.rows], gate),
      u: up('u', [c.rows, c.rank], u),
      scale,
    };
    loraRef = { a, b, gate, scale, rank: c.rank };
  }
  const tOut: Tensor = up('out', [outRows, c.n], out0);
  const batch = new Batch(gpu);
  matmul(batch, {
    x: up('x', [xRows, c.k], x),
    w: up('w', [wRows, c.k], w, c.format, c.blocked),
    out: tOut,
    rows: c.rows,
    n: c.n,
    k: c.k,
    bias: bias && up('bias', [c.n], bias),
    accumulate: c.accumulate,
    xRowOffset: c.xRowOffset,
    outRowOffset: c.outRowOffset,
    lora,
    variant: c.variant,
    swiglu: c.swiglu,
  });
  batch.submit();
  const got = await readF32(gpu, tOut);
  gpu.releaseOwner(owner);
  const wRef = c.format === 'f32' ? w : roundToF16(w);
  const want = c.swiglu
    ? swigluWant(x, wRef, c, out0)
    : matmulRef(x, wRef, c.rows, c.n, c.k, {
        bias,
        accumulate: c.accumulate,
        xRowOffset: c.xRowOffset,
        outRowOffset: c.outRowOffset,
        out: out0,
        lora: loraRef,
      });
  // f32 accumulation over k terms of size <= 1: rounding grows about like sqrt(k). SwiGLU multiplies two
  // such sums (each about sqrt(k) in size), so its absolute error grows like k.
  expectClose(got, want, 1e-5, 2e-6 * (c.swiglu ? c.k : Math.sqrt(c.k)));
}

/** Rows [0, outRowOffset) of out keep their values; each computed row is silu(x Wg^T) * (x Wu^T). */
function swigluWant(x: Float32Array, w: Float32Array, c: Case, out0: Float32Array): Float32Array {
  const half = c.n * c.k;
  const o = { xRowOffset: c.xRowOffset };
  const gate = matmulRef(x, w.subarray(0, half), c.rows, c.n, c.k, o);
  const upPart = matmulRef(x, w.subarray(half), c.rows, c.n, c.k, o);
  const want = out0.slice();
  want.set(swigluRef(gate, upPart, c.rows * c.n), c.outRowOffset * c.n);
  return want;
}

describe('matmul', async () => {
  const formats = weightFormats(await testGpu());

  it('matches the CPU reference on random shapes, formats and options', async () => {
    const arb = fc.record({
      rows: fc.integer({ min: 1, max: 9 }),
      n: fc.integer({ min: 1, max: 600 }),
      k: fc.integer({ min: 1, max: 1000 }),
      format: fc.constantFrom(...formats),
      bias: fc.boolean(),
      accumulate: fc.boolean(),
      rank: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 16 })),
      xRowOffset: fc.integer({ min: 0, max: 3 }),
      outRowOffset: fc.integer({ min: 0, max: 3 }),
      seed: fc.nat(),
      variant: fc.constantFrom(...MATMUL_VARIANTS),
      blocked: fc.boolean(),
    });
    // the 8-wide designs need k in whole 8s; blocked weights halves, n in 32s and k in 8s, and no coop
    const fitting = arb.map((c) => {
      const blocked = c.blocked && c.format !== 'f32' && c.variant !== 'coop';
      const k = c.variant === 'tiled' && !blocked ? c.k : Math.ceil(c.k / 8) * 8;
      return { ...c, blocked, k, n: blocked ? Math.ceil(c.n / 32) * 32 : c.n };
    });
    await fc.assert(fc.asyncProperty(fitting, check), { numRuns: 36 });
  });

  it.each(MATMUL_VARIANTS)(
    '%s: LoRA on some rows, bias, accumulate and offsets, u poisoned on gate-0 rows',
    (variant) =>
      check({
        rows: 7,
        n: 45,
        k: 96,
        format: formats.at(-1)!,
        bias: true,
        accumulate: true,
        rank: 5,
        xRowOffset: 3,
        outRowOffset: 1,
        seed: 17,
        poisonU: true,
        gates: [0, 1, 0, 0, 0, 1, 1],
        variant,
      }),
  );

  it('fused gate/up + SwiGLU matches the two products and SwiGLU, for every design and format', async () => {
    const arb = fc.record({
      rows: fc.integer({ min: 1, max: 9 }),
      n: fc.integer({ min: 1, max: 300 }),
      k: fc.integer({ min: 1, max: 80 }).map((k) => k * 8),
      format: fc.constantFrom(...formats),
      outRowOffset: fc.integer({ min: 0, max: 3 }),
      xRowOffset: fc.integer({ min: 0, max: 3 }),
      seed: fc.nat(),
      variant: fc.constantFrom(...MATMUL_VARIANTS),
    });
    const swiglu = (c: typeof arb extends fc.Arbitrary<infer T> ? T : never) => {
      const blocked = c.format !== 'f32' && c.variant !== 'coop' && c.seed % 2 === 0;
      const n = blocked ? Math.ceil(c.n / 32) * 32 : c.n;
      return check({ ...c, n, bias: false, accumulate: false, rank: 0, swiglu: true, blocked });
    };
    await fc.assert(fc.asyncProperty(arb, swiglu), { numRuns: 12 });
  });

  it.each(formats)('decode shape of the 8-wide designs (k = 576, n = 1027) in %s', async (format) => {
    for (const variant of ['tiled8', 'coop'] as const) {
      await check({
        rows: 1,
        n: 1027,
        k: 576,
        format,
        bias: false,
        accumulate: true,
        rank: 0,
        xRowOffset: 0,
        outRowOffset: 5,
        seed: 8,
        variant,
      });
    }
  });

  it.each(formats)('decode shape (rows 1, n and k not multiples of 4) in %s', (format) =>
    check({
      rows: 1,
      n: 1027,
      k: 579,
      format,
      bias: false,
      accumulate: false,
      rank: 0,
      xRowOffset: 0,
      outRowOffset: 0,
      seed: 3,
    }),
  );

  it('rows with gate 0 never read u (u poisoned with NaN)', () =>
    check({
      rows: 6,
      n: 37,
      k: 64,
      format: 'f32',
      bias: true,
      accumulate: true,
      rank: 4,
      xRowOffset: 1,
      outRowOffset: 2,
      seed: 11,
      poisonU: true,
      gates: [0, 0, 0, 0, 1, 0],
    }));

  it('pinned: odd k with LoRA, accumulate and both offsets in f16p', () =>
    check({
      rows: 5,
      n: 9,
      k: 13,
      format: 'f16p',
      bias: true,
      accumulate: true,
      rank: 3,
      xRowOffset: 2,
      outRowOffset: 1,
      seed: 42,
    }));

  it('refuses a weight whose row length is not k, and a too-small output', async () => {
    const gpu = await testGpu();
    const t = (label: string, shape: number[]) =>
      uploadTensor(gpu, { tag: 'scratch', owner: 'neg', label, shape }, new Float32Array(shape[0]! * shape[1]!));
    const x = t('x', [2, 8]);
    expect(() => matmul(new Batch(gpu), { x, w: t('w', [8, 4]), out: t('o', [2, 4]), rows: 2, n: 4, k: 8 })).toThrow(
      /matmul.w/,
    );
    expect(() => matmul(new Batch(gpu), { x, w: t('w2', [4, 8]), out: t('o2', [1, 4]), rows: 2, n: 4, k: 8 })).toThrow(
      /matmul.out/,
    );
    const blockedW = uploadTensor(
      gpu,
      { tag: 'scratch', owner: 'neg', label: 'wb', shape: [32, 8], format: 'f16p', blocked: true },
      new Float32Array(256),
    );
    expect(() =>
      matmul(new Batch(gpu), {
        x: t('xb', [1, 8]),
        w: blockedW,
        out: t('ob', [1, 32]),
        rows: 1,
        n: 32,
        k: 8,
        variant: 'coop',
      }),
    ).toThrow(/row-major/);
    const w = t('w3', [4, 12]);
    const out = t('o3', [2, 4]);
    expect(() =>
      matmul(new Batch(gpu), { x: t('x3', [2, 12]), w, out, rows: 2, n: 4, k: 12, variant: 'coop' }),
    ).toThrow(/multiples of 8/);
    gpu.releaseOwner('neg');
  });
});
