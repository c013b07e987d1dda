// Benchmark: ccmem against llama.cpp on the same weights (stories260K, the SmolLM2-135M shape with random
// f16 weights): ccmem in Node (Dawn, lavapipe by default) against native llama.cpp (node-llama-cpp, CPU),
// and ccmem in headless Chromium (a Web Worker; WebGPU on SwiftShader, or lavapipe through ANGLE) against
// wllama (llama.cpp in WebAssembly) in the same browser. The peers read a GGUF export, ccmem in Chromium a
// Hugging Face folder over HTTP. Each engine runs in a child process of this script (a browser engine: in a
// fresh Chromium started by that child), one after the other (they share the same cores), so each peak
// RSS is that engine's own. Writes the bench:peers section of BENCHMARKS.md, or one JSON document on stdout
// with --json. Progress goes to stderr. See bench/README.md.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { log, parseList, runMain, UsageError } from './cli.js';
import { writeSection } from './markdown.js';
import { buildBrowserPages } from './peers-chromium.js';
import {
  DEFAULT_ENGINES,
  ENGINES,
  type Engine,
  type EngineFiles,
  type EngineResult,
  engineSpec,
  measureEngine,
} from './peers-engines.js';
import {
  BENCH_MODELS,
  type BenchModel,
  DEFAULT_MODELS,
  ggufBytes,
  type ModelSource,
  modelSource,
  writeModelFolder,
} from './peers-models.js';
import { type PeersResult, peersSection } from './peers-report.js';
import type { Plan } from './peers-runs.js';

const USAGE = `usage: npm run bench -- [options]
  --quick            1 run, 32-token prompt, 8 decoded tokens, no 512-token prefill (a smoke run, see bench/README.md)
  --runs N           runs per engine and model (default 3; 1 with --quick)
  --prompt P         prompt tokens of the generation runs (default 128; 32 with --quick)
  --long-prompt L    prompt of the prefill-only runs, 0 for none (default 512, capped at a model's positions
                     minus one; 0 with --quick)
  --decode D         greedy tokens per generation run (default 128; 8 with --quick)
  --threads T        llama.cpp threads (default 1: its decode measured fastest so on these 2 cores, see bench/README.md)
  --wllama-threads T wllama threads (default 2, as the issue sets it)
  --models LIST      comma-separated, of ${BENCH_MODELS.join(',')} (default ${DEFAULT_MODELS.join(',')})
  --engines LIST     comma-separated, of ${ENGINES.join(',')} (default ${DEFAULT_ENGINES.join(',')})
  --seed S           random weights and prompts seed (default 1)
  --out FILE         markdown file whose bench:peers section is replaced (default BENCHMARKS.md)
  --dry-run          write no markdown
  --json             print one JSON document on stdout`;

