// Streaming compressed context memory (ccm.md section 7) and the two cache mechanics both compressors
// share (sentinel.md section 6): rows appended after the cache that see an explicit subset of its slots,
// and compaction of the surviving slots with their keys re-rotated.
//
// Streaming layout: [sink | memory (<= M COMP slots) | recent tokens], every key rotated at its cache
// index (StreamingLLM): stored post-RoPE and re-rotated on every move, which equals caching before RoPE
// and rotating by index. When the cache reaches the window, the oldest `chunk` recent tokens are read by
// n COMP rows (gated LoRA) that see exactly [sink, memory, that chunk, earlier COMP rows of the group],
// at the positions right after the chunk; the memory then gains those n slots (oldest groups evicted
// beyond M), the chunk is dropped and everything after it moves left. Memory is concatenated, never
// averaged: the reference's streaming merge, which averages keys into values, is not reproduced.

import type { GpuAdapter } from '../adapters/gpu.js';
import { shapeError } from '../errors.js';
import type { Batch } from '../gpu/batch.js';
import type { Tensor } from '../gpu/tensor.js';
import { encodeForward, type ForwardState } from '../model/llama.js';
import type { ModelConfig } from '../model/types.js';
import type { ModelWeights } from '../model/weights.js';
import { moveSlots, rerotateSlots } from './kvops.js';
import { packMask, type Visible } from './masks.js';
import type { StreamParams } from './policy.js';

/** What the cache mechanics work on: one session's forward state and its scratch buffers. */
export interface KvContext {
  config: ModelConfig;
  weights: ModelWeights;
  state: ForwardState;
  adapter: GpuAdapter | undefined;
  /** moveSlots scratch for a whole cache. */
  scratch: Tensor;
  /** u32, at least [rows, ceil(capacity / 32)] for the largest appended group. */
  mask: Tensor;
}

export interface AppendArgs {
  /** Slots in use: the rows go to [past, past + ids.length). */
  past: number;
  ids: readonly number[];
  positions: readonly number[];
  /** Whether row r may attend to cache slot j (its own slot is past + r). */
  visible: Visible;
  /** LoRA gate 1 on every row (COMP rows) or 0 on all. */
  gated: boolean;
}

/**
 * Records a forward of `ids` after the cache with explicit visibility and no logits. Its ids, positions,
 * gates and mask are uploaded now, so anything already recorded in `b` is submitted first.
 */
export function appendRows(b: Batch, ctx: KvContext, a: AppendArgs): void {
  const { state: s } = ctx;
  const rows = a.ids.length;
  if (b.length) b.submit();
  b.gpu.write(s.tokens.buffer, Uint32Array.from(a.ids), a.past * 4);
  b.gpu.write(s.positions.buffer, Uint32Array.from(a.positions), a.past * 4);
  if (a.gated) b.gpu.write(s.rowGate.buffer, new Float32Array(rows).fill(1));
  b.gpu.write(ctx.mask.buffer, packMask(rows, a.past + rows, a.visible));
  const args = { past: a.past, rows, logits: 'none' as const, gated: a.gated, mask: ctx.mask };
  encodeForward(b, ctx.config, ctx.weights, s, args, ctx.adapter);
}

/** Cache rows [from, from + count) moved to `to`, keys re-rotated by `delta` positions. */
export interface Relocation {
  from: number;
  to: number;
  count: number;
  delta: number;
}

/**
 * The moves that put kept[i] at slot first + i with its key re-rotated by kept[i].delta, as runs of
 * consecutive slots. Applied in order, so no move may overwrite a slot a later move still reads.
 */
export function relocations(kept: readonly { slot: number; delta: number }[], first = 0): Relocation[] {
  const runs: Relocation[] = [];
  kept.forEach(({ slot, delta }, i) => {
    const last = runs.at(-1);
    if (last && last.from + last.count === slot && last.delta === delta) last.count++;
    else runs.push({ from: slot, to: first + i, count: 1, delta });
  });
  runs.forEach((r, i) => {
    for (const later of runs.slice(i + 1)) {
      if (r.to < later.from + later.count && later.from < r.to + r.count && r.from !== r.to) {
        throw shapeError(`relocations: moving [${r.from}, +${r.count}) to ${r.to} overwrites a later source`);
      }
    }
  });
  return runs;
}

/** Records the moves and re-rotations of every layer's K and V. */
export function relocate(b: Batch, ctx: KvContext, moves: readonly Relocation[]): void {
  const { state, config, weights, scratch } = ctx;
  for (const m of moves) {
    moveSlots(b, state, { from: m.from, to: m.to, count: m.count, scratch });
    rerotateSlots(b, state, config, weights.invFreq, { first: m.to, count: m.count, delta: m.delta });
  }
}

