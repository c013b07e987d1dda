// The sentinel policy on the GPU (sentinel.md): a span's <CL>/<CR> forward, then its slots evicted and
// <CR>'s K/V kept in their place. Spans compressed as soon as they end give the masked training forward of
// section 3 (every row, the token after a span included); spans chosen after the fact (explicitly or by
// the sentence rule at endTurn) give an independent CPU implementation of section 4 on ReferenceSession.
// The adapter's LoRA is merged into the weights on both sides, as at load.
import { describe, expect, it } from 'vitest';
import { mergeLoraReader, uploadAdapter } from '../../src/adapters/gpu.js';
import { Session } from '../../src/engine/session.js';
import { isCcmemError } from '../../src/errors.js';
import { sentinelIds, sentinelLayout, sentinelVisible } from '../../src/memory/masks.js';
import { type ReferenceModel, ReferenceSession, referenceForward } from '../../src/reference/llama.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { rng, testGpu } from '../helpers/gpu.js';
import { gpuModel, relError } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';

const V = 50;
const [OPEN, CLOSE] = [V, V + 1];
const base = randomModel({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: V, seed: 81 });
const adapter = randomAdapter(base.config, { method: 'sentinel', rank: 4, compTokens: 1, seed: 82 });
/** The CL and CR rows without a LoRA: the model itself carries the merged one. */
const rows = { rank: 1, alpha: 1, lora: new Map(), embeddings: adapter.embeddings };

async function mergedModel(): Promise<ReferenceModel> {
  const read = mergeLoraReader(async (name) => base.tensors.get(name)!, adapter);
  const names = [...base.tensors.keys()];
  return {
    config: base.config,
    tensors: new Map(await Promise.all(names.map(async (n) => [n, await read(n)] as const))),
  };
}

async function setup(memory: ConstructorParameters<typeof Session>[1] = {}) {
  const gpu = await testGpu();
  const ref = await mergedModel();
  const model = await gpuModel(gpu, ref, 'f32');
  const gpuAd = await uploadAdapter(gpu, adapter, 'sentinel-adapter');
  const session = new Session(model, { capacity: 64, memory: { policy: 'sentinel' }, adapter: gpuAd, ...memory });
  const done = () => {
    session.dispose();
    gpu.releaseOwner(model.owner);
    gpu.releaseOwner(gpuAd.owner);
  };
  return { gpu, ref, model, gpuAd, session, done };
}

/** Row logits of the masked training forward over `text` with `spans` ([start, end) text indices). */
function masked(ref: ReferenceModel, text: number[], spans: [number, number][]) {
  const layout = sentinelLayout(text.length, spans);
  const ids = sentinelIds(layout, text, OPEN, CLOSE);
  const logits = referenceForward(ref, ids, {
    positions: layout.positions,
    visible: sentinelVisible(layout),
    adapter: rows,
  });
  return (textIndex: number) => {
    const r = layout.text.indexOf(textIndex);
    return logits.subarray(r * V, (r + 1) * V);
  };
}

/** Incremental CPU inference (sentinel.md section 4) with spans compressed whenever asked. */
class CpuSentinel {
  readonly live: ReferenceSession;
  /** Text index of each cache slot; -1 for a <CR>. */
  readonly slotText: number[] = [];
  private fed = 0;
  constructor(private readonly ref: ReferenceModel) {
    this.live = new ReferenceSession(ref, rows);
  }
  /** A text token at its text position (= its index: spans never renumber). */
  feed(id: number): Float32Array {
    this.slotText.push(this.fed);
    return Float32Array.from(this.live.step(id, this.fed++));
  }
  compress(start: number, end: number): void {
    const slot = this.slotText.indexOf(start);
    const length = end - start;
    expect(this.slotText[slot + length - 1]).toBe(end - 1);
    const open = new ReferenceSession(this.ref, rows);
    open.step(OPEN, Math.max(start - 1, 0));
    const close = new ReferenceSession(this.ref, rows);
    close.cache.forEach((_, l) => {
      const [cl, live] = [open.cache[l]!, this.live.cache[l]!];
      close.cache[l] = {
        keys: [...cl.keys, ...live.keys.slice(slot, slot + length)],
        values: [...cl.values, ...live.values.slice(slot, slot + length)],
      };
    });
    close.step(CLOSE, end - 1);
    this.live.cache.forEach((layer, l) => {
      layer.keys.splice(slot, length, close.cache[l]!.keys.at(-1)!);
      layer.values.splice(slot, length, close.cache[l]!.values.at(-1)!);
    });
    this.slotText.splice(slot, length, -1);
  }
}

function randomText(seed: number, n: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => 7 + Math.floor(r() * (V - 7)));
}

