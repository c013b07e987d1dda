// ccm-stream (ccm.md section 7): the GPU session equals an independent CPU implementation of the same
// algorithm on src/reference/llama.ts's ReferenceSession, whose cache is edited between steps: each slot
// remembers the position its key was rotated at and is rotated to its new cache index after every edit;
// the COMP rows are stepped (gate 1) on a separate session holding copies of exactly [sink, memory, chunk].
// Also: a ccm-concat session that reaches max_position_embeddings with onPositionLimit 'stream' switches to
// streaming and still equals the CPU (recurrent concat, then every slot re-rotated to its index).
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { ropeInvFreq } from '../../src/model/rope-freq.js';
import {
  argmax,
  type ReferenceAdapter,
  type ReferenceModel,
  ReferenceSession,
  rope,
} from '../../src/reference/llama.js';
import { randomAdapter, referenceAdapter } from '../../src/reference/random-adapter.js';
import { rng, testGpu } from '../helpers/gpu.js';
import { gpuAdapter, gpuModel, relError } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';

const N = 2;
const STREAM = { window: 24, chunk: 8, maxMemory: 4 };

interface Slots {
  keys: Float64Array[];
  values: Float64Array[];
  /** The position each key is rotated at. */
  pos: number[];
}

const join = (...parts: Slots[]): Slots => ({
  keys: parts.flatMap((p) => p.keys),
  values: parts.flatMap((p) => p.values),
  pos: parts.flatMap((p) => p.pos),
});

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

/** The streaming cache on the CPU: slots [sinks | memory | recent], `pos` = rotation of each slot's key. */
class CpuStream {
  readonly live: ReferenceSession;
  pos: number[] = [];
  sinks = 0;
  memory = 0;
  compressions = 0;
  private readonly invFreq: Float32Array;

  constructor(
    private readonly model: ReferenceModel,
    private readonly adapter: ReferenceAdapter,
    private readonly sink: boolean,
  ) {
    this.live = new ReferenceSession(model, adapter);
    const c = model.config;
    this.invFreq = ropeInvFreq(c.headDim, c.ropeTheta, c.ropeScaling);
  }

  /** Feeds one text token at its cache index, compressing first when the cache is at the window. */
  feed(id: number): Float32Array {
    if (this.pos.length >= STREAM.window) this.compress();
    this.pos.push(this.pos.length);
    return Float32Array.from(this.live.step(id, this.pos.length - 1));
  }

  /** Cache slots `slots` of layer l. */
  pick(l: number, slots: number[]): Slots {
    const layer = this.live.cache[l]!;
    return {
      keys: slots.map((j) => layer.keys[j]!),
      values: slots.map((j) => layer.values[j]!),
      pos: slots.map((j) => this.pos[j]!),
    };
  }

  /** Replaces every layer's cache by `parts(l)`, each key rotated to its new index. */
  rebuild(parts: (l: number) => Slots): void {
    const c = this.model.config;
    this.live.cache.forEach((_, l) => {
      const p = parts(l);
      p.keys.forEach((k, i) => {
        rope(k, c.numKvHeads, c.headDim, this.invFreq, i - p.pos[i]!);
      });
      this.live.cache[l] = { keys: p.keys, values: p.values };
    });
    this.pos = range(0, this.live.cache[0]!.keys.length);
  }

  compress(): void {
    const V = this.model.config.vocabSize;
    if (this.sink && this.sinks === 0 && this.memory === 0) this.sinks = 1;
    const s = this.sinks;
    const m = this.memory;
    const seen = s + m + STREAM.chunk; // sink, memory and the chunk: all the COMP rows may read
    const comp = new ReferenceSession(this.model, this.adapter);
    this.live.cache.forEach((layer, l) => {
      comp.cache[l] = {
        keys: layer.keys.slice(0, seen).map((k) => k.slice()),
        values: layer.values.slice(0, seen).map((v) => v.slice()),
      };
    });
    for (let k = 0; k < N; k++) comp.step(V + k, seen + k, 1);
    const evicted = Math.max(0, m + N - STREAM.maxMemory);
    const newComp = (l: number): Slots => ({
      keys: comp.cache[l]!.keys.slice(seen),
      values: comp.cache[l]!.values.slice(seen),
      pos: range(seen, seen + N),
    });
    // [sink, memory without its oldest groups, the new COMP slots, the recent tokens after the chunk]
    const kept = [...range(0, s), ...range(s + evicted, s + m)];
    const recent = range(seen, this.pos.length);
    this.rebuild((l) => join(this.pick(l, kept), newComp(l), this.pick(l, recent)));
    this.memory = m + N - evicted;
    this.compressions++;
  }
}

function setup(seed: number) {
  const V = 60;
  const ref = randomModel({
    hidden: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 48,
    vocab: V,
    seed,
    maxPositions: 40,
  });
  ref.config.eosTokenIds = [];
  const adapter = referenceAdapter(randomAdapter(ref.config, { rank: 4, alpha: 8, compTokens: N, seed }));
  return { ref, adapter, V };
}

