// `ccmem generate --model FILE.gguf`: stories260K written as a GGUF file (F32, its SentencePiece vocabulary)
// reproduces llama2.c's golden greedy ids, from ids and from the prompt text (tokenized from the GGUF
// vocabulary, BOS first); a GGUF file that is not there exits 2 with MODEL_FORMAT. `ccmem convert gguf
// --dtype q8_0|q4_0` writes files whose `ccmem logits` (blocks kept on the GPU) match the f64 reference
// over the dequantized weights.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { dequantize, quantizeQ4_0, quantizeQ8_0 } from '../../src/model/quant.js';
import { referenceLogits } from '../../src/reference/llama.js';
import { storiesGguf } from '../helpers/ggufModel.js';
import { relError } from '../helpers/gpuModel.js';
import { randomModel, writeModelDir } from '../helpers/randomModel.js';
import { storiesGolden } from '../helpers/stories.js';

const BIN = resolve('bin/ccmem.mjs');
const work = mkdtempSync(join(tmpdir(), 'ccmem-cli-gguf-'));
const file = join(work, 'stories260K.gguf');

function ccmem(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  // the CLI runs the compiled dist/ (built by scripts/setup.sh); rebuild so it matches the sources
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  writeFileSync(file, await storiesGguf());
});

describe('ccmem CLI on a GGUF file', () => {
  const g = storiesGolden();
  for (const [how, input] of [
    ['--prompt-ids', g.prompt_ids.join(',')],
    ['--prompt', g.prompt],
  ] as const) {
    it(`generate ${how} reproduces the golden greedy ids`, () => {
      const n = String(g.greedy_ids.length);
      const r = ccmem('generate', '--model', file, how, input, '--max-new-tokens', n, '--json');
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim());
      expect(out.ids).toEqual(g.greedy_ids);
      expect(`${g.prompt}${out.text}\n`).toBe(g.text);
    });
  }

  for (const [dtype, type, quantize] of [
    ['q8_0', 'Q8_0', quantizeQ8_0],
    ['q4_0', 'Q4_0', quantizeQ4_0],
  ] as const) {
    it(`convert gguf --dtype ${dtype}, then logits --model FILE.gguf match the reference to 1e-3`, () => {
      const m = randomModel({ hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 96, vocab: 300, seed: 41 });
      const dir = join(work, `random-${dtype}`);
      writeModelDir(dir, m, 'F32');
      const out = join(work, `random-${dtype}.gguf`);
      const c = ccmem('convert', 'gguf', dir, '--out', out, '--dtype', dtype);
      expect(c.code, c.stderr).toBe(0);
      const ids = [1, 17, 42, 7, 99, 3, 250];
      const r = ccmem('logits', '--model', out, '--prompt-ids', ids.join(','), '--json');
      expect(r.code, r.stderr).toBe(0);
      const tensors = new Map(
        [...m.tensors].map(
          ([name, t]) => [name, name.endsWith('norm.weight') ? t : dequantize(type, quantize(t))] as const,
        ),
      );
      const want = referenceLogits({ config: m.config, tensors }, ids).subarray(6 * 300);
      // the embedding and the LM head are f16 on the GPU (format auto): within f16's rounding of them
      expect(relError(Float32Array.from(JSON.parse(r.stdout).logits), want)).toBeLessThan(1e-3);
    });
  }

  it('convert gguf refuses an unknown --dtype with INVALID_INPUT', () => {
    const r = ccmem('convert', 'gguf', join(work, 'random-q8_0'), '--out', join(work, 'x.gguf'), '--dtype', 'q5_k');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/INVALID_INPUT.*--dtype must be one of f32, f16, q8_0, q4_0/);
  });

  it('a missing GGUF file exits 2 with MODEL_FORMAT', () => {
    const r = ccmem('generate', '--model', join(work, 'absent.gguf'), '--prompt-ids', '1', '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ccmem: error \[MODEL_FORMAT\]: .*absent\.gguf/);
  });
});
