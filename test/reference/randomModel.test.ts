// The random-model helper's folder writer, read back through the engine's own config and safetensors
// readers: every config field survives, tensors come back exact (F32, F16 of f16-rounded weights) or
// bf16-close.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/model/config.js';
import { checkAgainstConfig, readTensorBytes, readWeightIndex, toF32 } from '../../src/model/safetensors.js';
import { openSource } from '../../src/model/source.js';
import { type RandomModelOptions, randomModel, roundModelToF16, writeModelDir } from '../helpers/randomModel.js';

const dir = mkdtempSync(join(tmpdir(), 'ccmem-random-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VARIANTS: [string, RandomModelOptions][] = [
  [
    'llama, tied, llama3 rope',
    {
      hidden: 32,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      intermediate: 48,
      vocab: 40,
      seed: 1,
      tie: true,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    },
  ],
  [
    'qwen2 (q/k/v biases), head_dim 16, linear rope',
    {
      hidden: 32,
      layers: 1,
      heads: 4,
      kvHeads: 1,
      headDim: 16,
      intermediate: 40,
      vocab: 33,
      seed: 2,
      attentionBias: true,
      ropeScaling: { type: 'linear', factor: 2 },
      maxPositions: 512,
    },
  ],
];

describe('writeModelDir', () => {
  for (const [name, opts] of VARIANTS) {
    it(`${name}: config and F32/F16/BF16 weights read back`, async () => {
      const model = randomModel(opts);
      for (const dtype of ['F32', 'F16', 'BF16'] as const) {
        const path = join(dir, `${opts.seed}-${dtype}`);
        writeModelDir(path, model, dtype);
        const src = openSource(path);
        const config = await loadConfig(src);
        expect(config).toEqual({ ...model.config, torchDtype: config.torchDtype });
        expect(config.torchDtype).toBe(dtype);
        const index = await readWeightIndex(src);
        checkAgainstConfig(index, config);
        const want = dtype === 'F16' ? roundModelToF16(model) : model;
        for (const [tensor, info] of index) {
          const got = toF32(info, await readTensorBytes(src, info));
          const expected = want.tensors.get(tensor)!;
          if (dtype === 'BF16') {
            // bf16 stores 7 mantissa bits: round to nearest is within 2^-8 relative
            const worst = got.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i]!) / Math.abs(expected[i]!)), 0);
            expect(worst).toBeLessThanOrEqual(2 ** -8);
          } else {
            expect(got).toEqual(expected);
          }
        }
      }
    });
  }
});
