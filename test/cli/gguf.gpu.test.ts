// `ccmem generate --model FILE.gguf`: stories260K written as a GGUF file (F32, its SentencePiece vocabulary)
// reproduces llama2.c's golden greedy ids, from ids and from the prompt text (tokenized from the GGUF
// vocabulary, BOS first); a GGUF file that is not there exits 2 with MODEL_FORMAT.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { storiesGguf } from '../helpers/ggufModel.js';
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

  it('a missing GGUF file exits 2 with MODEL_FORMAT', () => {
    const r = ccmem('generate', '--model', join(work, 'absent.gguf'), '--prompt-ids', '1', '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ccmem: error \[MODEL_FORMAT\]: .*absent\.gguf/);
  });
});