describe('ccm-stream', () => {
  it('equals the CPU streaming reference over a long generation (greedy ids, final logits)', async () => {
    const gpu = await testGpu();
    const { ref, adapter, V } = setup(71);
    const model = await gpuModel(gpu, ref, 'f32');
    const gpuAd = gpuAdapter(gpu, adapter, ref.config);
    const s = new Session(model, {
      capacity: 32,
      chunk: 16,
      memory: { policy: 'ccm-stream', compTokens: N, ...STREAM },
      adapter: gpuAd,
    });
    // a prompt longer than the window: prefill stops at the window for each compression
    const r = rng(72);
    const prompt = [1, ...Array.from({ length: 29 }, () => 3 + Math.floor(r() * (V - 3)))];
    const steps = 40;
    const stream = s.generate(prompt, { maxNewTokens: steps, temperature: 0 });
    let next = await stream.next();
    while (!next.done) next = await stream.next();
    const gpuIds = next.value.ids;

    const cpu = new CpuStream(ref, adapter, true);
    let logits: Float32Array = new Float32Array(0);
    for (const id of prompt) logits = cpu.feed(id);
    const cpuIds: number[] = [];
    for (let i = 0; i < steps; i++) {
      cpuIds.push(argmax(logits));
      if (i < steps - 1) logits = cpu.feed(cpuIds.at(-1)!);
    }
    expect(cpu.compressions).toBeGreaterThanOrEqual(6); // FIFO eviction from the third on
    expect(gpuIds).toEqual(cpuIds);

    // the layout: sink at 0, M memory slots at their indices, positions by cache index
    const stats = s.stats();
    expect(stats.compressionSteps).toBe(cpu.compressions);
    expect(stats.tokensCompressed).toBe(cpu.compressions * STREAM.chunk);
    expect(stats.slots).toEqual({
      sink: 1,
      memory: STREAM.maxMemory,
      working: cpu.pos.length - 1 - STREAM.maxMemory,
      capacity: 32,
    });
    expect(s.memorySlots.map((m) => m.position)).toEqual([0, 1, 2, 3, 4]);
    expect(stats.nextPosition).toBe(cpu.pos.length);

    // one more token through both, after an export/import round trip of the GPU session
    const restored = new Session(model, {
      capacity: 32,
      memory: { policy: 'ccm-stream', compTokens: N, ...STREAM },
      adapter: gpuAd,
    });
    await restored.importMemory(await s.exportMemory());
    const [row] = await restored.logits([...s.cachedIds, s.pendingId!]);
    expect(relError(row!, cpu.feed(cpuIds.at(-1)!))).toBeLessThan(1e-4);
    s.dispose();
    restored.dispose();
    gpu.releaseOwner(model.owner);
    gpu.releaseOwner(gpuAd.owner);
  });

  it('ccm-concat switches to streaming at max_position_embeddings and equals the CPU', async () => {
    const gpu = await testGpu();
    const { ref, adapter, V } = setup(73);
    const c = ref.config; // maxPositions 40
    const model = await gpuModel(gpu, ref, 'f32');
    const gpuAd = gpuAdapter(gpu, adapter, ref.config);
    const s = new Session(model, {
      capacity: 40,
      memory: { policy: 'ccm-concat', compTokens: N, onPositionLimit: 'stream', ...STREAM },
      adapter: gpuAd,
    });
    const r = rng(74);
    const text = (n: number) => Array.from({ length: n }, () => 3 + Math.floor(r() * (V - 3)));
    const turns = [text(8), text(8), text(8), text(8), text(8)];
    for (const t of turns) {
      await s.feed(t);
      await s.endTurn(); // the fifth: its COMP rows would sit at positions 40, 41 -> switch, no compression
    }
    expect(s.stats().policy).toBe('ccm-concat');
    expect(s.memorySlots.map((m) => m.position)).toEqual([0, 1, 2, 3]); // 8 concat slots, the 4 newest kept
    expect(s.cachedIds).toEqual(turns[4]);
    const more = text(30);
    const [got] = await s.logits([...s.cachedIds, ...more]);

    // CPU: recurrent ccm-concat (ccm.md section 5), then the switch, then streaming without a sink
    const cpu = new CpuStream(ref, adapter, false);
    let L = 0;
    for (const t of turns.slice(0, 4)) {
      const step = new ReferenceSession(ref, adapter); // the memory, then c(t) and its COMP rows
      step.cache.forEach((_, l) => {
        step.cache[l] = { keys: [...cpu.live.cache[l]!.keys], values: [...cpu.live.cache[l]!.values] };
      });
      for (const [i, id] of t.entries()) step.step(id, L + i);
      L += t.length;
      for (let k = 0; k < N; k++) step.step(V + k, L + k, 1);
      step.cache.forEach((layer, l) => {
        cpu.live.cache[l] = {
          keys: layer.keys.filter((_, j) => j < cpu.pos.length || j >= layer.keys.length - N),
          values: layer.values.filter((_, j) => j < cpu.pos.length || j >= layer.values.length - N),
        };
      });
      cpu.pos.push(...range(L, L + N));
    }
    turns[4]!.forEach((id, i) => {
      cpu.live.step(id, L + i);
      cpu.pos.push(L + i);
    });
    // the switch: the 4 oldest memory slots go (maxMemory 4), every key to its cache index
    cpu.rebuild((l) => cpu.pick(l, range(4, cpu.pos.length)));
    cpu.memory = 4;
    let want: Float32Array = new Float32Array(0);
    for (const id of more) want = cpu.feed(id);
    expect(cpu.compressions).toBeGreaterThanOrEqual(3);
    expect(relError(got!, want)).toBeLessThan(1e-4);
    expect(s.stats().nextPosition).toBeLessThan(c.maxPositions);
    s.dispose();
    gpu.releaseOwner(model.owner);
    gpu.releaseOwner(gpuAd.owner);
  });
});
