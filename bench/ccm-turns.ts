// Benchmark: a fixed, seeded multi-turn chat on the SmolLM2-135M shape (random weights, random CCM
// adapter) under each memory policy, recording per turn the latency split (prefill, decode, compression)
// and the KV bytes in use against the full-context equivalent. Writes a section of BENCHMARKS.md and an
// SVG plot, or one JSON document on stdout with --json. Progress goes to stderr. See bench/README.md.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { uploadAdapter } from '../src/adapters/gpu.js';
import { acquireGpu } from '../src/gpu/device.js';
import { nodeGpu } from '../src/gpu/node.js';
import type { WeightFormat } from '../src/gpu/tensor.js';
import { parseConfig } from '../src/model/config.js';
import type { LoadedModel } from '../src/model/load.js';
import { uploadWeights } from '../src/model/weights.js';
import { randomAdapter } from '../src/reference/random-adapter.js';
import {
  BENCH_POLICIES,
  type BenchPolicy,
  type ChatShape,
  policySetup,
  runPolicy,
  userMessages,
} from './chat-turns.js';
import { log, runMain, UsageError } from './cli.js';
import { writeSection } from './markdown.js';
import { randomWeights } from './random-weights.js';
import { type BenchResult, kvBytesSvg, markdownSection, type PolicyRun } from './report.js';

const USAGE = `usage: npm run bench:ccm -- [options]
  --quick            10 turns, writes nothing unless --out is given (for iterating)
  --turns N          chat turns (default 100)
  --user U           user message tokens per turn (default 8)
  --reply R          reply tokens per turn (default 4)
  --comp N           COMP tokens per compression step (default 4)
  --rank R           adapter LoRA rank (default 8)
  --budget B         ccm-concat memory budget in slots (default 64)
  --window W         window policy window, after 4 sinks (default 64)
  --policies LIST    comma-separated subset of ${BENCH_POLICIES.join(',')}
  --seed S           weights, adapter and messages seed (default 1)
  --config PATH      model config.json (default ../shared/fixtures/smollm2-135m/config.json)
  --out FILE         markdown file to update (default BENCHMARKS.md; none with --quick)
  --svg FILE         plot file (default bench/results/ccm-turns-kv.svg)
  --json             print one JSON document with every turn on stdout
  --render FILE      measure nothing: write the markdown and plot of a saved --json document`;

/** A bad command line: reported as its message and the usage, without a stack. */

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      turns: { type: 'string' },
      user: { type: 'string', default: '8' },
      reply: { type: 'string', default: '4' },
      comp: { type: 'string', default: '4' },
      rank: { type: 'string', default: '8' },
      budget: { type: 'string', default: '64' },
      window: { type: 'string', default: '64' },
      policies: { type: 'string', default: BENCH_POLICIES.join(',') },
      seed: { type: 'string', default: '1' },
      config: { type: 'string', default: '../shared/fixtures/smollm2-135m/config.json' },
      out: { type: 'string' },
      svg: { type: 'string', default: 'bench/results/ccm-turns-kv.svg' },
      json: { type: 'boolean', default: false },
      render: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${v}\n${USAGE}`);
    return n;
  };
  const policies = values.policies.split(',').map((p) => {
    if (!BENCH_POLICIES.includes(p as BenchPolicy)) throw new UsageError(`unknown policy ${p}\n${USAGE}`);
    return p as BenchPolicy;
  });
  const shape: ChatShape = {
    turns: int('turns', values.turns ?? (values.quick ? '10' : '100')),
    user: int('user', values.user),
    reply: int('reply', values.reply),
    compTokens: int('comp', values.comp),
    budget: int('budget', values.budget),
    sinks: 4,
    window: int('window', values.window),
  };
  return {
    help: values.help,
    shape,
    rank: int('rank', values.rank),
    seed: int('seed', values.seed),
    policies,
    config: values.config,
    out: values.out ?? (values.quick && !values.render ? undefined : 'BENCHMARKS.md'),
    svg: values.svg,
    json: values.json,
    render: values.render,
  };
}

/** How this run was started, for the record: the npm script when it was that, else the node command line. */
function commandLine(): string {
  const args = process.argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench:ccm') return `npm run bench:ccm${args ? ` -- ${args}` : ''}`;
  const icd = process.env.VK_ICD_FILENAMES ? `VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES} ` : '';
  return `${icd}node ${relative(process.cwd(), process.argv[1] ?? '')}${args ? ` ${args}` : ''}`;
}

type Options = ReturnType<typeof options>;

/** Runs the chat under every selected policy, each on its own device. */
async function measure(o: Options): Promise<BenchResult> {
  const config = parseConfig(JSON.parse(readFileSync(o.config, 'utf8')));
  const messages = userMessages(o.shape, config.vocabSize, o.seed);
  const loadStart = loadavg();
  const entry = await nodeGpu();
  const runs: PolicyRun[] = [];
  let adapterName = '';
  let weightFormat: WeightFormat = 'f16';
  for (const policy of o.policies) {
    // a device per policy: its ledger peak then covers this policy's allocations only
    const gpu = await acquireGpu({ gpu: entry });
    adapterName = gpu.adapterName;
    weightFormat = gpu.features.f16 ? 'f16' : 'f16p';
    try {
      const t = performance.now();
      const owner = 'bench-weights';
      const weights = await uploadWeights(gpu, config, randomWeights(config, o.seed), { format: weightFormat, owner });
      const model: LoadedModel = { gpu, id: 'smollm2-135m-random', config, weights, tokenizer: undefined, owner };
      const mode = policy === 'ccm-merge' ? 'merge' : 'concat';
      const adapter = policy.startsWith('ccm')
        ? await uploadAdapter(
            gpu,
            randomAdapter(config, { rank: o.rank, compTokens: o.shape.compTokens, mode, seed: o.seed }),
            'bench-adapter',
          )
        : undefined;
      const { capacity } = policySetup(policy, o.shape);
      log(`${policy}: capacity ${capacity}, model ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const turns = await runPolicy(model, policy, o.shape, messages, adapter, (r) =>
        log(
          `${policy} turn ${r.turn}: ${r.latencyMs.toFixed(0)} ms (prefill ${r.prefillMs.toFixed(0)}, ` +
            `decode ${r.decodeMs.toFixed(0)} / ${r.decodeSteps} steps, compress ${r.compressMs.toFixed(0)}), ` +
            `KV ${r.kvBytes} B, full ${r.fullContextBytes} B`,
        ),
      );
      runs.push({ policy, capacity, turns });
    } finally {
      gpu.destroy();
    }
  }
  return {
    date: new Date().toISOString(),
    machine: {
      adapter: adapterName,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadAverage: { start: loadStart, end: loadavg() },
    },
    command: commandLine(),
    model: 'SmolLM2-135M',
    weightFormat,
    adapter: { rank: o.rank, compTokens: o.shape.compTokens },
    shape: o.shape,
    seed: o.seed,
    runs,
  };
}

async function main(): Promise<void> {
  const o = options();
  if (o.help) {
    log(USAGE);
    return;
  }
  const result: BenchResult = o.render ? JSON.parse(readFileSync(o.render, 'utf8')) : await measure(o);
  if (o.out) {
    mkdirSync(dirname(resolve(o.svg)), { recursive: true });
    writeFileSync(o.svg, kvBytesSvg(result));
    const svgLink = relative(dirname(resolve(o.out)), resolve(o.svg));
    writeSection(o.out, 'ccm', markdownSection(result, svgLink));
    log(`wrote ${o.out} and ${o.svg}`);
  }
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
}

await runMain(main);
