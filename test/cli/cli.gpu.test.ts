// The `ccmem` CLI contract, run as a real subprocess with plain node (as external checks call it).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeAdapter } from '../../src/adapters/files.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { ccmReferenceLogits } from '../helpers/ccmReference.js';
import { argmax, relError } from '../helpers/gpuModel.js';
import { randomModel, writeModelDir } from '../helpers/randomModel.js';
import { FIXTURES, storiesGolden } from '../helpers/stories.js';

const BIN = resolve('bin/ccmem.mjs');
const work = mkdtempSync(join(tmpdir(), 'ccmem-cli-'));
const modelDir = join(work, 'stories260K');

function ccmem(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  // the CLI runs the compiled dist/ (built by scripts/setup.sh); rebuild so it matches the sources
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

describe('ccmem CLI: context memory', () => {
  it('memory-logits equals the single-pass masked reference (ccm-merge, sink)', () => {
    const ref = randomModel({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 300, seed: 5 });
    const dir = join(work, 'random-model');
    writeModelDir(dir, ref, 'F32');
    const adapter = randomAdapter(ref.config, { rank: 4, alpha: 8, compTokens: 2, mode: 'merge', sink: true, seed: 3 });
    const adapterDir = join(work, 'random-adapter');
    mkdirSync(adapterDir, { recursive: true });
    for (const [name, data] of Object.entries(writeAdapter(adapter))) writeFileSync(join(adapterDir, name), data);
    const chunks = [
      [1, 40, 41, 42],
      [50, 51],
      [60, 61, 62],
    ];
    const input = [70, 71];
    const r = ccmem(
      'memory-logits',
      '--model',
      dir,
      '--adapter',
      adapterDir,
      '--memory',
      'ccm-merge',
      '--comp-tokens',
      '2',
      '--chunks',
      chunks.map((c) => c.join(',')).join('/'),
      '--input',
      input.join(','),
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.memory.slots).toEqual({ sink: 1, memory: 2, working: 2, capacity: expect.any(Number) });
    expect(out.memory.tokensCompressed).toBe(8);

    const cpuAdapter = { rank: 4, alpha: 8, lora: adapter.lora, embeddings: adapter.embeddings };
    const want = ccmReferenceLogits(ref, cpuAdapter, chunks, input, { mode: 'merge', n: 2, sink: true });
    expect(relError(Float32Array.from(out.logits), want)).toBeLessThan(1e-4);

    const wrong = ccmem(
      'memory-logits',
      '--model',
      dir,
      '--adapter',
      adapterDir,
      '--memory',
      'ccm-concat',
      '--chunks',
      '1',
      '--input',
      '2',
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/error \[INVALID_INPUT\].*trained for ccm-merge/);
  });

  it('chat prints one JSON line per turn with the memory stats (stories260K, window and full)', () => {
    const turns = join(work, 'turns.json');
    writeFileSync(turns, JSON.stringify(['Tell me about a cat.', 'What did the cat eat?', 'And then?']));
    for (const memory of [
      ['--memory', 'full'],
      ['--memory', 'window', '--window', '40', '--sinks', '4'],
    ]) {
      const r = ccmem('chat', '--model', modelDir, ...memory, '--turns', turns, '--max-new-tokens', '24', '--json');
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.length).toBe(3);
      for (const line of lines) {
        expect(typeof line.reply).toBe('string');
        expect(line.ids.length).toBeGreaterThan(0);
        expect(line.memory.policy).toBe(memory[1]);
      }
      if (memory[1] === 'window') {
        expect(lines[2].memory.slots.working).toBeLessThanOrEqual(44);
        expect(lines[2].memory.tokensEvicted).toBeGreaterThan(0);
      } else {
        expect(lines[2].memory.slots.working).toBeGreaterThan(lines[0].memory.slots.working);
      }
    }
  });
});
