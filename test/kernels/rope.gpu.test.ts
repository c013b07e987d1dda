import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import { readF32, uploadTensor, uploadU32 } from '../../src/gpu/tensor.js';
import { rope } from '../../src/kernels/rope.js';
import { ropeRef } from '../../src/kernels/rope.ref.js';
import { ropeInvFreq } from '../../src/model/rope-freq.js';
import type { RopeScaling } from '../../src/model/types.js';
import { expectClose, randomArray, rng, testGpu } from '../helpers/gpu.js';

const LLAMA32_SCALING: RopeScaling = {
  type: 'llama3',
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositions: 8192,
};

interface Case {
  rows: number;
  heads: number;
  headDim: number;
  maxPosition: number;
  positionsOffset: number;
  rowOffset: number;
  theta: number;
  scaling: RopeScaling;
  seed: number;
}

type Layout = Pick<Case, 'rows' | 'heads' | 'headDim' | 'positionsOffset' | 'rowOffset' | 'seed'>;

/** Runs the kernel and reads back all of x, so rows outside the rotated range are checked too. */
async function runRope(c: Layout, x: Float32Array, positions: Int32Array, invFreq: Float32Array) {
  const gpu = await testGpu();
  const owner = `test-rope-${c.seed}`;
  const tx = uploadTensor(gpu, { tag: 'scratch', owner, label: 'x', shape: [x.length] }, x);
  const b = new Batch(gpu);
  rope(b, {
    x: tx,
    // The kernel reads the u32 table as i32: negative positions travel as their two's-complement bits.
    positions: uploadU32(gpu, { owner, tag: 'scratch', label: 'pos', shape: [positions.length] }, u32Bits(positions)),
    positionsOffset: c.positionsOffset,
    invFreq: uploadTensor(gpu, { tag: 'scratch', owner, label: 'freq', shape: [invFreq.length] }, invFreq),
    rows: c.rows,
    heads: c.heads,
    headDim: c.headDim,
    rowOffset: c.rowOffset,
  });
  b.submit();
  const got = await readF32(gpu, tx);
  gpu.releaseOwner(owner);
  return got;
}

