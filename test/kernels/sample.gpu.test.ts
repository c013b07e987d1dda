import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import type { Gpu } from '../../src/gpu/device.js';
import { type Tensor, uploadTensor, uploadU32 } from '../../src/gpu/tensor.js';
import { clearSeen, markSeen, type SamplingOptions, sample } from '../../src/kernels/sample.js';
import { sampleRef } from '../../src/kernels/sample.ref.js';
import { randomArray, rng, testGpu } from '../helpers/gpu.js';

const OUT_SLOTS = 4;

async function readU32(gpu: Gpu, t: Tensor): Promise<Uint32Array> {
  return new Uint32Array(await gpu.read(t.buffer));
}

interface Setup {
  gpu: Gpu;
  logits: Tensor;
  seen: Tensor;
  out: Tensor;
}

/** Uploads `rows` rows of logits (the sampled row is the last), a seen set and a sentinel-filled output. */
async function setup(owner: string, rowsOfLogits: Float32Array, vocab: number, seen: Uint32Array): Promise<Setup> {
  const gpu = await testGpu();
  const rows = rowsOfLogits.length / vocab;
  return {
    gpu,
    logits: uploadTensor(gpu, { tag: 'scratch', owner, label: 'logits', shape: [rows, vocab] }, rowsOfLogits),
    seen: uploadU32(gpu, { tag: 'scratch', owner, label: 'seen', shape: [vocab] }, seen),
    out: uploadU32(
      gpu,
      { tag: 'scratch', owner, label: 'out', shape: [OUT_SLOTS] },
      new Uint32Array(OUT_SLOTS).fill(7777),
    ),
  };
}

interface Case {
  vocab: number;
  seed: number;
  scale: number;
  ties: boolean;
  seenFraction: number;
  options: SamplingOptions;
  step: number;
}

function caseData(c: Case) {
  const r = rng(c.seed);
  const all = randomArray(2 * c.vocab, c.seed, c.scale);
  if (c.ties) for (let i = 0; i < all.length; i++) all[i] = Math.round(all[i] as number);
  const seen = Uint32Array.from({ length: c.vocab }, () => (r() < c.seenFraction ? 1 : 0));
  return { all, row: all.subarray(c.vocab), seen };
}

/** Samples row 1 on the GPU; returns the id, the out buffer and the seen set afterwards. */
async function gpuSample(c: Case, data: ReturnType<typeof caseData>) {
  const owner = `test-sample-${c.seed}`;
  const s = await setup(owner, data.all, c.vocab, data.seen);
  const b = new Batch(s.gpu);
  const outIndex = c.seed % OUT_SLOTS;
  sample(b, { ...s, logitsRow: 1, vocab: c.vocab, outIndex, options: c.options, step: c.step });
  b.submit();
  const out = await readU32(s.gpu, s.out);
  const seenAfter = await readU32(s.gpu, s.seen);
  s.gpu.releaseOwner(owner);
  const id = out[outIndex] as number;
  expect(id).toBeLessThan(c.vocab);
  // Only out[outIndex] and seen[id] change.
  const expectedOut = new Uint32Array(OUT_SLOTS).fill(7777);
  expectedOut[outIndex] = id;
  const expectedSeen = Uint32Array.from(data.seen);
  expectedSeen[id] = 1;
  expect(Array.from(out)).toEqual(Array.from(expectedOut));
  expect(Array.from(seenAfter)).toEqual(Array.from(expectedSeen));
  return id;
}

/** The GPU must pick the reference id; a difference is only accepted where u sits on a CDF boundary. */
async function checkAgainstRef(c: Case) {
  const data = caseData(c);
  const got = await gpuSample(c, data);
  const ref = sampleRef(data.row, data.seen, c.options, c.step);
  if (got === ref.id) return;
  const g = ref.kept.indexOf(got);
  const e = ref.kept.indexOf(ref.id);
  expect(g, `GPU chose ${got}, not among the kept ids`).toBeGreaterThanOrEqual(0);
  expect(Math.abs(g - e), `GPU chose ${got}, reference ${ref.id}`).toBe(1);
  const boundary = ref.cdf[Math.min(g, e)] as number;
  expect(Math.abs(ref.u - boundary), `u=${ref.u} vs CDF boundary ${boundary}`).toBeLessThan(1e-5);
  console.warn(`float-boundary case: GPU ${got}, reference ${ref.id}, u=${ref.u}, boundary ${boundary}`);
}

const caseArb = (greedy: boolean) =>
  fc.record({
    vocab: fc.integer({ min: 1, max: 3000 }),
    seed: fc.nat(),
    scale: fc.constantFrom(1, 4, 20),
    ties: fc.boolean(),
    seenFraction: fc.constantFrom(0, 0.1, 0.7),
    step: fc.nat(),
    options: fc.record({
      temperature: greedy ? fc.constant(0) : fc.double({ min: 0.05, max: 3, noNaN: true }),
      topK: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3100 })),
      topP: fc.oneof(fc.constant(1), fc.double({ min: 0.01, max: 1, noNaN: true })),
      repetitionPenalty: fc.oneof(fc.constant(1), fc.double({ min: 0.5, max: 2, noNaN: true })),
      seed: fc.nat(),
    }),
  });

