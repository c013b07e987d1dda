// The CPU reference forward against llama.cpp (through the GGUF export) on random models: logits at every
// prompt position, then 64 greedy tokens. Logit error is measured per position as max|ref - peer| / max|peer|.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeGguf } from '../../src/model/gguf.js';
import { type ReferenceModel, referenceGreedy, referenceLogits } from '../../src/reference/llama.js';
import { rng } from '../helpers/gpu.js';
import { llamaCppGreedy, llamaCppLogits } from '../helpers/llamacpp.js';
import { type RandomModelOptions, randomModel, roundModelToF16 } from '../helpers/randomModel.js';

const dir = mkdtempSync(join(tmpdir(), 'ccmem-llamacpp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOLERANCE = 1e-3;

interface Case {
  name: string;
  dtype: 'f32' | 'f16';
  opts: RandomModelOptions;
}

const CASES: Case[] = [
  {
    name: 'f32, multi-head, untied',
    dtype: 'f32',
    opts: { hidden: 64, layers: 2, heads: 4, kvHeads: 4, intermediate: 160, vocab: 320, seed: 1 },
  },
  {
    name: 'f32, GQA 8/2, tied, odd vocab',
    dtype: 'f32',
    opts: { hidden: 64, layers: 3, heads: 8, kvHeads: 2, intermediate: 172, vocab: 301, seed: 2, tie: true },
  },
  {
    name: 'f16, GQA 6/2, untied',
    dtype: 'f16',
    opts: { hidden: 96, layers: 2, heads: 6, kvHeads: 2, intermediate: 256, vocab: 512, seed: 3 },
  },
  {
    name: 'f16, MQA with head_dim 64 > hidden / heads, tied',
    dtype: 'f16',
    opts: {
      hidden: 64,
      layers: 2,
      heads: 2,
      kvHeads: 1,
      headDim: 64,
      intermediate: 128,
      vocab: 264,
      seed: 4,
      tie: true,
    },
  },
  {
    name: 'f32, q/k/v biases, theta 500000 with llama3 rope scaling',
    dtype: 'f32',
    opts: {
      hidden: 64,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      intermediate: 128,
      vocab: 260,
      seed: 5,
      attentionBias: true,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 },
    },
  },
  {
    name: 'f32, linear rope scaling',
    dtype: 'f32',
    opts: {
      hidden: 32,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      intermediate: 64,
      vocab: 277,
      seed: 6,
      ropeScaling: { type: 'linear', factor: 4 },
    },
  },
];

function randomIds(n: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * vocab));
}

function ggufFor(c: Case): { model: ReferenceModel; path: string } {
  const base = randomModel(c.opts);
  const model = c.dtype === 'f16' ? roundModelToF16(base) : base; // the weights llama.cpp will see
  const path = join(dir, `${c.opts.seed}.gguf`);
  writeFileSync(path, writeGguf(model, { dtype: c.dtype }));
  return { model, path };
}

/** max|a - b| / max|b| over one position's logits. */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    scale = Math.max(scale, Math.abs(b[i] as number));
  }
  return diff / scale;
}

describe('reference forward vs llama.cpp', () => {
  for (const c of CASES) {
    it(`${c.name}: logits at every position, 64 greedy tokens`, async () => {
      const { model, path } = ggufFor(c);
      const V = model.config.vocabSize;
      const prompt = randomIds(20, V, c.opts.seed + 100);

      const ref = referenceLogits(model, prompt);
      const peer = await llamaCppLogits(path, prompt);
      expect(peer.length).toBe(prompt.length);
      const errors = peer.map((p, t) => relativeError(ref.subarray(t * V, (t + 1) * V), p));
      console.log(c.name, Math.max(...errors));
      expect(Math.max(...errors)).toBeLessThan(TOLERANCE);

      const greedyPrompt = prompt.slice(0, 6);
      const refGreedy = referenceGreedy(model, greedyPrompt, 64);
      console.log(new Set(refGreedy).size, refGreedy.join(','));
      expect(new Set(refGreedy).size).toBeGreaterThan(4); // not a trivially constant continuation
      expect(await llamaCppGreedy(path, greedyPrompt, 64)).toEqual(refGreedy);
    });
  }
});
