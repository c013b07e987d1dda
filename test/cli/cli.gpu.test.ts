// The `ccmem` CLI contract, run as a real subprocess with plain node (as external checks call it).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { argmax } from '../helpers/gpuModel.js';
import { FIXTURES, storiesGolden } from '../helpers/stories.js';

const BIN = resolve('bin/ccmem.mjs');
const work = mkdtempSync(join(tmpdir(), 'ccmem-cli-'));
const modelDir = join(work, 'stories260K');

function ccmem(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  // the CLI runs the compiled dist/ (built by npm ci's prepare step); rebuild so it matches the sources
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  const r = ccmem(
    'convert',
    'llama2c',
    join(FIXTURES, 'stories260K/stories260K.bin'),
    '--tokenizer',
    join(FIXTURES, 'stories260K/tok512.bin'),
    '--out',
    modelDir,
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
});

describe('ccmem CLI', () => {
  it('generate --prompt-ids --json reproduces the golden greedy ids and text', () => {
    const g = storiesGolden();
    const r = ccmem(
      'generate',
      '--model',
      modelDir,
      '--prompt-ids',
      g.prompt_ids.join(','),
      '--max-new-tokens',
      String(g.greedy_ids.length),
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out.ids).toEqual(g.greedy_ids);
    expect(`${g.prompt}${out.text}\n`).toBe(g.text); // run.c ends its output with a newline
    expect(out.timings.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(out.timings.decodeTokensPerSecond).toBeGreaterThan(0);
  });

  it('generate --prompt tokenizes with BOS like llama2.c', () => {
    const g = storiesGolden();
    const r = ccmem(
      'generate',
      '--model',
      modelDir,
      '--prompt',
      g.prompt,
      '--max-new-tokens',
      '8',
      '--json',
      '--temperature',
      '0',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ids).toEqual(g.greedy_ids.slice(0, 8));
  });

  it('logits --json prints the last position, whose argmax is the first greedy token', () => {
    const g = storiesGolden();
    const r = ccmem('logits', '--model', modelDir, '--prompt-ids', g.prompt_ids.join(','), '--json');
    expect(r.code, r.stderr).toBe(0);
    const { logits } = JSON.parse(r.stdout);
    expect(logits.length).toBe(512);
    expect(argmax(logits)).toBe(g.greedy_ids[0]);
  });

  it('convert gguf writes a GGUF file', () => {
    const out = join(work, 'stories.gguf');
    const r = ccmem('convert', 'gguf', modelDir, '--out', out, '--dtype', 'f32');
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out).subarray(0, 4).toString('latin1')).toBe('GGUF');
  });

  it('bad input exits 2 with a typed error and no stack trace', () => {
    const missing = ccmem('generate', '--model', join(work, 'nope'), '--prompt-ids', '1,2');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/error \[(MODEL_FORMAT|FETCH)\]/);
    const badIds = ccmem('generate', '--model', modelDir, '--prompt-ids', '1,x');
    expect(badIds.code).toBe(2);
    expect(badIds.stderr).toMatch(/error \[INVALID_INPUT\].*"x"/);
    const outOfVocab = ccmem('generate', '--model', modelDir, '--prompt-ids', '1,512');
    expect(outOfVocab.stderr).toMatch(/error \[INVALID_INPUT\].*512/);
    const unknown = ccmem('frobnicate');
    expect(unknown.code).toBe(2);
  });
});