describe('sample', () => {
  it('greedy (with penalty) equals the CPU reference exactly', async () => {
    await fc.assert(fc.asyncProperty(caseArb(true), checkAgainstRef), { numRuns: 25 });
  });

  it('stochastic sampling equals the CPU reference', async () => {
    await fc.assert(fc.asyncProperty(caseArb(false), checkAgainstRef), { numRuns: 40 });
  });

  it('pinned: the penalty moves the argmax, ties go to the lowest id', async () => {
    const logits = Float32Array.from([2, 1.5, -1, -0.5, 1.5]);
    const options = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 2, seed: 0 };
    const c: Case = { vocab: 5, seed: 1, scale: 1, ties: false, seenFraction: 0, options, step: 0 };
    const data = {
      all: Float32Array.from([...logits, ...logits]),
      row: logits,
      seen: Uint32Array.from([1, 0, 0, 1, 0]),
    };
    expect(await gpuSample(c, data)).toBe(1);
    expect(sampleRef(data.row, data.seen, options, 0).id).toBe(1);
  });

  it('pinned: top-k and top-p over a large vocabulary', () =>
    checkAgainstRef({
      vocab: 32000,
      seed: 3,
      scale: 8,
      ties: false,
      seenFraction: 0.01,
      step: 9,
      options: { temperature: 0.8, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 1234 },
    }));

  it('is deterministic in (seed, step) and varies with the step', async () => {
    const vocab = 50;
    const logits = randomArray(vocab, 5, 2);
    const s = await setup('test-sample-det', logits, vocab, new Uint32Array(vocab));
    const options = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 99 };
    const b = new Batch(s.gpu);
    for (const [outIndex, step] of [
      [0, 3],
      [1, 3],
      [2, 4],
      [3, 5],
    ] as const) {
      sample(b, { ...s, vocab, outIndex, options, step });
    }
    b.submit();
    const out = await readU32(s.gpu, s.out);
    s.gpu.releaseOwner('test-sample-det');
    expect(out[0]).toBe(out[1]);
    expect(new Set(out).size).toBeGreaterThan(1);
  });

  it('draws roughly with the softmax probabilities (tiny vocabulary, many steps)', async () => {
    const vocab = 5;
    const logits = Float32Array.from([0, 1, 2, -1, 0.5]);
    const temperature = 0.7;
    const n = 2000;
    const gpu = await testGpu();
    const owner = 'test-sample-freq';
    const s = await setup(owner, logits, vocab, new Uint32Array(vocab));
    const out = uploadU32(gpu, { tag: 'scratch', owner, label: 'ids', shape: [n] }, new Uint32Array(n));
    const options = { temperature, topK: 0, topP: 1, repetitionPenalty: 1, seed: 7 };
    const b = new Batch(gpu);
    for (let step = 0; step < n; step++) sample(b, { ...s, out, vocab, outIndex: step, options, step });
    b.submit();
    const ids = await readU32(gpu, out);
    gpu.releaseOwner(owner);
    const weights = Array.from(logits, (x) => Math.exp(x / temperature));
    const z = weights.reduce((a, w) => a + w, 0);
    const counts = new Array<number>(vocab).fill(0);
    for (const id of ids) counts[id] = (counts[id] as number) + 1;
    counts.forEach((count, i) => {
      const prob = (weights[i] as number) / z;
      const sigma = Math.sqrt(n * prob * (1 - prob));
      expect(Math.abs(count - n * prob), `id ${i}: ${count} of ${n}, p=${prob}`).toBeLessThanOrEqual(4 * sigma);
    });
  });

  it('markSeen marks a range of ids, clearSeen empties the set', async () => {
    const gpu = await testGpu();
    const owner = 'test-seen';
    const vocab = 300;
    const ids = Uint32Array.from([5, 17, 299, 17, 4, 1000, 120, 0]);
    const tIds = uploadU32(gpu, { tag: 'scratch', owner, label: 'ids', shape: [ids.length] }, ids);
    const seen = uploadU32(
      gpu,
      { tag: 'scratch', owner, label: 'seen', shape: [vocab] },
      new Uint32Array(vocab).fill(1),
    );
    const b = new Batch(gpu);
    clearSeen(b, { seen, vocab });
    markSeen(b, { ids: tIds, offset: 1, count: 6, seen }); // 17, 299, 17, 4, 1000 (ignored), 120
    b.submit();
    const got = await readU32(gpu, seen);
    const expected = new Uint32Array(vocab);
    for (const id of [17, 299, 4, 120]) expected[id] = 1;
    expect(Array.from(got)).toEqual(Array.from(expected));
    const b2 = new Batch(gpu);
    clearSeen(b2, { seen, vocab });
    b2.submit();
    expect((await readU32(gpu, seen)).every((v) => v === 0)).toBe(true);
    gpu.releaseOwner(owner);
  });

  it('refuses bad shapes and options', async () => {
    const s = await setup('neg', new Float32Array(16), 16, new Uint32Array(16));
    const b = new Batch(s.gpu);
    const options = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };
    const base = { ...s, vocab: 16, outIndex: 0, options, step: 0 };
    expect(() => sample(b, { ...base, outIndex: OUT_SLOTS })).toThrow(/sample.out/);
    expect(() => sample(b, { ...base, logitsRow: 1 })).toThrow(/sample.logits/);
    expect(() => sample(b, { ...base, seen: s.logits })).toThrow(/sample.seen/);
    expect(() => sample(b, { ...base, options: { ...options, topP: 0 } })).toThrow(/topP/);
    expect(() => sample(b, { ...base, options: { ...options, temperature: -1 } })).toThrow(/temperature/);
    expect(() => markSeen(b, { ids: s.out, offset: 2, count: OUT_SLOTS, seen: s.seen })).toThrow(/markSeen.ids/);
    s.gpu.releaseOwner('neg');
  });
});
