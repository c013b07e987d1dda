// Grouped-query attention over a KV cache, for prefill and decode alike. The keys are split across
// invocations (flash-decoding) so that a single decode query over thousands of cached keys still
// spreads over many invocations: pass 1 (shaders/attention.wgsl) writes per-split partial softmax
// state into `scratch`, pass 2 (shaders/attention_combine.wgsl) merges the splits.
import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';
import { shader } from './shaders.js';

export interface AttentionArgs {
  /** [queries, heads, headDim], f32. */
  q: Tensor;
  /** KV cache [>= keys, kvHeads, headDim], f32; slots [0, keys) are valid, the last `queries` are the new tokens. */
  k: Tensor;
  v: Tensor;
  /** Like q. */
  out: Tensor;
  queries: number;
  keys: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
  /** u32 [queries, ceil(keys/32)]: bit j%32 of word j/32 of row t = query t may attend key j. Replaces causality. */
  mask?: Tensor;
  /** f32, at least attentionScratchElements(...) for the largest call. */
  scratch: Tensor;
}

const WG = 64;
/**
 * Partial-pass workgroup size on CPU-emulated adapters, where a workgroup is the unit a CPU thread takes:
 * a decode step has only queries x splits x heads items (45 for SmolLM2 at 129 keys), which at 64 per
 * workgroup would leave all but one core idle.
 */
const CPU_WG = 16;
/** Aim for this many (query, split, head) items before splitting further stops paying. */
const TARGET_ITEMS = 8192;
/** Splits never get shorter than this many keys. */
const MIN_SPLIT = 32;

/** Number of key splits and keys per split for one call (identical in the bound below). */
function splitPlan(queries: number, heads: number, keys: number): { splits: number; splitLen: number } {
  const wanted = Math.min(Math.ceil(TARGET_ITEMS / (queries * heads)), Math.ceil(keys / MIN_SPLIT));
  const splitLen = Math.ceil(keys / wanted);
  return { splits: Math.ceil(keys / splitLen), splitLen };
}

/**
 * Scratch elements (f32) that cover every call with at most `queries` queries and `keys` keys (same heads
 * and headDim). Each (query, split, head) item stores max, sum and headDim weighted values. Since
 * q * ceil(T / (q h)) <= T / h + q and splits <= ceil(keys / MIN_SPLIT), the bound holds for every smaller call.
 */
export function attentionScratchElements(queries: number, heads: number, headDim: number, keys: number): number {
  const items = Math.min(Math.ceil(TARGET_ITEMS / heads) + queries, queries * Math.ceil(keys / MIN_SPLIT));
  return Math.max(items, 1) * heads * (headDim + 2);
}

export function attention(b: Batch, a: AttentionArgs): void {
  const { queries, keys, heads, kvHeads, headDim } = a;
  if (!(queries >= 1 && keys >= 1 && heads >= 1 && kvHeads >= 1 && headDim >= 1)) {
    throw shapeError(
      `attention: bad dims queries=${queries} keys=${keys} heads=${heads} kvHeads=${kvHeads} headDim=${headDim}`,
    );
  }
  if (heads % kvHeads !== 0) throw shapeError(`attention: heads ${heads} is not a multiple of kvHeads ${kvHeads}`);
  if (!a.mask && keys < queries) throw shapeError(`attention: ${keys} keys cannot hold ${queries} new tokens`);
  const qElems = queries * heads * headDim;
  expectAtLeast('attention.q', a.q, qElems, ['f32']);
  expectAtLeast('attention.k', a.k, keys * kvHeads * headDim, ['f32']);
  expectAtLeast('attention.v', a.v, keys * kvHeads * headDim, ['f32']);
  expectAtLeast('attention.out', a.out, qElems, ['f32']);
  const maskWords = Math.ceil(keys / 32);
  if (a.mask) expectAtLeast('attention.mask', a.mask, queries * maskWords, ['u32']);
  const { splits, splitLen } = splitPlan(queries, heads, keys);
  const items = queries * splits * heads;
  expectAtLeast('attention.scratch', a.scratch, items * (headDim + 2), ['f32']);

  const params = packParams([
    ['u32', queries],
    ['u32', keys],
    ['u32', heads],
    ['u32', heads / kvHeads],
    ['u32', kvHeads],
    ['u32', splits],
    ['u32', splitLen],
    ['f32', a.scale ?? 1 / Math.sqrt(headDim)],
    ['u32', a.mask ? 0 : keys - queries],
    ['u32', maskWords],
    ['u32', headDim],
  ]);
  const wg = b.gpu.features.cpuEmulated ? CPU_WG : WG;
  const partial = b.gpu.pipeline(shader('attention'), {
    WG: wg,
    HD: headDim,
    MASK: a.mask !== undefined,
    VEC4: headDim % 4 === 0,
  });
  const buffers = [a.q.buffer, a.k.buffer, a.v.buffer, a.scratch.buffer];
  if (a.mask) buffers.push(a.mask.buffer);
  b.dispatch(partial, params, buffers, flatGrid(b, items, wg));

  const combineParams = packParams([
    ['u32', queries],
    ['u32', heads],
    ['u32', headDim],
    ['u32', splits],
  ]);
  b.dispatch(
    b.gpu.pipeline(shader('attention_combine'), { WG }),
    combineParams,
    [a.scratch.buffer, a.out.buffer],
    flatGrid(b, qElems, WG),
  );
}
