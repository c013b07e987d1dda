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

/** llama.cpp computes F32 weights in f32: only summation order differs (seen: <= 1e-6). */
const F32_TOLERANCE = 1e-5;
/** llama.cpp's CPU F16 matmul rounds the activations to f16 before the dot products (relative 2^-11 each),
 *  so it drifts from the exact forward by more (seen: 4e-4 to 1.2e-3). The F32 file of the same f16-rounded
 *  weights pins that drift on llama.cpp's arithmetic, not on the reference or the F16 encoding. */
const F16_TOLERANCE = 2e-3;

const dir = mkdtempSync(join(tmpdir(), 'ccmem-llamacpp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  f16: boolean; // f16-rounded weights, greedy compared on the F16 file
  opts: RandomModelOptions;
}

const CASES: Case[] = [
  {
    name: 'f32, multi-head, untied',
    f16: false,
    opts: { hidden: 64, layers: 2, heads: 4, kvHeads: 4, intermediate: 160, vocab: 320, seed: 1 },
  },
  {
    name: 'f32, GQA 8/2, tied, odd vocab',
    f16: false,
    opts: { hidden: 64, layers: 3, heads: 8, kvHeads: 2, intermediate: 172, vocab: 301, seed: 2, tie: true },
  },
  {
    name: 'f16, GQA 6/2, untied',
    f16: true,
    opts: { hidden: 96, layers: 2, heads: 6, kvHeads: 2, intermediate: 256, vocab: 512, seed: 3 },
  },
  {
    name: 'f16, MQA with head_dim 64 > hidden / heads, tied',
    f16: true,
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
    f16: false,
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
    f16: false,
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

function writeTemp(model: ReferenceModel, dtype: 'f32' | 'f16', seed: number): string {
  const path = join(dir, `${seed}-${dtype}.gguf`);
  writeFileSync(path, writeGguf(model, { dtype }));
  return path;
}

/** The worst position's max|ref - peer| / max|peer|. */
async function worstError(path: string, ids: number[], ref: Float32Array, vocab: number): Promise<number> {
  const peer = await llamaCppLogits(path, ids);
  expect(peer.length).toBe(ids.length);
  let worst = 0;
  peer.forEach((p, t) => {
    expect(p.length).toBe(vocab);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < vocab; i++) {
      diff = Math.max(diff, Math.abs((ref[t * vocab + i] as number) - (p[i] as number)));
      scale = Math.max(scale, Math.abs(p[i] as number));
    }
    worst = Math.max(worst, diff / scale);
  });
  return worst;
}

describe('reference forward vs llama.cpp', () => {
  for (const c of CASES) {
    it(`${c.name}: logits at every position, 64 greedy tokens`, async () => {
      const base = randomModel(c.opts);
      const model = c.f16 ? roundModelToF16(base) : base; // the weights llama.cpp will see
      const V = model.config.vocabSize;
      const prompt = randomIds(20, V, c.opts.seed + 100);
      const ref = referenceLogits(model, prompt);

      const f32Path = writeTemp(model, 'f32', c.opts.seed);
      expect(await worstError(f32Path, prompt, ref, V)).toBeLessThan(F32_TOLERANCE);
      const f16Path = c.f16 ? writeTemp(model, 'f16', c.opts.seed) : undefined;
      if (f16Path) expect(await worstError(f16Path, prompt, ref, V)).toBeLessThan(F16_TOLERANCE);

      const greedyPrompt = prompt.slice(0, 6);
      const refGreedy = referenceGreedy(model, greedyPrompt, 64);
      expect(new Set(refGreedy).size).toBeGreaterThan(4); // not a trivially constant continuation
      expect(await llamaCppGreedy(f16Path ?? f32Path, greedyPrompt, 64)).toEqual(refGreedy);
    });
  }
});
