// The options of the reference forward, each checked against a computation that does not use it: a
// closed gate is exactly no LoRA, an open one is the LoRA merged into W, o_proj follows the query row's
// gate, adapter embedding rows are extra vocabulary rows, a hidden key is a removed token, an
// anti-causal mask is a reversed sequence, and a SUM row over one COMP row is that row.
import { describe, expect, it } from 'vitest';
import { layerTensorNames } from '../../src/model/types.js';
import {
  type ReferenceAdapter,
  type ReferenceModel,
  ReferenceSession,
  referenceForward,
  referenceForward64,
  referenceLogits,
} from '../../src/reference/llama.js';
import { randomAdapter, referenceAdapter } from '../../src/reference/random-adapter.js';
import { errorCode, relDiff } from '../helpers/checks.js';
import { randomArray } from '../helpers/gpu.js';
import { randomModel } from '../helpers/randomModel.js';

const model = randomModel({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 50, seed: 31 });
const adapter = referenceAdapter(randomAdapter(model.config, { rank: 4, alpha: 8, compTokens: 3, seed: 5 }));
const V = 50;
const ids = [3, 14, 15, 9, 26, 5, 35];

const row = (logits: ArrayLike<number>, t: number) => Array.from(logits).slice(t * V, (t + 1) * V);

/** The base model with W += (alpha / rank) B A on every adapted projection (ungated LoRA). */
function mergedModel(m: ReferenceModel, a: ReferenceAdapter): ReferenceModel {
  const tensors = new Map(m.tensors);
  for (const [key, { a: A, b: B }] of a.lora) {
    const [layer, p] = key.split('.') as [string, 'q' | 'k' | 'v' | 'o'];
    const name = layerTensorNames(Number(layer))[p];
    const w = Float32Array.from(m.tensors.get(name)!);
    const inDim = A.length / a.rank;
    const outDim = B.length / a.rank;
    for (let r = 0; r < outDim; r++) {
      for (let c = 0; c < inDim; c++) {
        let s = 0;
        for (let j = 0; j < a.rank; j++) s += B[r * a.rank + j]! * A[j * inDim + c]!;
        w[r * inDim + c] = w[r * inDim + c]! + (a.alpha / a.rank) * s;
      }
    }
    tensors.set(name, w);
  }
  return { config: m.config, tensors };
}

