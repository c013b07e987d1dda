import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import { createTensor, readF32, uploadTensor } from '../../src/gpu/tensor.js';
import { ropeRef } from '../../src/kernels/rope.ref.js';
import { kvScratchElements, mergeSlots, moveSlots, rerotateSlots } from '../../src/memory/kvops.js';
import { createState, type ForwardState } from '../../src/model/llama.js';
import { ropeInvFreq } from '../../src/model/rope-freq.js';
import type { ModelConfig, RopeScaling } from '../../src/model/types.js';
import { expectClose, randomArray, rng, testGpu } from '../helpers/gpu.js';
import { randomModel } from '../helpers/randomModel.js';

const LLAMA3: RopeScaling = {
  type: 'llama3',
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositions: 8192,
};

interface Shape {
  layers: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  seed: number;
  theta?: number;
  scaling?: RopeScaling;
}

interface Fixture {
  state: ForwardState;
  config: ModelConfig;
  kvDim: number;
  /** CPU copies of every layer's K and V, as uploaded. */
  k: Float32Array[];
  v: Float32Array[];
  owner: string;
}

let states = 0;

const configOf = (sh: Shape): ModelConfig =>
  randomModel({
    hidden: sh.kvHeads * sh.headDim,
    layers: sh.layers,
    heads: sh.kvHeads,
    kvHeads: sh.kvHeads,
    headDim: sh.headDim,
    intermediate: 4,
    vocab: 4,
    seed: sh.seed,
    ropeTheta: sh.theta,
    ropeScaling: sh.scaling,
  }).config;

/** A ForwardState of a small random config whose caches hold random rows (or `keys` for K). */
async function fixture(sh: Shape, keys?: (layer: number) => Float32Array): Promise<Fixture> {
  const gpu = await testGpu();
  const config = configOf(sh);
  const owner = `test-kvops-${++states}`;
  const state = createState(gpu, config, { capacity: sh.capacity, chunk: 1, logitRows: 1, owner });
  const kvDim = sh.kvHeads * sh.headDim;
  const rows = (l: number, salt: number) => randomArray(sh.capacity * kvDim, sh.seed * 100 + l * 2 + salt);
  const k = state.kCache.map((_, l) => keys?.(l) ?? rows(l, 0));
  const v = state.vCache.map((_, l) => rows(l, 1));
  for (const [l, t] of state.kCache.entries()) gpu.write(t.buffer, k[l]!);
  for (const [l, t] of state.vCache.entries()) gpu.write(t.buffer, v[l]!);
  return { state, config, kvDim, k, v, owner };
}

/** Checks every layer's K and V read back against `model` applied to what was uploaded. */
function expectCaches(f: Fixture, got: Caches, model: (a: Float32Array) => Float32Array, rtol: number, atol: number) {
  for (const [l, a] of f.k.entries()) expectClose(got.k[l]!, model(a), rtol, atol);
  for (const [l, a] of f.v.entries()) expectClose(got.v[l]!, model(a), rtol, atol);
}

interface Caches {
  k: Float32Array[];
  v: Float32Array[];
}

/** Reads every cache back and frees the fixture. */
async function readCaches(f: Fixture): Promise<Caches> {
  const gpu = await testGpu();
  const k = await Promise.all(f.state.kCache.map((t) => readF32(gpu, t)));
  const v = await Promise.all(f.state.vCache.map((t) => readF32(gpu, t)));
  gpu.releaseOwner(f.owner);
  return { k, v };
}

const scratchFor = async (f: Fixture, count: number) =>
  createTensor(await testGpu(), {
    tag: 'scratch',
    owner: f.owner,
    label: 'kv-scratch',
    shape: [Math.max(1, kvScratchElements(f.config, count))],
  });

// CPU models of the ops on one layer's rows.
const moveRef = (a: Float32Array, kvDim: number, from: number, to: number, count: number) =>
  a.slice().copyWithin(to * kvDim, from * kvDim, (from + count) * kvDim);