const list = <T extends string>(name: string, value: string, allowed: readonly T[]) =>
  parseList(name, value, allowed, USAGE);

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      prompt: { type: 'string' },
      'long-prompt': { type: 'string' },
      decode: { type: 'string' },
      threads: { type: 'string', default: '1' },
      'wllama-threads': { type: 'string', default: '2' },
      models: { type: 'string', default: DEFAULT_MODELS.join(',') },
      engines: { type: 'string', default: DEFAULT_ENGINES.join(',') },
      seed: { type: 'string', default: '1' },
      out: { type: 'string', default: 'BENCHMARKS.md' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      // internal: measure one engine on one model in this process (see spawnEngine)
      child: { type: 'string' },
      'child-files': { type: 'string' },
      'child-plan': { type: 'string' },
    },
  });
  const int = (name: string, v: string, min = 1) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${name} must be an integer >= ${min}, got ${v}\n${USAGE}`);
    return n;
  };
  const q = values.quick;
  const plan: Plan = values['child-plan']
    ? JSON.parse(values['child-plan'])
    : {
        runs: int('runs', values.runs ?? (q ? '1' : '3')),
        prompt: int('prompt', values.prompt ?? (q ? '32' : '128'), 2),
        longPrompt: int('long-prompt', values['long-prompt'] ?? (q ? '0' : '512'), 0),
        decode: int('decode', values.decode ?? (q ? '8' : '128'), 2),
        threads: int('threads', values.threads),
        wllamaThreads: int('wllama-threads', values['wllama-threads']),
        seed: int('seed', values.seed),
      };
  return {
    ...values,
    plan,
    models: list('model', values.models, BENCH_MODELS),
    engines: list('engine', values.engines, ENGINES),
  };
}

type Options = ReturnType<typeof options>;

function commandLine(): string {
  const args = process.argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  const icd = process.env.VK_ICD_FILENAMES ? `VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES} ` : '';
  return `${icd}node ${relative(process.cwd(), process.argv[1] ?? '')}${args ? ` ${args}` : ''}`;
}

/** Runs this script as `--child` for one engine and model; its stdout is the EngineResult. */
function spawnEngine(engine: Engine, model: BenchModel, files: EngineFiles, plan: Plan): Promise<EngineResult> {
  const args = [
    process.argv[1]!,
    '--child',
    engine,
    '--models',
    model,
    '--child-files',
    JSON.stringify(files),
    '--child-plan',
    JSON.stringify(plan),
  ];
  return new Promise((resolveResult, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolveResult(JSON.parse(out) as EngineResult);
      else reject(new Error(`${engine} on ${model} failed (exit ${code})`));
    });
  });
}

/** Writes the file an engine reads: the GGUF export or the Hugging Face folder. */
async function writeEngineFile(need: keyof EngineFiles, source: ModelSource, files: EngineFiles): Promise<void> {
  if (need === 'folder') return writeModelFolder(source, files.folder);
  const bytes = await ggufBytes(source).catch((e) => {
    throw new Error(`GGUF export failed: ${e}`, { cause: e });
  });
  writeFileSync(files.gguf, bytes);
}

async function measure(o: Options): Promise<PeersResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ccmem-bench-peers-'));
  const loads: number[][] = [];
  const models: PeersResult['models'] = [];
  let adapter = 'none (ccmem not run in Node)';
  let pagesBuilt: Promise<void> | undefined;
  try {
    for (const name of o.models) {
      const source = modelSource(name, o.plan.seed);
      const files: EngineFiles = { gguf: join(dir, `${name}.gguf`), folder: join(dir, name) };
      const written = new Map<keyof EngineFiles, Promise<void>>();
      const engines: EngineResult[] = [];
      const failures: { engine: Engine; error: string }[] = [];
      for (const engine of o.engines) {
        loads.push(loadavg());
        log(`${name}: ${engine} ...`);
        try {
          const { needs, browser } = engineSpec(engine);
          if (browser) await (pagesBuilt ??= buildBrowserPages());
          if (needs) {
            if (!written.has(needs)) written.set(needs, writeEngineFile(needs, source, files));
            await written.get(needs);
          }
          const r = await spawnEngine(engine, name, files, o.plan);
          if (r.adapter) adapter = r.adapter;
          const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]?.toFixed(1);
          log(
            `${name}: ${engine}: prefill ${med(r.runs.map((t) => t.prefillTokensPerSecond))} tok/s, ` +
              `decode ${med(r.runs.map((t) => t.decodeTokensPerSecond))} tok/s, load ${(r.loadMs / 1000).toFixed(1)} s`,
          );
          engines.push(r);
        } catch (e) {
          // recorded, not fatal: the other engines' numbers are still worth having
          const error = e instanceof Error ? e.message : String(e);
          log(`${name}: ${engine} FAILED: ${e instanceof Error ? e.stack : error}`);
          failures.push({ engine, error });
          process.exitCode = 1;
        }
      }
      models.push({ name, dtype: source.dtype, engines, failures });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  loads.push(loadavg());
  return {
    date: new Date().toISOString(),
    machine: {
      adapter,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadAverage: loads,
    },
    command: commandLine(),
    plan: o.plan,
    models,
  };
}

async function main(): Promise<void> {
  const o = options();
  if (o.help) {
    log(USAGE);
    return;
  }
  if (o.child) {
    const [engine] = list('engine', o.child, ENGINES);
    const [model] = o.models;
    const files: EngineFiles = JSON.parse(o['child-files'] ?? '{}');
    const result = await measureEngine(engine!, modelSource(model!, o.plan.seed), o.plan, files);
    process.stdout.write(JSON.stringify(result));
    return;
  }
  const result = await measure(o);
  if (!o['dry-run']) {
    writeSection(o.out, 'peers', peersSection(result));
    log(`wrote ${o.out}`);
  }
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
}

await runMain(main);
