// The GPU forward pass against the CPU reference forward (src/reference/llama.ts) on random models:
// f32 weights to 1e-4 relative at every position, with and without GQA, MQA, q/k/v biases, tied heads,
// llama3 RoPE scaling, chunked prefill and prefix reuse.
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { referenceLogits } from '../../src/reference/llama.js';
import { rng, testGpu } from '../helpers/gpu.js';
import { gpuModel, relError } from '../helpers/gpuModel.js';
import { type RandomModelOptions, randomModel } from '../helpers/randomModel.js';

const CASES: [string, RandomModelOptions][] = [
  ['MHA', { hidden: 64, layers: 2, heads: 4, kvHeads: 4, intermediate: 96, vocab: 97, seed: 1 }],
  ['GQA 4:1, tied', { hidden: 64, layers: 2, heads: 8, kvHeads: 2, intermediate: 80, vocab: 130, seed: 2, tie: true }],
  [
    'MQA, head dim 32',
    { hidden: 96, layers: 1, heads: 3, kvHeads: 1, headDim: 32, intermediate: 64, vocab: 61, seed: 3 },
  ],
  [
    'qwen2 biases, GQA 3:1',
    { hidden: 48, layers: 2, heads: 6, kvHeads: 2, intermediate: 72, vocab: 75, seed: 4, attentionBias: true },
  ],
  [
    'llama3 rope scaling',
    {
      hidden: 64,
      layers: 1,
      heads: 4,
      kvHeads: 2,
      intermediate: 64,
      vocab: 50,
      seed: 5,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8 },
    },
  ],
];

function randomIds(n: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * vocab));
}

describe('GPU forward vs CPU reference (f32)', () => {
  for (const [name, opts] of CASES) {
    it(name, async () => {
      const gpu = await testGpu();
      const ref = randomModel(opts);
      const model = await gpuModel(gpu, ref, 'f32');
      const ids = randomIds(21, opts.vocab, opts.seed);
      // chunk 8 with 21 tokens: three prefill chunks, the last one partial
      const session = new Session(model, { capacity: 32, chunk: 8, logitRows: 8 });
      const got = await session.logits(ids, { all: true });
      const want = referenceLogits(ref, ids);
      const V = opts.vocab;
      got.forEach((row, t) => {
        expect(relError(row, want.subarray(t * V, (t + 1) * V)), `position ${t}`).toBeLessThan(1e-4);
      });
      session.dispose();
      gpu.releaseOwner(model.owner);
    });
  }

  it('reuses the cached prefix: the follow-up equals a fresh computation', async () => {
    const gpu = await testGpu();
    const ref = randomModel({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed: 9 });
    const model = await gpuModel(gpu, ref, 'f32');
    const session = new Session(model, { capacity: 40, chunk: 4 });
    const first = randomIds(10, 40, 1);
    await session.logits(first);
    const followUp = [...first, ...randomIds(7, 40, 2)];
    const [reused] = await session.logits(followUp);
    const fresh = referenceLogits(ref, followUp);
    expect(relError(reused!, fresh.subarray(16 * 40))).toBeLessThan(1e-4);
    // a diverging prompt recomputes from the first difference
    const diverged = [...first.slice(0, 5), ...randomIds(6, 40, 3)];
    const [row] = await session.logits(diverged);
    expect(relError(row!, referenceLogits(ref, diverged).subarray(10 * 40))).toBeLessThan(1e-4);
    session.dispose();
    gpu.releaseOwner(model.owner);
  });
});
