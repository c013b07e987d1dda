// matmul_q (Q8_0 / Q4_0 blocks dequantized in the loop) against its CPU reference over random shapes,
// rows, options and both formats; the fused SwiGLU; the decode shape; bad shapes refused. The weights are
// real llama.cpp blocks (quantized with src/model/quant.ts); the reference's reading of the repacked
// layout equals llama.cpp's dequantization bit for bit (test/kernels/matmul_q.test.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { Batch } from '../../src/gpu/batch.js';
import { readF32, uploadTensor } from '../../src/gpu/tensor.js';
import { matmul } from '../../src/kernels/matmul.js';
import { matmulRef } from '../../src/kernels/matmul.ref.js';
import { matmulQ, type QuantFormat, repackQuant, uploadQuantMatrix } from '../../src/kernels/matmul_q.js';
import { dequantQuant, matmulQRef } from '../../src/kernels/matmul_q.ref.js';
import { quantizeQ4_0, quantizeQ8_0 } from '../../src/model/quant.js';
import { expectClose, randomArray, testGpu } from '../helpers/gpu.js';

interface Case {
  format: QuantFormat;
  rows: number;
  n: number;
  blocks: number; // k = 32 * blocks
  bias: boolean;
  accumulate: boolean;
  xRowOffset: number;
  outRowOffset: number;
  swiglu: boolean;
  seed: number;
}

const quantize = (format: QuantFormat, v: Float32Array) => (format === 'q8_0' ? quantizeQ8_0(v) : quantizeQ4_0(v));

async function check(c: Case) {
  const gpu = await testGpu();
  const owner = `test-matmul-q-${c.seed}`;
  const k = 32 * c.blocks;
  const up = (label: string, shape: number[], v: Float32Array) =>
    uploadTensor(gpu, { tag: 'scratch', owner, label, shape }, v);
  const wRows = c.swiglu ? 2 * c.n : c.n;
  // weights of fan-in scale, so the dots stay O(1) for every k
  const blocks = quantize(c.format, randomArray(wRows * k, c.seed + 1, Math.sqrt(3 / k)));
  const x = randomArray((c.xRowOffset + c.rows) * k, c.seed);
  const bias = c.bias ? randomArray(c.n, c.seed + 2) : undefined;
  const outRows = c.outRowOffset + c.rows;
  const out0 = randomArray(outRows * c.n, c.seed + 3);
  const out = up('out', [outRows, c.n], out0);
  const batch = new Batch(gpu);
  matmulQ(batch, {
    x: up('x', [c.xRowOffset + c.rows, k], x),
    w: uploadQuantMatrix(gpu, { tag: 'scratch', owner, label: 'w' }, c.format, [wRows, k], blocks),
    out,
    rows: c.rows,
    n: c.n,
    k,
    bias: bias && up('bias', [c.n], bias),
    accumulate: c.accumulate,
    xRowOffset: c.xRowOffset,
    outRowOffset: c.outRowOffset,
    swiglu: c.swiglu,
  });
  batch.submit();
  const got = await readF32(gpu, out);
  gpu.releaseOwner(owner);
  const want = matmulQRef(x, { format: c.format, ...repackQuant(c.format, blocks) }, c.rows, c.n, k, {
    bias,
    accumulate: c.accumulate,
    xRowOffset: c.xRowOffset,
    outRowOffset: c.outRowOffset,
    out: out0,
    swiglu: c.swiglu,
  });
  expectClose(got, want, 1e-5, 2e-6 * (c.swiglu ? k : Math.sqrt(k)));
}

const arb = fc.record({
  format: fc.constantFrom<QuantFormat>('q8_0', 'q4_0'),
  rows: fc.integer({ min: 1, max: 9 }),
  n: fc.integer({ min: 1, max: 300 }),
  blocks: fc.integer({ min: 1, max: 24 }),
  bias: fc.boolean(),
  accumulate: fc.boolean(),
  xRowOffset: fc.integer({ min: 0, max: 3 }),
  outRowOffset: fc.integer({ min: 0, max: 3 }),
  swiglu: fc.constant(false),
  seed: fc.nat(),
});