describe('sentinel policy', () => {
  it('spans compressed as they end equal the masked training forward (start, adjacent, GQA)', async () => {
    const { ref, model, gpuAd, session, done } = await setup();
    const text = randomText(83, 30);
    const spans: [number, number][] = [
      [0, 4],
      [6, 10],
      [10, 13],
      [15, 20],
    ];
    const want = masked(ref, text, spans);
    let fed = 0;
    const upTo = async (end: number) => {
      const [got] = await session.logits(text.slice(0, end));
      fed = end;
      expect(relError(got!, want(end - 1)), `text row ${end - 1}`).toBeLessThan(1e-4);
    };
    for (const [start, end] of spans) {
      if (end > fed) await upTo(end); // the last span token predicts the token after the span
      await session.compressSpan(start, end - 1);
    }
    for (let j = fed + 1; j <= text.length; j++) await upTo(j);

    const stats = session.stats();
    expect(stats.compressionSteps).toBe(4);
    expect(stats.tokensCompressed).toBe(4 + 4 + 3 + 5);
    expect(stats.slots).toEqual({ sink: 0, memory: 4, working: 30 - 16, capacity: 64 });
    expect(stats.nextPosition).toBe(30);
    expect(session.cachedIds).toEqual(text);
    expect(session.compressedSpans).toEqual(spans.map(([start, end]) => ({ start, end })));

    // a prompt that leaves the text inside the last span: the span is dropped and its tokens fed again
    const other = [...text.slice(0, 17), 9, 9, 9];
    const [cut] = await session.logits(other);
    expect(relError(cut!, masked(ref, other, spans.slice(0, 3))(other.length - 1))).toBeLessThan(1e-4);
    expect(session.compressedSpans.length).toBe(3);

    // export / import keeps the spans and the slots
    const copy = new Session(model, { capacity: 64, memory: { policy: 'sentinel' }, adapter: gpuAd });
    await copy.importMemory(await session.exportMemory());
    expect(copy.stats()).toEqual(session.stats());
    const [a] = await session.logits([...other, 11]);
    const [b] = await copy.logits([...other, 11]);
    expect(Array.from(b!)).toEqual(Array.from(a!));
    copy.dispose();
    done();
  });

  it('spans chosen after the fact equal the CPU incremental evict-and-keep-<CR>', async () => {
    const { ref, session, done } = await setup();
    const text = randomText(84, 28);
    await session.feed(text.slice(0, 20));
    const cpu = new CpuSentinel(ref);
    for (const id of text.slice(0, 20)) cpu.feed(id);
    // out of order, one at the start, two adjacent
    for (const [start, end] of [
      [8, 12],
      [0, 5],
      [12, 15],
    ] as const) {
      await session.compressSpan(start, end - 1);
      cpu.compress(start, end);
    }
    for (let j = 20; j < text.length; j++) {
      const [got] = await session.logits(text.slice(0, j + 1));
      expect(relError(got!, cpu.feed(text[j]!)), `text row ${j}`).toBeLessThan(1e-4);
    }
    // not vacuous: the masked forward, where later tokens never saw the raw spans, differs
    const [last] = await session.logits(text);
    const spans: [number, number][] = [
      [0, 5],
      [8, 12],
      [12, 15],
    ];
    expect(relError(last!, masked(ref, text, spans)(text.length - 1))).toBeGreaterThan(1e-3);
    done();
  });

  it('endTurn compresses finished sentences older than the recent tokens, split at maxSpan', async () => {
    const ENDS = new Set([5, 6]); // e.g. "." and "\n"
    const { ref, session, done } = await setup({
      memory: { policy: 'sentinel', sentenceEnds: ENDS, recent: 6, maxSpan: 10 },
    });
    const text = [1, ...randomText(85, 49)]; // BOS first: never inside a span
    text[4] = 5; // sentence [1, 5)
    text[5] = 6; // a one-token sentence: nothing to save
    text[33] = 5; // [6, 34): 28 tokens in three pieces
    text[36] = 6; // [34, 37) ends inside the 6 recent tokens of 40
    const cpu = new CpuSentinel(ref);
    await session.feed(text.slice(0, 40));
    for (const id of text.slice(0, 40)) cpu.feed(id);
    await session.endTurn();
    const first = [
      { start: 1, end: 5 },
      { start: 6, end: 15 },
      { start: 15, end: 24 },
      { start: 24, end: 34 },
    ];
    expect(session.compressedSpans).toEqual(first);
    for (const s of first) cpu.compress(s.start, s.end);
    await session.feed(text.slice(40, 48));
    for (const id of text.slice(40, 48)) cpu.feed(id);
    await session.endTurn();
    expect(session.compressedSpans).toEqual([...first, { start: 34, end: 37 }]);
    cpu.compress(34, 37);
    for (let j = 48; j < text.length; j++) {
      const [got] = await session.logits(text.slice(0, j + 1));
      expect(relError(got!, cpu.feed(text[j]!)), `text row ${j}`).toBeLessThan(1e-4);
    }
    expect(session.stats().slots.memory).toBe(5);
    done();
  });

  it('refuses spans that hold a <CR>, leave the working tokens, or a non-sentinel session', async () => {
    const { model, session, done } = await setup();
    await session.feed(randomText(86, 12));
    await session.compressSpan(3, 6);
    for (const [first, last] of [
      [5, 8],
      [0, 3],
      [2, 1],
      [10, 12],
      [-1, 2],
    ]) {
      const e = await session.compressSpan(first!, last!).catch((err: unknown) => err);
      expect(isCcmemError(e, 'INVALID_INPUT'), `[${first}, ${last}]: ${e}`).toBe(true);
    }
    expect(session.compressedSpans).toEqual([{ start: 3, end: 7 }]);
    const full = new Session(model, { capacity: 16 });
    await full.feed([1, 2, 3]);
    await expect(full.compressSpan(0, 1)).rejects.toThrow(/sentinel policy/);
    expect(() => new Session(model, { capacity: 16, memory: { policy: 'sentinel' } })).toThrow(/sentinel adapter/);
    full.dispose();
    done();
  });
});
