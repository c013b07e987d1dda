// Seeded random weights of a model's exact shape, as a TensorReader for uploadWeights: matrices uniform
// in +-sqrt(3 / fan_in) (unit-variance outputs, so activations stay O(1) through every layer), norms 1.
// Deterministic per (seed, tensor name), so every run and every policy sees the same model.
import { expectedShapes, type ModelConfig } from '../src/model/types.js';
import type { TensorReader } from '../src/model/weights.js';
import { mulberry32 as rng } from '../src/util/random.js';

/** FNV-1a of a string, mixed with `seed`: one independent stream per tensor. */
function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function uniformArray(n: number, seed: number, scale: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

export function randomWeights(config: ModelConfig, seed: number): TensorReader {
  const shapes = expectedShapes(config);
  return async (name) => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`no tensor ${name} in this model shape`);
    if (shape.length === 1) return new Float32Array(shape[0]!).fill(1);
    const [rows, cols] = shape as [number, number];
    return uniformArray(rows * cols, streamSeed(seed, name), Math.sqrt(3 / cols));
  };
}