describe('matmul_q', () => {
  it('matches the CPU reference on random shapes, formats and options', async () => {
    await fc.assert(fc.asyncProperty(arb, check), { numRuns: 30 });
  });

  it('fused gate/up + SwiGLU matches the two products and SwiGLU', async () => {
    const swiglu = arb.map((c) => ({ ...c, swiglu: true, bias: false, accumulate: false }));
    await fc.assert(fc.asyncProperty(swiglu, check), { numRuns: 10 });
  });

  it.each(['q8_0', 'q4_0'] as const)('decode shape (rows 1, k = 576, n = 1027) in %s, accumulated', (format) =>
    check({
      format,
      rows: 1,
      n: 1027,
      blocks: 18,
      bias: false,
      accumulate: true,
      xRowOffset: 0,
      outRowOffset: 5,
      swiglu: false,
      seed: 8,
    }),
  );

  it.each(['q8_0', 'q4_0'] as const)(
    'through matmul() in %s: row-gated LoRA, bias, accumulate, offsets',
    async (format) => {
      const gpu = await testGpu();
      const owner = `test-matmul-q-lora-${format}`;
      const up = (label: string, shape: number[], v: Float32Array) =>
        uploadTensor(gpu, { tag: 'scratch', owner, label, shape }, v);
      const [rows, n, k, rank, xOff, outOff] = [7, 45, 96, 5, 3, 1];
      const blocks = quantize(format, randomArray(n * k, 2, Math.sqrt(3 / k)));
      const x = randomArray((xOff + rows) * k, 1);
      const bias = randomArray(n, 3);
      const out0 = randomArray((outOff + rows) * n, 4);
      const a = randomArray(rank * k, 5, 1 / Math.sqrt(k));
      const lb = randomArray(n * rank, 6);
      const gate = Float32Array.from([0, 1, 0, 0, 0, 1, 1]);
      const out = up('out', [outOff + rows, n], out0);
      const batch = new Batch(gpu);
      matmul(batch, {
        x: up('x', [xOff + rows, k], x),
        w: uploadQuantMatrix(gpu, { tag: 'scratch', owner, label: 'w' }, format, [n, k], blocks),
        out,
        rows,
        n,
        k,
        bias: up('bias', [n], bias),
        accumulate: true,
        xRowOffset: xOff,
        outRowOffset: outOff,
        lora: {
          a: up('a', [rank, k], a),
          b: up('b', [n, rank], lb),
          gate: up('gate', [rows], gate),
          u: up('u', [rows, rank], new Float32Array(rows * rank).fill(Number.NaN)), // gate-0 rows never read it
          scale: 1.5,
        },
      });
      batch.submit();
      const got = await readF32(gpu, out);
      gpu.releaseOwner(owner);
      const { qs, scales } = repackQuant(format, blocks);
      const want = matmulRef(x, dequantQuant(format, qs, scales), rows, n, k, {
        bias,
        accumulate: true,
        xRowOffset: xOff,
        outRowOffset: outOff,
        out: out0,
        lora: { a, b: lb, gate, scale: 1.5, rank },
      });
      expectClose(got, want, 1e-5, 2e-6 * Math.sqrt(k));
    },
  );

  it('refuses bad shapes', async () => {
    const gpu = await testGpu();
    const owner = 'test-matmul-q-bad';
    const x = uploadTensor(gpu, { tag: 'scratch', owner, label: 'x', shape: [2, 64] }, new Float32Array(128));
    const out = uploadTensor(gpu, { tag: 'scratch', owner, label: 'out', shape: [2, 4] }, new Float32Array(8));
    const w = uploadQuantMatrix(
      gpu,
      { tag: 'scratch', owner, label: 'w' },
      'q8_0',
      [4, 64],
      quantizeQ8_0(new Float32Array(256)),
    );
    const refused = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return isCcmemError(e, 'SHAPE');
      }
      return false;
    };
    const b = new Batch(gpu);
    expect(refused(() => matmulQ(b, { x, w, out, rows: 2, n: 4, k: 48 }))).toBe(true); // k not whole blocks
    expect(refused(() => matmulQ(b, { x, w, out, rows: 2, n: 5, k: 64 }))).toBe(true); // w has 4 rows
    expect(refused(() => matmulQ(b, { x, w, out, rows: 3, n: 4, k: 64 }))).toBe(true); // x holds 2 rows
    expect(refused(() => matmulQ(b, { x, w, out, rows: 2, n: 2, k: 64, swiglu: true, accumulate: true }))).toBe(true);
    expect(refused(() => matmulQ(b, { x, w, out: x, rows: 1, n: 4, k: 64 }))).toBe(true);
    const bad = (shape: [number, number], bytes: number) => () =>
      uploadQuantMatrix(gpu, { tag: 'scratch', owner, label: 'bad' }, 'q4_0', shape, new Uint8Array(bytes));
    expect(refused(bad([4, 40], 90))).toBe(true); // columns not whole blocks
    expect(refused(bad([4, 64], 100))).toBe(true); // 4 x 2 blocks are 144 bytes
    matmulQ(b, { x, w, out, rows: 2, n: 4, k: 64 });
    b.submit();
    expect(Array.from(await readF32(gpu, out))).toEqual(new Array(8).fill(0)); // zero weights
    gpu.releaseOwner(owner);
  });
});