describe('referenceForward options', () => {
  it('with every gate closed equals the model without adapter, bit for bit', () => {
    const gated = referenceForward(model, ids, { adapter, gates: ids.map(() => 0), visible: (q, k) => k <= q });
    expect(gated).toEqual(referenceLogits(model, ids));
  });

  it('with every gate open equals the LoRA merged into the weights (f32 merged weights)', () => {
    const open = referenceForward64(model, ids, { adapter, gates: ids.map(() => 1) });
    const merged = referenceForward64(mergedModel(model, adapter), ids);
    expect(relDiff(open, merged)).toBeLessThan(1e-5);
    expect(relDiff(open, referenceForward64(model, ids))).toBeGreaterThan(0.05); // the LoRA matters
  });

  it('applies each row its own gate, o_proj included, over keys computed under their own gates', () => {
    const gates = [1, 0, 0, 1, 1, 0, 1];
    const got = referenceForward64(model, ids, { adapter, gates });
    // two KV-cache sessions sharing one cache: row t runs entirely in the merged model iff its gate is open
    const base = new ReferenceSession(model);
    const merged = new ReferenceSession(mergedModel(model, adapter));
    merged.cache.forEach((_, l) => {
      merged.cache[l] = base.cache[l]!;
    });
    ids.forEach((id, t) => {
      const want = (gates[t] ? merged : base).step(id, t);
      expect(relDiff(row(got, t), want), `row ${t}`).toBeLessThan(1e-5);
    });
  });

  it('reads ids vocab + i from the adapter embedding rows, like an extended vocabulary', () => {
    const D = model.config.hiddenSize;
    const tensors = new Map(model.tensors);
    const embed = new Float32Array((V + 3) * D);
    embed.set(model.tensors.get('model.embed_tokens.weight')!);
    embed.set(adapter.embeddings, V * D);
    tensors.set('model.embed_tokens.weight', embed);
    const head = new Float32Array((V + 3) * D);
    head.set(model.tensors.get('lm_head.weight')!);
    head.set(randomArray(3 * D, 9), V * D);
    tensors.set('lm_head.weight', head);
    const extended = { config: { ...model.config, vocabSize: V + 3 }, tensors };
    const withComp = [3, V + 2, 15, V, V + 1, 9];
    const got = referenceForward(model, withComp, { adapter });
    const want = referenceForward(extended, withComp);
    withComp.forEach((_, t) => {
      expect(row(got, t)).toEqual(Array.from(want.subarray(t * (V + 3), t * (V + 3) + V)));
    });
  });

  it('hiding a key equals removing that token, positions kept', () => {
    const hidden = 2;
    const got = referenceForward(model, ids, { visible: (q, k) => k <= q && (k !== hidden || q === hidden) });
    const keep = ids.map((_, t) => t).filter((t) => t !== hidden);
    const want = referenceLogits(
      model,
      keep.map((t) => ids[t]!),
      keep,
    );
    keep.forEach((t, i) => {
      expect(row(got, t), `row ${t}`).toEqual(row(want, i));
    });
  });

  it('supports masks that look ahead: anti-causal attention equals the reversed sequence', () => {
    const n = ids.length;
    const got = referenceForward64(model, ids, { visible: (q, k) => k >= q, positions: ids.map((_, t) => n - 1 - t) });
    const want = referenceForward64(model, [...ids].reverse());
    ids.forEach((_, t) => {
      expect(relDiff(row(got, t), row(want, n - 1 - t)), `row ${t}`).toBeLessThan(1e-12);
    });
  });

  it('overwrites a SUM row with the K/V of the COMP rows it averages', () => {
    // [a b S x]: x sees a and S (not b), S carries b's K/V in every layer: x reads exactly [a b x]
    const [a, b, x] = [7, 21, 40];
    const got = referenceForward(model, [a, b, 44, x], {
      positions: [0, 1, 30, 3],
      visible: (q, k) => k <= q && !(q === 3 && k === 1),
      sumGroups: [{ sum: [2], comps: [[1]] }],
    });
    const want = referenceLogits(model, [a, b, x], [0, 1, 3]);
    expect(row(got, 3)).toEqual(row(want, 2));
    const plain = referenceForward(model, [a, b, 44, x], {
      positions: [0, 1, 30, 3],
      visible: (q, k) => k <= q && !(q === 3 && k === 1),
    });
    expect(relDiff(row(plain, 3), row(want, 2))).toBeGreaterThan(1e-3);
  });

  it('refuses malformed options with typed errors', () => {
    expect(errorCode(() => referenceForward(model, ids, { gates: [1] }))).toBe('INVALID_INPUT');
    expect(errorCode(() => referenceForward(model, ids, { positions: [0, 1] }))).toBe('INVALID_INPUT');
    expect(errorCode(() => referenceForward(model, ids, { gates: ids.map(() => 2) }))).toBe('INVALID_INPUT');
    expect(errorCode(() => referenceForward(model, ids, { visible: (q, k) => k < q }))).toBe('INVALID_INPUT');
    const badGroup = { sum: [1], comps: [[ids.length]] };
    expect(errorCode(() => referenceForward(model, ids, { sumGroups: [badGroup] }))).toBe('INVALID_INPUT');
    expect(errorCode(() => referenceForward(model, ids, { sumGroups: [{ sum: [1], comps: [[]] }] }))).toBe(
      'INVALID_INPUT',
    );
    expect(errorCode(() => referenceForward(model, [V]))).toBe('INVALID_INPUT'); // no adapter rows
    expect(errorCode(() => referenceForward(model, [V + 3], { adapter }))).toBe('INVALID_INPUT');
    const wrongRank = { ...adapter, rank: 5 };
    expect(errorCode(() => referenceForward(model, ids, { adapter: wrongRank }))).toBe('MODEL_FORMAT');
    const unknown = { ...adapter, lora: new Map([...adapter.lora, ['2.q', adapter.lora.get('0.q')!]]) };
    expect(errorCode(() => referenceForward(model, ids, { adapter: unknown }))).toBe('MODEL_FORMAT');
  });
});
