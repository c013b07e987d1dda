// The CLI as a newcomer first meets it (issue 11), run as a real subprocess: no Dawn notices on stderr,
// the official PEFT adapter layout under --memory ccm-concat, missing files as one line with status 2,
// hub ids from a mirror (HF_ENDPOINT) at a --revision with a progress bar on a terminal, and a reply cut
// by a full cache that says so.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAdapter } from '../../src/adapters/files.js';
import { loadConfig } from '../../src/model/config.js';
import { openSource } from '../../src/model/source.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { ccmReferenceLogits } from '../helpers/ccmReference.js';
import { relError } from '../helpers/gpuModel.js';
import { parseRange } from '../helpers/http-range.js';
import { peftFiles, writeFolder } from '../helpers/peftAdapter.js';
import { randomModel, writeModelDir } from '../helpers/randomModel.js';
import { storiesGolden, storiesModelDir } from '../helpers/stories.js';

const BIN = resolve('bin/ccmem.mjs');
const work = mkdtempSync(join(tmpdir(), 'ccmem-first-use-'));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/ccmem.mjs (asynchronously: the test's own HTTP server must keep answering). */
function ccmem(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    const { CCMEM_STDERR_TTY: _, ...inherited } = process.env;
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...inherited, ...env }, timeout: 180_000, maxBuffer: 64 << 20 },
      (error, stdout, stderr) =>
        done({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

const json = (r: Run) => JSON.parse(r.stdout.trim());

beforeAll(() => {
  // the CLI runs the compiled dist/ (built by scripts/setup.sh); rebuild so it matches the sources
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
});

/** Dawn prints its limit notices for this driver's adapter (Mesa lavapipe reports 1000000 for both limits). */
const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';

describe('stderr stays clean', () => {
  it.skipIf(!existsSync(LAVAPIPE_ICD))("Dawn's limit notices never reach stderr (issue 11, item 11)", async () => {
    const args = ['generate', '--model', storiesModelDir(), '--prompt-ids', '1,2', '--max-new-tokens', '2', '--json'];
    const env = { VK_ICD_FILENAMES: LAVAPIPE_ICD };
    const inPlace = await ccmem(args, { ...env, CCMEM_DEBUG: '1' }); // unfiltered: what Dawn itself prints
    expect(inPlace.stderr).toMatch(/^Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced/m);
    const r = await ccmem(args, env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(json(r).ids).toEqual(json(inPlace).ids);
  });

  it('a GPU command prints nothing on stderr and says why it finished in its JSON', async () => {
    const g = storiesGolden();
    const args = ['generate', '--model', storiesModelDir(), '--prompt-ids', g.prompt_ids.join(','), '--json'];
    const r = await ccmem([...args, '--max-new-tokens', '8']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(json(r)).toMatchObject({ ids: g.greedy_ids.slice(0, 8), finishReason: 'length' });
  });

  it('--max-new-tokens past the cache: the reply stops there and stderr says so (exit 0)', async () => {
    const r = await ccmem([
      'generate',
      '--model',
      storiesModelDir(),
      '--prompt-ids',
      '1',
      '--max-new-tokens',
      '2000',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = json(r);
    expect(out.finishReason).toBe('length');
    expect(out.ids.length).toBeLessThan(2000);
    expect(r.stderr).toBe(
      `ccmem: stopped after ${out.ids.length} of 2000 new tokens: the cache is full (512 tokens)\n`,
    );
  });

  it('chat: a turn cut by a full cache says so, and every line has its finishReason', async () => {
    const turns = join(work, 'turns.json');
    writeFileSync(turns, JSON.stringify(['Tell me a long story about a cat.']));
    const flags = ['--memory', 'full', '--capacity', '48', '--turns', turns, '--max-new-tokens', '200', '--json'];
    const r = await ccmem(['chat', '--model', storiesModelDir(), ...flags]);
    expect(r.code, r.stderr).toBe(0);
    const line = json(r);
    expect(line.finishReason).toBe('length');
    expect(r.stderr).toBe(`ccmem: stopped after ${line.ids.length} of 200 new tokens: the cache is full (48 tokens)\n`);
  });
});

describe('missing input files: one line, status 2 (issue 11, item 5)', () => {
  it('the commands of the report', async () => {
    const cases: [string[], RegExp][] = [
      [['convert', 'llama2c', '/nope.bin', '--out', join(work, 'x')], /checkpoint \/nope\.bin: no such file/],
      [['chat', '--model', storiesModelDir(), '--memory', 'full', '--turns', '/nope.json'], /--turns \/nope\.json/],
      [['generate', '--model', join(work, 'nope'), '--prompt-ids', '1'], /\[MODEL_FORMAT\]: .*nope: no such folder/],
    ];
    for (const [args, message] of cases) {
      const r = await ccmem(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^ccmem: error \[[A-Z_]+\]: [^\n]*\n$/);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('the official PEFT adapter layout under a ccm policy (issue 11, item 2)', () => {
  const ref = randomModel({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 300, seed: 7 });
  const modelDir = join(work, 'random-model');
  const adapter = randomAdapter(ref.config, { rank: 4, alpha: 8, compTokens: 2, mode: 'concat', seed: 4 });
  let peftDir: string;
  let projectDir: string;
  beforeAll(() => {
    writeModelDir(modelDir, ref, 'F32');
    peftDir = writeFolder(peftFiles(adapter));
    projectDir = writeFolder(writeAdapter(adapter));
  });

  const chunks = [
    [1, 40, 41, 42],
    [50, 51, 52],
  ];
  const memoryLogits = (adapterDir: string, ...memory: string[]) =>
    ccmem([
      'memory-logits',
      '--model',
      modelDir,
      '--adapter',
      adapterDir,
      ...memory,
      '--chunks',
      chunks.map((c) => c.join(',')).join('/'),
      '--input',
      '70,71',
      '--json',
    ]);

  it('memory-logits --memory ccm-concat --comp-tokens 2 reads it, exactly as the same adapter in ccmem format', async () => {
    const peft = await memoryLogits(peftDir, '--memory', 'ccm-concat', '--comp-tokens', '2');
    expect(peft.code, peft.stderr).toBe(0);
    const project = await memoryLogits(projectDir, '--memory', 'ccm-concat', '--comp-tokens', '2');
    expect(project.code, project.stderr).toBe(0);
    expect(json(peft)).toEqual(json(project));
    expect(json(peft).memory.slots).toMatchObject({ memory: 4 });
    const cpuAdapter = { rank: 4, alpha: 8, lora: adapter.lora, embeddings: adapter.embeddings };
    const want = ccmReferenceLogits(ref, cpuAdapter, chunks, [70, 71], { mode: 'concat', n: 2, sink: false });
    expect(relError(Float32Array.from(json(peft).logits), want)).toBeLessThan(1e-4);
  });

  it('the mode alone is enough (the COMP count is its rows); a count the rows contradict is refused', async () => {
    const r = await memoryLogits(peftDir, '--memory', 'ccm-stream');
    expect(r.code, r.stderr).toBe(0);
    const wrong = await memoryLogits(peftDir, '--memory', 'ccm-concat', '--comp-tokens', '3');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^ccmem: error \[MODEL_FORMAT\]: .*embeddingRows/);
  });

  it('chat --memory ccm-concat runs it on stories260K; under window nothing says the mode and the error stays', async () => {
    const config = await loadConfig(openSource(storiesModelDir()));
    const stories = writeFolder(peftFiles(randomAdapter(config, { rank: 4, compTokens: 2, seed: 5 })));
    const turns = join(work, 'two-turns.json');
    writeFileSync(turns, JSON.stringify(['Hi, I am Ada.', 'Tell me a story.']));
    const base = ['chat', '--model', storiesModelDir(), '--adapter', stories, '--turns', turns];
    const r = await ccmem([...base, '--memory', 'ccm-concat', '--max-new-tokens', '6', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.memory.policy, l.memory.slots.memory])).toEqual([
      ['ccm-concat', 2],
      ['ccm-concat', 4],
    ]);
    const window = await ccmem([...base, '--memory', 'window', '--json']);
    expect(window.code).toBe(2);
    expect(window.stderr).toMatch(/^ccmem: error \[MODEL_FORMAT\]: a PEFT CCM adapter does not record its mode/);
  });
});

describe('hub ids from a mirror at a revision (issue 11, items 10 and 11)', () => {
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(`${req.method} ${path}`);
    const m = /^\/org\/stories\/resolve\/v2\/([\w.]+)$/.exec(path);
    let data: Uint8Array;
    try {
      if (!m) throw new Error('not served');
      data = readFileSync(join(storiesModelDir(), m[1]!));
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    const range = parseRange(req.headers.range, data.length);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
      return;
    }
    const [start, end] = range ?? [0, data.length - 1];
    const headers = {
      'content-length': end - start + 1,
      ...(range ? { 'content-range': `bytes ${start}-${end}/${data.length}` } : {}),
    };
    res.writeHead(range ? 206 : 200, headers);
    res.end(req.method === 'HEAD' ? undefined : data.subarray(start, end + 1));
  });
  let endpoint: string;
  beforeAll(async () => {
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  const g = storiesGolden();
  const generate = [
    'generate',
    '--model',
    'org/stories',
    '--prompt-ids',
    g.prompt_ids.join(','),
    '--max-new-tokens',
    '8',
    '--json',
  ];

  it('HF_ENDPOINT and --revision: the golden greedy ids, a progress bar on a terminal only', async () => {
    requests.length = 0;
    const r = await ccmem([...generate, '--revision', 'v2'], { HF_ENDPOINT: endpoint, CCMEM_STDERR_TTY: '100' });
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).ids).toEqual(g.greedy_ids.slice(0, 8));
    expect(requests).toContain('GET /org/stories/resolve/v2/config.json');
    expect(requests.every((q) => q.includes('/org/stories/resolve/v2/'))).toBe(true);
    // drawn in place (\r ... erase to end of line), ending complete, then erased: no line is left behind
    const draws = r.stderr.split('\r').filter(Boolean);
    expect(draws.some((d) => /^downloading model\.safetensors \[#{20}\] 100% /.test(d))).toBe(true);
    expect(draws.at(-1)).toBe('\x1b[K');
    expect(r.stderr).not.toContain('\n');

    const piped = await ccmem([...generate, '--revision', 'v2'], { HF_ENDPOINT: `${endpoint}/` });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).toBe('');
  });

  it('the default revision main, absent from the mirror, is a missing file naming its URL', async () => {
    const r = await ccmem(generate, { HF_ENDPOINT: endpoint });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^ccmem: error \[MODEL_FORMAT\]: org\/stories: missing file config\.json .*\/org\/stories\/resolve\/main\/config\.json/,
    );
    const local = await ccmem(['generate', '--model', storiesModelDir(), '--revision', 'v2', '--prompt-ids', '1']);
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/^ccmem: error \[INVALID_INPUT\]: a revision \(v2\) applies to hub ids/);
  });
});
