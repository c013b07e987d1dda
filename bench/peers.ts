// Benchmark: ccmem in Node (Dawn, lavapipe by default) against native llama.cpp (node-llama-cpp, CPU) on the
// same weights (stories260K, the SmolLM2-135M shape with random f16 weights), exported to GGUF for the peer.
// Each engine runs in a child process of this script, one after the other (they share the same cores),
// so each peak RSS is that engine's own. Writes the bench:peers section of BENCHMARKS.md, or one JSON
// document on stdout with --json. Progress goes to stderr. See bench/README.md.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { log, runMain, UsageError } from './cli.js';
import { writeSection } from './markdown.js';
import { ENGINES, type Engine, type EngineResult, measureEngine, type Plan } from './peers-engines.js';
import { BENCH_MODELS, type BenchModel, ggufBytes, modelSource } from './peers-models.js';
import { type PeersResult, peersSection } from './peers-report.js';

const USAGE = `usage: npm run bench -- [options]
  --quick            1 run, 128-token prompt, 32 decoded tokens, no 512-token prefill (under 5 minutes)
  --runs N           runs per engine and model (default 3; 1 with --quick)
  --prompt P         prompt tokens of the generation runs (default 128)
  --long-prompt L    prompt of the prefill-only runs, 0 for none (default 512; 0 with --quick)
  --decode D         greedy tokens per generation run (default 128; 32 with --quick)
  --threads T        llama.cpp threads (default 1: more spin-wait on shared cores, see bench/README.md)
  --models LIST      comma-separated subset of ${BENCH_MODELS.join(',')}
  --engines LIST     comma-separated subset of ${ENGINES.join(',')}
  --seed S           random weights and prompts seed (default 1)
  --out FILE         markdown file whose bench:peers section is replaced (default BENCHMARKS.md)
  --dry-run          write no markdown
  --json             print one JSON document on stdout`;

function list<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  return value.split(',').map((v) => {
    if (!allowed.includes(v as T)) throw new UsageError(`unknown ${name} ${v}\n${USAGE}`);
    return v as T;
  });
}

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      prompt: { type: 'string', default: '128' },
      'long-prompt': { type: 'string' },
      decode: { type: 'string' },
      threads: { type: 'string', default: '1' },
      models: { type: 'string', default: BENCH_MODELS.join(',') },
      engines: { type: 'string', default: ENGINES.join(',') },
      seed: { type: 'string', default: '1' },
      out: { type: 'string', default: 'BENCHMARKS.md' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      // internal: measure one engine on one model in this process (see spawnEngine)
      child: { type: 'string' },
      gguf: { type: 'string' },
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
        prompt: int('prompt', values.prompt, 2),
        longPrompt: int('long-prompt', values['long-prompt'] ?? (q ? '0' : '512'), 0),
        decode: int('decode', values.decode ?? (q ? '32' : '128'), 2),
        threads: int('threads', values.threads),
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
function spawnEngine(engine: Engine, model: BenchModel, gguf: string, plan: Plan): Promise<EngineResult> {
  const args = [
    process.argv[1]!,
    '--child',
    engine,
    '--models',
    model,
    '--gguf',
    gguf,
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

async function measure(o: Options): Promise<PeersResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ccmem-bench-peers-'));
  const loads: number[][] = [];
  const models: PeersResult['models'] = [];
  let adapter = 'none (ccmem not run)';
  try {
    for (const name of o.models) {
      const source = modelSource(name, o.plan.seed);
      const gguf = join(dir, `${name}.gguf`);
      const engines: EngineResult[] = [];
      const failures: { engine: Engine; error: string }[] = [];
      for (const engine of o.engines) {
        loads.push(loadavg());
        log(`${name}: ${engine} ...`);
        try {
          if (engine === 'llama.cpp') {
            const bytes = await ggufBytes(source).catch((e) => {
              throw new Error(`GGUF export failed: ${e}`, { cause: e });
            });
            writeFileSync(gguf, bytes);
          }
          const r = await spawnEngine(engine, name, gguf, o.plan);
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
    const result = await measureEngine(engine!, modelSource(model!, o.plan.seed), o.plan, o.gguf ?? '');
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
