// Properties of the CPU reference that do not need a peer: RoPE only sees relative positions, greedy
// decoding follows the logits, malformed input fails with the right code.
import { describe, expect, it } from 'vitest';
import { argmax, referenceGreedy, referenceLogits } from '../../src/reference/llama.js';
import { errorCode } from '../helpers/checks.js';
import { randomModel } from '../helpers/randomModel.js';

const model = randomModel({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 50, seed: 11 });
const ids = [3, 14, 15, 9, 26, 5, 35, 8];
const V = 50;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
}

describe('referenceLogits', () => {
  it('depends on positions only through their differences', () => {
    const base = referenceLogits(model, ids);
    const shifted = referenceLogits(
      model,
      ids,
      ids.map((_, i) => i + 1000),
    );
    expect(maxAbsDiff(base, shifted)).toBeLessThan(1e-6); // f32 rounding of the outputs only
    // a gap between tokens 2 and 3 changes every later position and none before
    const gapped = referenceLogits(
      model,
      ids,
      ids.map((_, i) => (i < 3 ? i : i + 5)),
    );
    expect(maxAbsDiff(base.subarray(0, 3 * V), gapped.subarray(0, 3 * V))).toBe(0);
    for (let t = 3; t < ids.length; t++) {
      expect(maxAbsDiff(base.subarray(t * V, (t + 1) * V), gapped.subarray(t * V, (t + 1) * V))).toBeGreaterThan(1e-3);
    }
  });

  it('is causal: a prefix gets the same logits alone', () => {
    expect(referenceLogits(model, ids.slice(0, 5))).toEqual(referenceLogits(model, ids).subarray(0, 5 * V));
  });

  it('refuses bad input with typed errors', () => {
    expect(errorCode(() => referenceLogits(model, [V]))).toBe('INVALID_INPUT');
    expect(errorCode(() => referenceLogits(model, [1, 2], [0]))).toBe('INVALID_INPUT');
    expect(errorCode(() => referenceGreedy(model, [], 3))).toBe('INVALID_INPUT');
    const missing = { config: model.config, tensors: new Map(model.tensors) };
    missing.tensors.delete('model.layers.1.mlp.up_proj.weight');
    expect(errorCode(() => referenceLogits(missing, ids))).toBe('MODEL_FORMAT');
    const short = { config: model.config, tensors: new Map(model.tensors) };
    short.tensors.set('model.norm.weight', new Float32Array(31));
    expect(errorCode(() => referenceLogits(short, ids))).toBe('MODEL_FORMAT');
  });
});

describe('referenceGreedy', () => {
  it('emits the argmax of the logits after each token it feeds back', () => {
    const prompt = ids.slice(0, 3);
    const out = referenceGreedy(model, prompt, 12);
    expect(out).toHaveLength(12);
    const all = referenceLogits(model, [...prompt, ...out]);
    out.forEach((id, i) => {
      const t = prompt.length - 1 + i;
      expect(id).toBe(argmax(all.subarray(t * V, (t + 1) * V)));
    });
  });
});