const u32Bits = (a: Int32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Positions uniform in (-maxPosition, maxPosition): negative ones are deltas that rotate backwards. */
async function check(c: Case) {
  const r = rng(c.seed);
  const x = randomArray((c.rowOffset + c.rows + 1) * c.heads * c.headDim, c.seed + 1);
  const positions = Int32Array.from({ length: c.positionsOffset + c.rows }, () =>
    Math.trunc((r() * 2 - 1) * c.maxPosition),
  );
  const invFreq = ropeInvFreq(c.headDim, c.theta, c.scaling);
  const got = await runRope(c, x, positions, invFreq);
  const want = ropeRef(x, positions, invFreq, c.rows, c.heads, c.headDim, c);
  // Both round the angle to f32 as transformers does; the shader's own cos/sin are good to ~1e-7.
  expectClose(got, want, 1e-6, 1e-6);
}

describe('rope', () => {
  it('matches the CPU reference on random shapes, positions and scalings', async () => {
    const scaling = fc.oneof(
      fc.constant<RopeScaling>({ type: 'none' }),
      fc.record({ type: fc.constant('linear' as const), factor: fc.double({ min: 1, max: 8, noNaN: true }) }),
      fc.constant(LLAMA32_SCALING),
    );
    const arb = fc.record({
      rows: fc.integer({ min: 1, max: 9 }),
      heads: fc.integer({ min: 1, max: 4 }),
      headDim: fc.integer({ min: 8, max: 64 }).map((h) => h * 2),
      maxPosition: fc.integer({ min: 1, max: 4096 }),
      positionsOffset: fc.integer({ min: 0, max: 3 }),
      rowOffset: fc.integer({ min: 0, max: 3 }),
      theta: fc.constantFrom(10000, 100000, 500000),
      scaling,
      seed: fc.nat(),
    });
    await fc.assert(fc.asyncProperty(arb, check), { numRuns: 20 });
  });

  it('pinned: rotates the halves (x[i], x[i + headDim/2]) by position * invFreq[i]', async () => {
    const c: Layout = { rows: 1, heads: 1, headDim: 4, positionsOffset: 1, rowOffset: 0, seed: 5 };
    const x = Float32Array.of(1, 2, 3, 4);
    const got = await runRope(c, x, Int32Array.of(99, 3), Float32Array.of(1, 0.5));
    const [c0, s0, c1, s1] = [Math.cos(3), Math.sin(3), Math.cos(1.5), Math.sin(1.5)];
    expectClose(got, [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1], 1e-6, 1e-6);
  });

  it('pinned: a negative position rotates backwards (u32 bits 0xfffffffd read as -3)', async () => {
    const c: Layout = { rows: 1, heads: 1, headDim: 4, positionsOffset: 0, rowOffset: 0, seed: 6 };
    const got = await runRope(c, Float32Array.of(1, 2, 3, 4), Int32Array.of(-3), Float32Array.of(1, 0.5));
    const [c0, s0, c1, s1] = [Math.cos(3), Math.sin(3), Math.cos(1.5), Math.sin(1.5)];
    expectClose(got, [1 * c0 + 3 * s0, 2 * c1 + 4 * s1, 3 * c0 - 1 * s0, 4 * c1 - 2 * s1], 1e-6, 1e-6);
  });

  it('rotating by -p undoes rotating by p, at large positions too', async () => {
    const c: Layout = { rows: 6, heads: 2, headDim: 64, positionsOffset: 0, rowOffset: 0, seed: 11 };
    const x = randomArray(c.rows * c.heads * c.headDim, 12);
    const p = Int32Array.of(0, 1, 17, 4095, 65536, 131071);
    const invFreq = ropeInvFreq(c.headDim, 500000, LLAMA32_SCALING);
    const there = await runRope(c, x, p, invFreq);
    const back = await runRope(
      c,
      there,
      p.map((v) => -v),
      invFreq,
    );
    // Exact inverse up to the kernel's cos/sin accuracy: both angles are the same f32, negated.
    expectClose(back, x, 1e-5, 2e-6);
  });

  it('stays accurate at large positions (angles far outside [-pi, pi])', () =>
    check({
      rows: 4,
      heads: 2,
      headDim: 64,
      maxPosition: 131072,
      positionsOffset: 0,
      rowOffset: 0,
      theta: 500000,
      scaling: LLAMA32_SCALING,
      seed: 9,
    }));

  it('refuses an odd head dimension', async () => {
    const gpu = await testGpu();
    const t = uploadTensor(gpu, { tag: 'scratch', owner: 'neg', label: 'x', shape: [6] }, new Float32Array(6));
    const pos = uploadU32(gpu, { tag: 'scratch', owner: 'neg', label: 'p', shape: [1] }, Uint32Array.of(0));
    expect(() => rope(new Batch(gpu), { x: t, positions: pos, invFreq: t, rows: 1, heads: 2, headDim: 3 })).toThrow(
      /headDim/,
    );
    gpu.releaseOwner('neg');
  });
});

describe('ropeInvFreq', () => {
  it('none: theta^(-2i/d)', () => {
    expectClose(ropeInvFreq(8, 10000, { type: 'none' }), [1, 0.1, 0.01, 0.001], 1e-6, 0);
  });

  it('linear: divides every frequency by the factor', () => {
    const plain = ropeInvFreq(64, 10000, { type: 'none' });
    expectClose(
      ropeInvFreq(64, 10000, { type: 'linear', factor: 4 }),
      plain.map((f) => f / 4),
      1e-7,
      0,
    );
  });

  it("llama3: Llama-3.2-1B's frequencies as transformers computes them (float32)", () => {
    // From _compute_llama3_parameters transcribed to numpy float32 (theta 500000, head_dim 64): 0 and 14
    // unchanged (short wavelengths), 15..17 interpolated, 18 and 31 divided by the factor.
    const pinned: [number, number][] = [
      [0, 1.0],
      [14, 0.0032114461064338684],
      [15, 0.0012905480107292533],
      [16, 0.000429556705057621],
      [17, 9.708286233944818e-5],
      [18, 1.9461638657958247e-5],
      [31, 9.41830720080361e-8],
    ];
    const f = ropeInvFreq(64, 500000, LLAMA32_SCALING);
    expectClose(
      pinned.map(([i]) => f[i] as number),
      pinned.map(([, v]) => v),
      2e-6,
      0,
    );
  });
});
