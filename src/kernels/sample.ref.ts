// CPU reference for sampling: the sort-based definition the GPU kernel (shaders/sample.wgsl) must
// reproduce. The penalty and temperature are applied in f32 by multiplying with f32 reciprocals,
// exactly as the kernel does, so greedy choices match bit for bit.
import type { SamplingOptions } from './sample.js';

const f = Math.fround;

function pcg(v: number): number {
  const s = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** The random draw for (seed, step): u in [0, 1) with 24 bits, identical in WGSL. */
export function sampleUniform(seed: number, step: number): number {
  return (pcg((pcg(seed >>> 0) + (step >>> 0)) >>> 0) >>> 8) / 16777216;
}

export interface SampleRefResult {
  id: number;
  u: number;
  /** The ids that survived top-k / top-p, ascending. */
  kept: number[];
  /** Normalised cumulative probability of kept[0 .. i] (the CDF the draw inverts). */
  cdf: number[];
}

/** Penalised and temperature-scaled logits, rounded to f32 at each step as on the GPU. */
export function scaledLogits(logits: Float32Array, seen: ArrayLike<number>, o: SamplingOptions): Float32Array {
  const p = f(o.repetitionPenalty);
  const invP = f(1 / o.repetitionPenalty);
  const invT = o.temperature === 0 ? 1 : f(1 / o.temperature);
  return logits.map((x, i) => {
    const y = seen[i] ? f(x > 0 ? x * invP : x * p) : x;
    return f(y * invT);
  });
}

export function sampleRef(
  logits: Float32Array,
  seen: ArrayLike<number>,
  o: SamplingOptions,
  step: number,
): SampleRefResult {
  const x = scaledLogits(logits, seen, o);
  const vocab = x.length;
  const u = sampleUniform(o.seed, step);
  if (o.temperature === 0) {
    let id = 0;
    for (let i = 1; i < vocab; i++) if ((x[i] as number) > (x[id] as number)) id = i;
    return { id, u, kept: [id], cdf: [1] };
  }
  const byValue = Array.from(x.keys()).sort((a, b) => (x[b] as number) - (x[a] as number));
  let threshold = Number.NEGATIVE_INFINITY;
  if (o.topK > 0 && o.topK < vocab) threshold = x[byValue[o.topK - 1] as number] as number;
  const max = x[byValue[0] as number] as number;
  const weight = (i: number) => Math.exp((x[i] as number) - max);
  if (o.topP < 1) {
    const candidates = byValue.filter((i) => (x[i] as number) >= threshold);
    const z = candidates.reduce((s, i) => s + weight(i), 0);
    let cum = 0;
    for (const i of candidates) {
      cum += weight(i);
      if (cum >= o.topP * z) {
        threshold = x[i] as number;
        break;
      }
    }
  }
  const kept = Array.from(x.keys()).filter((i) => (x[i] as number) >= threshold);
  const total = kept.reduce((s, i) => s + weight(i), 0);
  const cdf: number[] = [];
  let cum = 0;
  for (const i of kept) {
    cum += weight(i);
    cdf.push(cum / total);
  }
  const at = cdf.findIndex((c) => c > u);
  return { id: kept[at < 0 ? kept.length - 1 : at] as number, u, kept, cdf };
}