/** A streaming cache, every slot at the position of its index. */
export interface StreamLayout {
  /** 0 or 1. */
  sinks: number;
  memory: number;
  recent: number;
}

export interface StreamCompression {
  /** Positions of the COMP rows, appended at slot sinks + memory + recent. */
  positions: number[];
  /** Slots before this (sink, memory, the chunk) are what the COMP rows read, besides their own group. */
  visibleEnd: number;
  /** Oldest memory slots evicted to stay within maxMemory (whole groups). */
  evicted: number;
  moves: Relocation[];
}

/** One compression of the oldest chunk of recent tokens into n COMP slots. */
export function streamCompression(l: StreamLayout, p: StreamParams, n: number): StreamCompression {
  const { sinks: s, memory: m, recent: r } = l;
  const c = p.chunk;
  if (r < c) throw shapeError(`streamCompression: ${r} recent tokens, the chunk is ${c}`);
  const used = s + m + r;
  const visibleEnd = s + m + c;
  const evicted = Math.max(0, m + n - p.maxMemory);
  const atSelf = (slot: number) => ({ slot, position: slot }); // keys rotated at their cache index
  // the survivors in their new order: [sink, memory minus the evicted groups, COMP rows, recent tokens after the chunk]
  const kept = [
    ...range(0, s).map(atSelf),
    ...range(s + evicted, m - evicted).map(atSelf),
    ...range(0, n).map((k) => ({ slot: used + k, position: visibleEnd + k })),
    ...range(visibleEnd, r - c).map(atSelf),
  ];
  return { positions: range(visibleEnd, n), visibleEnd, evicted, moves: toIndices(kept) };
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

/** Moves kept[i] (a slot whose key is rotated at `position`) to slot i, rotated at i. */
function toIndices(kept: readonly { slot: number; position: number }[]): Relocation[] {
  return relocations(kept.map((k, i) => ({ slot: k.slot, delta: i - k.position })));
}

/** What a streaming session keeps, edited in place: [sink?, memory] slot records, then the recent token ids. */
export interface StreamCache {
  mem: { kind: 'sink' | 'memory'; position: number; turn: number }[];
  fed: number[];
}

export interface CompressOptions {
  /** The COMP ids (n). */
  comp: readonly number[];
  /** Make the first token the sink when the cache has no memory yet. */
  sink: boolean;
  /** Recorded on the new slots. */
  turn: number;
}

/** Records one compression of the oldest chunk (COMP forward, then the moves) and updates `cache` to match. */
export function compressOldest(
  b: Batch,
  ctx: KvContext,
  cache: StreamCache,
  p: StreamParams,
  o: CompressOptions,
): void {
  const { mem, fed } = cache;
  if (o.sink && mem.length === 0) {
    mem.push({ kind: 'sink', position: 0, turn: o.turn });
    fed.shift();
  }
  const sinks = mem.filter((s) => s.kind === 'sink').length;
  const layout = { sinks, memory: mem.length - sinks, recent: fed.length };
  const plan = streamCompression(layout, p, o.comp.length);
  const past = sinks + layout.memory + layout.recent;
  const visible: Visible = (row, slot) => slot < plan.visibleEnd || (slot >= past && slot <= past + row);
  appendRows(b, ctx, { past, ids: o.comp, positions: plan.positions, visible, gated: true });
  relocate(b, ctx, plan.moves);
  b.submit();
  mem.splice(sinks, plan.evicted);
  mem.push(...o.comp.map(() => ({ kind: 'memory' as const, position: 0, turn: o.turn })));
  atIndex(mem);
  fed.splice(0, p.chunk);
}

/**
 * Re-rotates every slot of a cache whose positions count the text (memory slots at their recorded
 * positions, `fed` from `base`) to its cache index, first evicting the oldest memory beyond `maxMemory`:
 * the switch of a ccm session to streaming at the position limit.
 */
export function toCacheIndex(b: Batch, ctx: KvContext, cache: StreamCache, base: number, maxMemory: number): void {
  const { mem, fed } = cache;
  const sinks = mem.filter((s) => s.kind === 'sink').length;
  const evicted = Math.max(0, mem.length - sinks - maxMemory);
  const kept = [
    ...mem.map((s, slot) => ({ slot, position: s.position })),
    ...fed.map((_, i) => ({ slot: mem.length + i, position: base + i })),
  ];
  kept.splice(sinks, evicted);
  relocate(b, ctx, toIndices(kept));
  b.submit();
  mem.splice(sinks, evicted);
  atIndex(mem);
}

function atIndex(mem: StreamCache['mem']): void {
  mem.forEach((s, j) => {
    s.position = j;
  });
}
