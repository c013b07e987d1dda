// The GPU engine against native llama.cpp (node-llama-cpp, flash attention off, f32 KV cache) on the very
// same weights exported to GGUF: logits at every prompt position to 1e-3 relative, 64 greedy tokens equal.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { writeGguf } from '../../src/model/gguf.js';
import { testGpu } from '../helpers/gpu.js';
import { gpuModel, relError } from '../helpers/gpuModel.js';
import { llamaCppGreedy, llamaCppLogits } from '../helpers/llamacpp.js';
import { randomModel, roundModelToF16 } from '../helpers/randomModel.js';

const work = mkdtempSync(join(tmpdir(), 'ccmem-llamacpp-'));
const PROMPT = [1, 17, 42, 7, 99, 3, 250, 64, 12, 5, 180, 33, 2, 77, 150, 8];

describe('ccmem GPU vs llama.cpp', () => {
  for (const dtype of ['f32', 'f16'] as const) {
    it(`${dtype} weights, GQA 4:2`, async () => {
      const gpu = await testGpu();
      const base = randomModel({
        hidden: 64,
        layers: 2,
        heads: 4,
        kvHeads: 2,
        intermediate: 128,
        vocab: 301,
        seed: 21,
      });
      base.config.eosTokenIds = [];
      const ref = dtype === 'f16' ? roundModelToF16(base) : base;
      const path = join(work, `model-${dtype}.gguf`);
      writeFileSync(path, writeGguf(ref, { dtype }));
      const format = dtype === 'f32' ? 'f32' : gpu.features.f16 ? 'f16' : 'f16p';
      const model = await gpuModel(gpu, ref, format);
      const session = new Session(model, { capacity: 96, chunk: 16, logitRows: 16 });

      const ours = await session.logits(PROMPT, { all: true });
      const theirs = await llamaCppLogits(path, PROMPT);
      expect(theirs.length).toBe(PROMPT.length);
      ours.forEach((row, t) => {
        expect(relError(row, theirs[t]!), `position ${t}`).toBeLessThan(1e-3);
      });

      const stream = session.generate(PROMPT, { maxNewTokens: 64, temperature: 0 });
      let next = await stream.next();
      while (!next.done) next = await stream.next();
      expect(next.value.ids).toEqual(await llamaCppGreedy(path, PROMPT, 64));
      session.dispose();
      gpu.releaseOwner(model.owner);
    });
  }
});
