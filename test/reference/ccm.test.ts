// The single masked training pass of ccm.md section 6 (layout, mask, SUM overwrite) against the
// recurrent inference of section 5 run on a KV-cache session: read c(t) over Mem(t-1), compress with n
// gated COMP tokens, keep only their K/V, concatenate or average into the memory, answer over Mem(T).
// Both are computed in f64 from f32 weights; every non-SUM row must agree.
import { describe, expect, it } from 'vitest';
import { ccmVisible } from '../../src/memory/masks.js';
import { type CcmMode, ccmOnlinePositions, ccmTrainingLayout } from '../../src/memory/positions.js';
import {
  type KvCache,
  type ReferenceAdapter,
  ReferenceSession,
  referenceForward64,
} from '../../src/reference/llama.js';
import { randomAdapter, referenceAdapter } from '../../src/reference/random-adapter.js';
import { relDiff } from '../helpers/checks.js';
import { rng } from '../helpers/gpu.js';
import { randomModel } from '../helpers/randomModel.js';

const V = 40;
const BOS = 1;
const SEP = [2, 7];
const model = randomModel({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: V, seed: 41 });

interface Case {
  mode: CcmMode;
  n: number;
  chunkLengths: number[];
  inputLength: number;
  bos: boolean;
  sink: boolean;
}

/** The uncompressed text of each step (BOS joins c(1), the separator before c(t) joins c(t)) and the input. */
function dialog(c: Case, seed: number): { chunks: number[][]; input: number[] } {
  const r = rng(seed);
  const text = (len: number) => Array.from({ length: len }, () => 3 + Math.floor(r() * (V - 3)));
  return {
    chunks: c.chunkLengths.map((len, t) => [...(t > 0 ? SEP : c.bos ? [BOS] : []), ...text(len)]),
    input: [...SEP, ...text(c.inputLength)],
  };
}

const joined = (a: KvCache, b: KvCache): KvCache =>
  a.map((x, l) => ({ keys: [...x.keys, ...b[l]!.keys], values: [...x.values, ...b[l]!.values] }));

/** Running mean after step t (0-based): (1 - 1/(t+1)) mem + 1/(t+1) h, slot by slot. */
const averaged = (mem: KvCache, h: KvCache, t: number): KvCache => {
  const avg = (old: Float64Array[], cur: Float64Array[]) =>
    old.map((o, k) => o.map((v, i) => (1 - 1 / (t + 1)) * v + (1 / (t + 1)) * cur[k]![i]!));
  return mem.map((m, l) => ({ keys: avg(m.keys, h[l]!.keys), values: avg(m.values, h[l]!.values) }));
};

/** Logits of every fed row, in feeding order: c(1) COMP(1) c(2) COMP(2) ... input. */
function recurrent(c: Case, a: ReferenceAdapter, d: ReturnType<typeof dialog>): Float64Array[] {
  const session = new ReferenceSession(model, a);
  const slots = (from: number, to?: number): KvCache =>
    session.cache.map((x) => ({ keys: x.keys.slice(from, to), values: x.values.slice(from, to) }));
  const load = (cache: KvCache) => {
    cache.forEach((x, l) => {
      session.cache[l] = { keys: [...x.keys], values: [...x.values] };
    });
  };
  const out: Float64Array[] = [];
  let memory = slots(0, 0);
  let sink = slots(0, 0);
  let L = 0; // text tokens read so far
  d.chunks.forEach((chunk, t) => {
    load(joined(sink, memory));
    for (const id of chunk) out.push(session.step(id, L++, 0));
    for (let k = 0; k < c.n; k++) out.push(session.step(V + k, L + k, 1));
    if (c.sink && t === 0) sink = slots(0, 1); // BOS stays as slot 0
    const h = slots(-c.n);
    memory = c.mode === 'concat' || t === 0 ? joined(memory, h) : averaged(memory, h, t);
  });
  load(joined(sink, memory));
  for (const id of d.input) out.push(session.step(id, L++, 0));
  return out;
}

/** The masked single pass over the training layout: its layout and the logits of its non-SUM rows. */
function singlePass(c: Case, a: ReferenceAdapter, d: ReturnType<typeof dialog>) {
  const layout = ccmTrainingLayout({ ...c, sepLength: SEP.length });
  const stream = [...d.chunks.flat(), ...d.input]; // the text rows, in order
  let next = 0;
  const ids = layout.kinds.map((kind, r) =>
    kind === 'comp' ? V + layout.comp[r]! : kind === 'sum' ? V + c.n + layout.comp[r]! : stream[next++]!,
  );
  expect(next).toBe(stream.length);
  const logits = referenceForward64(model, ids, {
    positions: layout.positions,
    visible: ccmVisible(layout, { sink: c.sink }),
    gates: layout.kinds.map((k) => (k === 'comp' || k === 'sum' ? 1 : 0)),
    adapter: a,
    sumGroups: layout.sumGroups,
  });
  return { layout, rows: layout.kinds.flatMap((k, r) => (k === 'sum' ? [] : [logits.subarray(r * V, (r + 1) * V)])) };
}

const shape = { chunkLengths: [3, 2, 4, 1], inputLength: 3 };
const CASES: [string, Case][] = [
  ['concat, n = 2', { mode: 'concat', n: 2, ...shape, bos: false, sink: false }],
  ['concat, n = 1, BOS as a sink', { mode: 'concat', n: 1, ...shape, bos: true, sink: true }],
  ['merge, n = 2', { mode: 'merge', n: 2, ...shape, bos: false, sink: false }],
  ['merge, n = 3, BOS in c(1) only', { mode: 'merge', n: 3, ...shape, bos: true, sink: false }],
  ['merge, n = 2, BOS as a sink', { mode: 'merge', n: 2, ...shape, bos: true, sink: true }],
];

describe('CCM single masked pass == recurrent inference (f64)', () => {
  CASES.forEach(([name, c], i) => {
    it(name, () => {
      const adapter = referenceAdapter(
        randomAdapter(model.config, { rank: 4, alpha: 16, compTokens: c.n, mode: 'merge', seed: 10 + i }),
      );
      const d = dialog(c, 100 + i);
      const want = recurrent(c, adapter, d);
      const { layout, rows } = singlePass(c, adapter, d);
      expect(rows).toHaveLength(want.length);
      // concat attends to the same keys in the same order (bit-identical); merge averages in another
      // order (sum / t vs running mean), a few f64 ulps
      const worst = Math.max(...rows.map((r, t) => relDiff(r, want[t]!)));
      expect(worst).toBeLessThan(1e-12);
      // the recurrence fed the online positions of section 4
      const online = ccmOnlinePositions(
        d.chunks.map((x) => x.length),
        c.n,
        d.input.length,
      );
      const fed = [...online.steps.flatMap((s) => [...s.chunk, ...s.comp]), ...online.input];
      expect(layout.positions.filter((_, r) => layout.kinds[r] !== 'sum')).toEqual(fed);
      // not vacuous: the memory changes the answer (vs the input read with an empty memory)
      const alone = new ReferenceSession(model, adapter);
      const last = d.input.map((id, j) => alone.step(id, online.input[j]!)).at(-1)!;
      expect(relDiff(last, want.at(-1)!)).toBeGreaterThan(1e-2);
    });
  });
});
