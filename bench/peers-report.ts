// The peers benchmark's record: median (min-max) per metric, one table row per model and engine, and the
// ccmem / peer ratios of the engines that run in the same place, as the bench:peers section of BENCHMARKS.md.
import { table } from './markdown.js';
import type { Engine, EngineResult } from './peers-engines.js';
import type { BenchModel } from './peers-models.js';
import type { Plan, RunTiming } from './peers-runs.js';

/** ccmem and the peer it is compared with: native llama.cpp in Node, wllama in the same browser. */
const RATIOS: [ours: Engine, peer: Engine][] = [
  ['ccmem-node', 'llama.cpp'],
  ['ccmem-chromium', 'wllama'],
  ['ccmem-chromium-lavapipe', 'wllama'],
  ['ccmem-node', 'torch'],
];

export interface PeersResult {
  date: string;
  machine: { adapter: string; cpus: number; cpuModel: string; node: string; loadAverage: number[][] };
  command: string;
  plan: Plan;
  models: { name: BenchModel; dtype: string; engines: EngineResult[]; failures: { engine: string; error: string }[] }[];
}

interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(xs: number[]): Spread | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s.at(-1)! };
}

const metric = (runs: RunTiming[], key: keyof RunTiming) => spread(runs.map((r) => r[key]));

function cell(s: Spread | undefined, digits: number): string {
  if (!s) return '-';
  const f = (v: number) => v.toFixed(digits);
  return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
}

const mib = (bytes: number | undefined) => (bytes === undefined ? '-' : (bytes / 2 ** 20).toFixed(1));

function ratioLine(name: string, engines: EngineResult[], plan: Plan, pair: [Engine, Engine]): string[] {
  const ours = engines.find((e) => e.engine === pair[0]);
  const peer = engines.find((e) => e.engine === pair[1]);
  if (!ours || !peer) return [];
  const r = (a: Spread | undefined, b: Spread | undefined) => (a && b ? (a.median / b.median).toFixed(3) : '-');
  const parts = [
    `prefill ${plan.prompt} ${r(metric(ours.runs, 'prefillTokensPerSecond'), metric(peer.runs, 'prefillTokensPerSecond'))}`,
    ...(plan.longPrompt
      ? [
          `prefill ${plan.longPrompt} ${r(metric(ours.longRuns, 'prefillTokensPerSecond'), metric(peer.longRuns, 'prefillTokensPerSecond'))}`,
        ]
      : []),
    `decode ${r(metric(ours.runs, 'decodeTokensPerSecond'), metric(peer.runs, 'decodeTokensPerSecond'))}`,
    `time to first token ${r(metric(ours.runs, 'timeToFirstTokenMs'), metric(peer.runs, 'timeToFirstTokenMs'))}`,
    `peak RSS ${(ours.peakRssBytes / peer.peakRssBytes).toFixed(3)}`,
  ];
  return [
    `- ${name}, ${pair[0]} / ${pair[1]} (medians; above 1 is ccmem faster for tokens/s, slower for time): ${parts.join(', ')}.`,
  ];
}

/** A model whose positions cap the long prompt (see longPromptOf) says so. */
function longPromptNote(name: string, engines: EngineResult[], plan: Plan): string[] {
  const n = engines[0]?.longRuns[0]?.promptTokens;
  return n !== undefined && n !== plan.longPrompt
    ? [`- ${name}: its long prompt is ${n} tokens (its positions minus one), for every engine.`]
    : [];
}

export function peersSection(r: PeersResult): string {
  const p = r.plan;
  const header = [
    'model',
    'engine',
    `prefill ${p.prompt} tok/s`,
    ...(p.longPrompt ? [`prefill ${p.longPrompt} tok/s`] : []),
    `decode ${p.decode} tok/s`,
    'TTFT ms',
    'peak GPU MiB',
    'peak RSS MiB',
    'load s',
  ];
  const rows = r.models.flatMap((m) =>
    m.engines.map((e) => [
      `${m.name} (${m.dtype})`,
      e.engine,
      cell(metric(e.runs, 'prefillTokensPerSecond'), 1),
      ...(p.longPrompt ? [cell(metric(e.longRuns, 'prefillTokensPerSecond'), 1)] : []),
      cell(metric(e.runs, 'decodeTokensPerSecond'), 2),
      cell(metric(e.runs, 'timeToFirstTokenMs'), 0),
      mib(e.peakGpuBytes),
      mib(e.peakRssBytes),
      (e.loadMs / 1000).toFixed(1),
    ]),
  );
  const load = r.machine.loadAverage.map((l) => l.map((v) => v.toFixed(2)).join(' / '));
  const engines = r.models.flatMap((m) => m.engines.map((e) => `  - ${m.name} ${e.engine}: ${e.detail}`));
  return [
    '## ccmem vs llama.cpp, native and in the browser (same weights, same run)',
    '',
    `- Date: ${r.date}`,
    `- Machine: ${r.machine.adapter}; ${r.machine.cpus} CPUs (${r.machine.cpuModel}); Node ${r.machine.node}; load average (1/5/15 min) before each engine's process and at the end: ${load.join('; ')} (the cores are shared, so timings are noisy)`,
    `- Command: \`${r.command}\``,
    '- Engines, one after the other, each in its own process (browser engines: each in a fresh headless Chromium):',
    ...engines,
    `- Per engine and model: one untimed warm-up, then ${p.runs} run(s) of a ${p.prompt}-token random prompt + ${p.decode} greedy tokens (EOS ignored)${p.longPrompt ? ` and ${p.runs} prefill-only run(s) of ${p.longPrompt} tokens` : ''}; median (min-max). Prefill tok/s = prompt tokens / time to first token; decode tok/s counts the tokens after the first. Peak GPU = ccmem's ledger peak. Peak RSS, model load included: for Node engines the engine process's RSS, sampled every 20 ms (lavapipe's GPU memory is host memory, so ccmem's RSS includes it); for browser engines the summed RSS of all Chromium processes (browser, renderer, GPU process, workers), sampled from /proc every 100 ms, which counts a shared page once in every process that maps it (an idle Chromium already sums to about 900 MiB).`,
    '',
    table(header, rows),
    '',
    'Ratios:',
    '',
    ...r.models.flatMap((m) => RATIOS.flatMap((pair) => ratioLine(m.name, m.engines, p, pair))),
    ...r.models.flatMap((m) => longPromptNote(m.name, m.engines, p)),
    ...r.models.flatMap((m) => m.failures.map((f) => `- ${m.name}: ${f.engine} FAILED, no numbers: ${f.error}`)),
    '',
  ].join('\n');
}