function mergeRef(a: Float32Array, kvDim: number, dst: number, src: number, count: number, w: number) {
  const out = a.slice();
  for (let i = 0; i < count * kvDim; i++) {
    out[dst * kvDim + i] = (1 - w) * (a[dst * kvDim + i] as number) + w * (a[src * kvDim + i] as number);
  }
  return out;
}

/** Rows [first, first+count) of a [capacity, heads*headDim] cache rotated by per-row positions. */
const rotateRef = (a: Float32Array, c: ModelConfig, first: number, positions: Int32Array) =>
  ropeRef(a, positions, invFreqOf(c), positions.length, c.numKvHeads, c.headDim, { rowOffset: first });

const invFreqOf = (c: ModelConfig) => ropeInvFreq(c.headDim, c.ropeTheta, c.ropeScaling);

const invFreqTensor = async (f: Fixture) => {
  const invFreq = invFreqOf(f.config);
  const req = { tag: 'scratch', owner: f.owner, label: 'inv-freq', shape: [invFreq.length] } as const;
  return uploadTensor(await testGpu(), req, invFreq);
};

const shapeArb = fc.record({
  layers: fc.integer({ min: 1, max: 3 }),
  kvHeads: fc.integer({ min: 1, max: 3 }),
  headDim: fc.integer({ min: 1, max: 16 }).map((h) => h * 2),
  capacity: fc.integer({ min: 1, max: 40 }),
  seed: fc.nat({ max: 1e6 }),
});

/** Moves rows, one Batch per call list, and checks every layer's K and V against copyWithin. */
async function checkMoves(sh: Shape, moves: readonly { from: number; to: number; count: number }[]) {
  const f = await fixture(sh);
  const scratch = await scratchFor(f, Math.max(...moves.map((m) => m.count)));
  const b = new Batch(await testGpu());
  for (const m of moves) moveSlots(b, f.state, { ...m, scratch });
  b.submit();
  const got = await readCaches(f);
  const apply = (a: Float32Array) => moves.reduce((acc, m) => moveRef(acc, f.kvDim, m.from, m.to, m.count), a);
  expectCaches(f, got, apply, 0, 0);
}

describe('moveSlots', () => {
  it('matches memmove on every layer for random (often overlapping) ranges', async () => {
    const arb = shapeArb.chain((sh) =>
      fc.integer({ min: 0, max: sh.capacity }).chain((count) =>
        fc.record({
          sh: fc.constant(sh),
          from: fc.integer({ min: 0, max: sh.capacity - count }),
          to: fc.integer({ min: 0, max: sh.capacity - count }),
          count: fc.constant(count),
        }),
      ),
    );
    await fc.assert(
      fc.asyncProperty(arb, ({ sh, ...m }) => checkMoves(sh, [m])),
      { numRuns: 15 },
    );
  });

  it('pinned: overlapping moves right then left in one Batch share the scratch', () =>
    checkMoves({ layers: 2, kvHeads: 2, headDim: 4, capacity: 12, seed: 3 }, [
      { from: 1, to: 4, count: 6 },
      { from: 5, to: 0, count: 7 },
      { from: 0, to: 0, count: 3 },
    ]));
});

