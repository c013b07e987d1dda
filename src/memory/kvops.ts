// KV-cache slot operations for the compressed context memory, on every layer's K and V of a
// ForwardState: move rows (compaction, eviction), merge rows as a running mean (CCM-merge) and
// re-rotate keys to new positions (sliding window and streaming, where positions follow the cache
// index). All are recorded in a Batch, in order, without submitting; per-call values travel as kernel
// parameters, so any number of these ops can share one Batch. Slot metadata (tokens, positions) is
// the caller's.

import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';
import { shader } from '../kernels/shaders.js';
import type { ForwardState } from '../model/llama.js';
import type { ModelConfig } from '../model/types.js';

const WG = 64;
const F32 = 4;

export interface MoveArgs {
  from: number;
  to: number;
  count: number;
  /** f32, at least kvScratchElements(c, count) elements; not a cache buffer. */
  scratch: Tensor;
}

export interface MergeArgs {
  dst: number;
  src: number;
  count: number;
  /** In [0, 1]: 1/t for the running mean of t steps. */
  weight: number;
}

export interface RerotateArgs {
  first: number;
  count: number;
  /** Positions to add (may be negative): a key rotated at p becomes the key rotated at p + delta. */
  delta: number;
}

/**
 * Copies cache rows [from, from+count) to [to, to+count) for every layer's K and V; the ranges may
 * overlap. WebGPU forbids a copy within one buffer, so each range goes through `scratch` and back;
 * copies in one command buffer run in order, so one scratch serves every layer.
 */
export function moveSlots(b: Batch, s: ForwardState, a: MoveArgs): void {
  const kvDim = checkRows('moveSlots', s, [a.from, a.to], a.count);
  expectAtLeast('moveSlots.scratch', a.scratch, a.count * kvDim, ['f32']);
  const caches = [...s.kCache, ...s.vCache];
  if (caches.some((t) => t.buffer === a.scratch.buffer)) throw shapeError('moveSlots: scratch is a cache buffer');
  if (a.from === a.to) return;
  const bytes = a.count * kvDim * F32;
  for (const t of caches) {
    b.copy(t.buffer, a.from * kvDim * F32, a.scratch.buffer, 0, bytes);
    b.copy(a.scratch.buffer, 0, t.buffer, a.to * kvDim * F32, bytes);
  }
}

/** dst rows = (1 - weight) * dst rows + weight * src rows, every layer's K and V, in f32. */
export function mergeSlots(b: Batch, s: ForwardState, a: MergeArgs): void {
  const kvDim = checkRows('mergeSlots', s, [a.dst, a.src], a.count);
  if (Math.abs(a.dst - a.src) < a.count) throw shapeError(`mergeSlots: rows ${a.src} and ${a.dst} overlap`);
  if (!(a.weight >= 0 && a.weight <= 1)) throw shapeError(`mergeSlots: weight ${a.weight} is not in [0, 1]`);
  const n = a.count * kvDim;
  const params = packParams([
    ['u32', n],
    ['u32', a.dst * kvDim],
    ['u32', a.src * kvDim],
    ['f32', a.weight],
  ]);
  const pipeline = b.gpu.pipeline(shader('kv_merge'), { WG });
  const grid = flatGrid(b, n, WG);
  s.kCache.forEach((k, l) => {
    b.dispatch(pipeline, params, [k.buffer, s.vCache[l]!.buffer], grid);
  });
}

/** Rotates the keys (not values) of rows [first, first+count) of every layer by `delta` positions. */
export function rerotateSlots(b: Batch, s: ForwardState, c: ModelConfig, invFreq: Tensor, a: RerotateArgs): void {
  const kvDim = checkRows('rerotateSlots', s, [a.first], a.count);
  if (c.headDim % 2 !== 0 || kvDim !== c.numKvHeads * c.headDim) {
    throw shapeError(`rerotateSlots: cache rows of ${kvDim} do not fit ${c.numKvHeads} heads of ${c.headDim}`);
  }
  if (!Number.isInteger(a.delta) || Math.abs(a.delta) >= 2 ** 31) {
    throw shapeError(`rerotateSlots: delta ${a.delta} is not an i32`);
  }
  const half = c.headDim / 2;
  expectAtLeast('rerotateSlots.invFreq', invFreq, half, ['f32']);
  if (a.delta === 0) return;
  const n = a.count * c.numKvHeads * half;
  const params = packParams([
    ['u32', n],
    ['u32', c.numKvHeads],
    ['u32', half],
    ['u32', a.first],
    ['i32', a.delta],
  ]);
  const pipeline = b.gpu.pipeline(shader('rope'), { WG, DELTA: true });
  const grid = flatGrid(b, n, WG);
  for (const k of s.kCache) b.dispatch(pipeline, params, [k.buffer, invFreq.buffer], grid);
}

/** Elements of the f32 scratch tensor moveSlots needs for moves of up to `maxCount` rows. */
export function kvScratchElements(c: ModelConfig, maxCount: number): number {
  return maxCount * c.numKvHeads * c.headDim;
}

/** Checks that every range [start, start+count) lies in the cache; returns the row width (kvDim). */
function checkRows(op: string, s: ForwardState, starts: readonly number[], count: number): number {
  const capacity = s.options.capacity;
  for (const start of starts) {
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > capacity) {
      throw shapeError(`${op}: rows [${start}, ${start + count}) outside a cache of ${capacity} slots`);
    }
  }
  const k0 = s.kCache[0];
  if (!k0) throw shapeError(`${op}: the state has no layers`);
  return k0.shape[1] as number;
}
