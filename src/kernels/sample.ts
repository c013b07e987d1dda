// Token sampling on the GPU (shaders/sample.wgsl): only the chosen id is read back, and it lands
// directly in the caller's token buffer. The repetition-penalty set `seen` lives on the GPU too
// (shaders/sample_seen.wgsl). Semantics are defined by sampleRef in sample.ref.ts.
import { invalidInput, shapeError } from '../errors.js';
import { type Batch, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';
import { shader } from './shaders.js';

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 1 = off. */
  repetitionPenalty: number;
  seed: number;
}

export interface SampleArgs {
  /** f32 [rows, vocab]; row `logitsRow` (default 0) is sampled. */
  logits: Tensor;
  logitsRow?: number;
  vocab: number;
  /** u32; the chosen id is written at outIndex. */
  out: Tensor;
  outIndex: number;
  /** u32 [vocab]: the repetition-penalty set; the chosen id is added. */
  seen: Tensor;
  options: SamplingOptions;
  /** Decode step: with the seed, determines the random draw. */
  step: number;
}

const SEEN_WG = 64;
/** The reduction fan-out of shaders/sample.wgsl (its FAN), passed as a loop bound that compilers cannot unroll. */
const FAN = 16;

/** Throws INVALID_INPUT for options outside their ranges (also used before any GPU work is queued). */
export function checkSamplingOptions(o: SamplingOptions): void {
  if (!(o.temperature >= 0)) throw invalidInput(`temperature must be >= 0, got ${o.temperature}`);
  if (!(Number.isInteger(o.topK) && o.topK >= 0)) throw invalidInput(`topK must be an integer >= 0, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw invalidInput(`topP must be in (0, 1], got ${o.topP}`);
  if (!(o.repetitionPenalty > 0)) throw invalidInput(`repetitionPenalty must be > 0, got ${o.repetitionPenalty}`);
}

export function sample(b: Batch, a: SampleArgs): void {
  const row = a.logitsRow ?? 0;
  if (a.vocab < 1 || row < 0 || a.outIndex < 0) {
    throw shapeError(`sample: bad dims vocab=${a.vocab} logitsRow=${row} outIndex=${a.outIndex}`);
  }
  checkSamplingOptions(a.options);
  const offset = row * a.logits.rowStride;
  expectAtLeast('sample.logits', a.logits, offset + a.vocab, ['f32']);
  expectAtLeast('sample.out', a.out, a.outIndex + 1, ['u32']);
  expectAtLeast('sample.seen', a.seen, a.vocab, ['u32']);
  const o = a.options;
  const greedy = o.temperature === 0;
  const params = packParams([
    ['u32', a.vocab],
    ['u32', offset],
    ['u32', a.outIndex],
    ['u32', greedy ? 1 : 0],
    ['u32', o.topK],
    ['f32', o.topP],
    ['f32', greedy ? 1 : 1 / o.temperature],
    ['f32', o.repetitionPenalty],
    ['f32', 1 / o.repetitionPenalty],
    ['u32', o.seed >>> 0],
    ['u32', a.step >>> 0],
    ['u32', FAN],
  ]);
  b.dispatch(b.gpu.pipeline(shader('sample')), params, [a.logits.buffer, a.seen.buffer, a.out.buffer], [1]);
}

/** Marks ids[offset .. offset + count) as seen (the prompt's tokens); ids outside the set are ignored. */
export function markSeen(b: Batch, a: { ids: Tensor; offset?: number; count: number; seen: Tensor }): void {
  const offset = a.offset ?? 0;
  if (a.count < 0 || offset < 0) throw shapeError(`markSeen: bad range offset=${offset} count=${a.count}`);
  expectAtLeast('markSeen.ids', a.ids, offset + a.count, ['u32']);
  expectAtLeast('markSeen.seen', a.seen, 1, ['u32']);
  const params = packParams([
    ['u32', a.count],
    ['u32', offset],
  ]);
  const pipeline = b.gpu.pipeline(shader('sample_seen'), { WG: SEEN_WG, CLEAR: false });
  b.dispatch(pipeline, params, [a.ids.buffer, a.seen.buffer], [Math.ceil(a.count / SEEN_WG)]);
}

/** Empties the repetition-penalty set. */
export function clearSeen(b: Batch, a: { seen: Tensor; vocab: number }): void {
  if (a.vocab < 0) throw shapeError(`clearSeen: bad vocab ${a.vocab}`);
  expectAtLeast('clearSeen.seen', a.seen, a.vocab, ['u32']);
  const params = packParams([
    ['u32', a.vocab],
    ['u32', 0],
  ]);
  const pipeline = b.gpu.pipeline(shader('sample_seen'), { WG: SEEN_WG, CLEAR: true });
  b.dispatch(pipeline, params, [a.seen.buffer], [Math.ceil(a.vocab / SEEN_WG)]);
}