describe('mergeSlots', () => {
  it('matches (1 - w) dst + w src on every layer for random ranges and weights', async () => {
    const arb = shapeArb.chain((sh) => {
      const capacity = Math.max(sh.capacity, 2);
      return fc.integer({ min: 0, max: Math.floor(capacity / 2) }).chain((count) =>
        fc.integer({ min: 0, max: capacity - 2 * count }).chain((lo) =>
          fc.record({
            sh: fc.constant({ ...sh, capacity }),
            lo: fc.constant(lo),
            hi: fc.integer({ min: lo + count, max: capacity - count }),
            count: fc.constant(count),
            srcFirst: fc.boolean(),
            weight: fc.oneof(fc.constantFrom(0, 1, 0.5, 1 / 3, 1 / 7), fc.double({ min: 0, max: 1, noNaN: true })),
          }),
        ),
      );
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ sh, lo, hi, count, srcFirst, weight }) => {
        const [src, dst] = srcFirst ? [lo, hi] : [hi, lo];
        const f = await fixture(sh);
        const b = new Batch(await testGpu());
        mergeSlots(b, f.state, { dst, src, count, weight });
        b.submit();
        const got = await readCaches(f);
        expectCaches(f, got, (a) => mergeRef(a, f.kvDim, dst, src, count, weight), 1e-6, 1e-7);
      }),
      { numRuns: 15 },
    );
  });

  it('pinned: merges with weights 1, 1/2, 1/3, 1/4 in one Batch give the mean of the four sources', async () => {
    // Slots 0..1 are the memory; rows 2..9 hold h(1)..h(4), two slots each. Weight 1 replaces the memory.
    const n = 2;
    const f = await fixture({ layers: 2, kvHeads: 2, headDim: 6, capacity: 10, seed: 8 });
    const b = new Batch(await testGpu());
    for (let t = 1; t <= 4; t++) mergeSlots(b, f.state, { dst: 0, src: 2 * t, count: n, weight: 1 / t });
    b.submit();
    const got = await readCaches(f);
    const mean = (a: Float32Array) => {
      const out = a.slice();
      for (let i = 0; i < n * f.kvDim; i++) {
        let sum = 0;
        for (let t = 1; t <= 4; t++) sum += a[2 * t * f.kvDim + i] as number;
        out[i] = sum / 4;
      }
      return out;
    };
    expectCaches(f, got, mean, 1e-6, 1e-6);
  });
});

interface RotateCase {
  sh: Shape;
  /** Position each slot's key was rotated at. */
  positions: Int32Array;
  first: number;
  count: number;
  delta: number;
}

/**
 * Stores keys rotated at `positions`, re-rotates rows [first, first+count) by delta and checks them
 * (1) tightly against the CPU model of the op (a rotation by delta of the stored keys) and (2) against
 * the pre-RoPE keys rotated at p + delta directly. (2) differs from the composed rotation by the f32
 * rounding of three angles (p, delta and p + delta times invFreq), each within 2^-24 of its value.
 */
async function checkRotate(r: RotateCase) {
  const { sh, positions, first, count, delta } = r;
  const pre = Array.from({ length: sh.layers }, (_, l) =>
    randomArray(positions.length * sh.kvHeads * sh.headDim, sh.seed + l),
  );
  const stored = pre.map((x) => rotateRef(x, configOf(sh), 0, positions));
  const f = await fixture(sh, (l) => stored[l]!);
  const b = new Batch(await testGpu());
  rerotateSlots(b, f.state, f.config, await invFreqTensor(f), { first, count, delta });
  b.submit();
  const got = await readCaches(f);
  const deltas = new Int32Array(count).fill(delta);
  const moved = positions.map((p, i) => (i >= first && i < first + count ? p + delta : p));
  let maxPos = 0;
  for (let i = first; i < first + count; i++) maxPos = Math.max(maxPos, Math.abs(positions[i] as number));
  const angleErr = 2 ** -24 * (2 * maxPos + 2 * Math.abs(delta)) * Math.max(...invFreqOf(f.config));
  for (const [l, k] of stored.entries()) {
    expectClose(got.k[l]!, rotateRef(k, f.config, first, deltas), 1e-6, 1e-6);
    expectClose(got.k[l]!, rotateRef(pre[l]!, f.config, 0, moved), 0, 2e-6 + Math.SQRT2 * angleErr);
  }
  for (const [l, v] of f.v.entries()) expectClose(got.v[l]!, v, 0, 0);
}

describe('rerotateSlots', () => {
  it('equals rotating at p + delta, for random shapes, ranges and deltas of either sign', async () => {
    const arb = shapeArb.chain((sh) =>
      fc.integer({ min: 0, max: sh.capacity }).chain((count) =>
        fc.record({
          sh: fc
            .record({
              theta: fc.constantFrom(10000, 500000),
              scaling: fc.constantFrom<RopeScaling>({ type: 'none' }, LLAMA3),
            })
            .map((rope): Shape => ({ ...sh, ...rope })),
          first: fc.integer({ min: 0, max: sh.capacity - count }),
          count: fc.constant(count),
          delta: fc.integer({ min: -5000, max: 5000 }),
          maxPosition: fc.integer({ min: 1, max: 5000 }),
        }),
      ),
    );
    await fc.assert(
      fc.asyncProperty(arb, ({ sh, first, count, delta, maxPosition }) => {
        const r = rng(sh.seed);
        const positions = Int32Array.from({ length: sh.capacity }, () => Math.floor(r() * maxPosition));
        return checkRotate({ sh, positions, first, count, delta });
      }),
      { numRuns: 12 },
    );
  });

  const large: Shape = { layers: 2, kvHeads: 2, headDim: 64, capacity: 8, seed: 4, theta: 500000, scaling: LLAMA3 };
  const largePositions = Int32Array.of(3, 70000, 100000, 131071, 65536, 4096, 131000, 9);

  it('pinned: large positions, negative delta (slots pulled back to small positions)', () =>
    checkRotate({ sh: large, positions: largePositions, first: 1, count: 6, delta: -65530 }));

  it('pinned: large positions, positive delta', () =>
    checkRotate({
      sh: { ...large, theta: 10000, scaling: { type: 'none' } },
      positions: largePositions,
      first: 0,
      count: 8,
      delta: 100000,
    }));

  it('applies each call its own delta inside one Batch (+d then -d is the identity)', async () => {
    const f = await fixture({ layers: 2, kvHeads: 1, headDim: 8, capacity: 5, seed: 12 });
    const tFreq = await invFreqTensor(f);
    const b = new Batch(await testGpu());
    rerotateSlots(b, f.state, f.config, tFreq, { first: 1, count: 3, delta: 1234 });
    rerotateSlots(b, f.state, f.config, tFreq, { first: 1, count: 3, delta: -1234 });
    b.submit();
    const got = await readCaches(f);
    for (const [l, k] of f.k.entries()) expectClose(got.k[l]!, k, 1e-5, 2e-6);
  });
});

describe('kv slot ops', () => {
  it('refuse ranges outside the cache, overlapping merges, small scratch and bad deltas', async () => {
    const f = await fixture({ layers: 1, kvHeads: 1, headDim: 4, capacity: 6, seed: 1 });
    const gpu = await testGpu();
    const b = new Batch(gpu);
    const scratch = await scratchFor(f, 2);
    const invFreq = await invFreqTensor(f);
    expect(() => moveSlots(b, f.state, { from: 4, to: 0, count: 3, scratch })).toThrow(/outside/);
    expect(() => moveSlots(b, f.state, { from: 0, to: 1, count: 3, scratch })).toThrow(/scratch/);
    expect(() => moveSlots(b, f.state, { from: 0, to: 1, count: 1, scratch: f.state.kCache[0]! })).toThrow(
      /cache buffer/,
    );
    expect(() => mergeSlots(b, f.state, { dst: 0, src: 1, count: 2, weight: 0.5 })).toThrow(/overlap/);
    expect(() => mergeSlots(b, f.state, { dst: 0, src: 2, count: 2, weight: 1.5 })).toThrow(/weight/);
    expect(() => rerotateSlots(b, f.state, f.config, invFreq, { first: -1, count: 2, delta: 1 })).toThrow(/outside/);
    expect(() => rerotateSlots(b, f.state, f.config, invFreq, { first: 0, count: 2, delta: 0.5 })).toThrow(/delta/);
    expect(b.length).toBe(0);
    gpu.releaseOwner(f.owner);
  });
});
