// The benchmark's outputs: per-policy summaries, the markdown section for BENCHMARKS.md (a table of
// every 10th turn plus totals, the ratios) and a hand-written SVG of KV bytes per turn (log scale: the
// full cache grows linearly while the compressed ones stay within a few groups of slots).

import type { BenchPolicy, ChatShape, TurnRecord } from './chat-turns.js';
import { table } from './markdown.js';

export interface PolicyRun {
  policy: BenchPolicy;
  capacity: number;
  turns: TurnRecord[];
}

export interface BenchResult {
  date: string;
  machine: {
    adapter: string;
    cpus: number;
    cpuModel: string;
    node: string;
    loadAverage: { start: number[]; end: number[] };
  };
  command: string;
  model: string;
  weightFormat: string;
  adapter: { rank: number; compTokens: number };
  shape: ChatShape;
  seed: number;
  runs: PolicyRun[];
}

export interface PolicySummary {
  policy: BenchPolicy;
  totalMs: number;
  prefillMs: number;
  decodeMs: number;
  compressMs: number;
  meanDecodeStepMs: number;
  /** Mean endTurn time over the turns (ccm policies). */
  meanCompressMs: number;
  finalKvBytes: number;
  finalFullContextBytes: number;
  /** KV bytes in use / full-context bytes after the last turn. */
  kvRatio: number;
  maxKvBytes: number;
  ledgerPeak: number;
  ledgerKvPeak: number;
  meanLoadAverage: number;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function summarize(run: PolicyRun): PolicySummary {
  const t = run.turns;
  const last = t.at(-1);
  if (!last) throw new Error(`${run.policy}: no turns recorded`);
  const decodeMs = sum(t.map((r) => r.decodeMs));
  const compressMs = sum(t.map((r) => r.compressMs));
  return {
    policy: run.policy,
    totalMs: sum(t.map((r) => r.latencyMs)),
    prefillMs: sum(t.map((r) => r.prefillMs)),
    decodeMs,
    compressMs,
    meanDecodeStepMs: decodeMs / Math.max(1, sum(t.map((r) => r.decodeSteps))),
    meanCompressMs: compressMs / t.length,
    finalKvBytes: last.kvBytes,
    finalFullContextBytes: last.fullContextBytes,
    kvRatio: last.kvBytes / last.fullContextBytes,
    maxKvBytes: Math.max(...t.map((r) => r.kvBytesBeforeEnd)),
    ledgerPeak: last.ledgerPeak,
    ledgerKvPeak: last.ledgerKvPeak,
    meanLoadAverage: sum(t.map((r) => r.loadAverage)) / t.length,
  };
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(2);
const ms = (v: number) => v.toFixed(0);
const isCcm = (p: BenchPolicy) => p.startsWith('ccm');

/** Every 10th turn (and the last), then a totals row per column. */
function turnTable(r: BenchResult, sums: PolicySummary[]): string {
  const policies = r.runs.map((p) => p.policy);
  const header = [
    'turn',
    ...policies.map((p) => `${p} KV MiB`),
    'full-context MiB',
    ...policies.map((p) => `${p} turn ms`),
  ];
  const step = Math.min(10, r.shape.turns);
  const picked = r.runs[0]!.turns.filter((t) => t.turn % step === 0 || t.turn === r.shape.turns);
  const rows = picked.map((t) => {
    const at = (p: PolicyRun) => p.turns[t.turn - 1]!;
    return [
      String(t.turn),
      ...r.runs.map((p) => mib(at(p).kvBytes)),
      mib(t.fullContextBytes),
      ...r.runs.map((p) => ms(at(p).latencyMs)),
    ];
  });
  rows.push([
    '**total**',
    ...sums.map((s) => `max ${mib(s.maxKvBytes)}`),
    '',
    ...sums.map((s) => `**${ms(s.totalMs)}**`),
  ]);
  return table(header, rows);
}

function summaryTable(r: BenchResult, sums: PolicySummary[]): string {
  const header = [
    'policy',
    'capacity (slots)',
    'total s',
    'prefill s',
    'decode s',
    'mean decode step ms',
    'mean compression ms',
    'compression / decode step',
    `KV MiB at turn ${r.shape.turns}`,
    'KV / full-context',
    'KV allocated MiB',
    'ledger peak MiB',
    'mean load average',
  ];
  const rows = sums.map((s, i) => [
    s.policy,
    String(r.runs[i]!.capacity),
    (s.totalMs / 1000).toFixed(1),
    (s.prefillMs / 1000).toFixed(1),
    (s.decodeMs / 1000).toFixed(1),
    s.meanDecodeStepMs.toFixed(0),
    isCcm(s.policy) ? s.meanCompressMs.toFixed(0) : '-',
    isCcm(s.policy) ? (s.meanCompressMs / s.meanDecodeStepMs).toFixed(2) : '-',
    mib(s.finalKvBytes),
    s.kvRatio.toFixed(4),
    mib(s.ledgerKvPeak),
    mib(s.ledgerPeak),
    s.meanLoadAverage.toFixed(1),
  ]);
  return table(header, rows);
}

const COLORS: Record<BenchPolicy, string> = {
  full: '#d62728',
  window: '#ff7f0e',
  'ccm-concat': '#1f77b4',
  'ccm-merge': '#2ca02c',
};

/** KV bytes after each turn, one line per policy plus the full-context line (dashed), log-scale y. */
export function kvBytesSvg(r: BenchResult): string {
  const W = 760;
  const H = 400;
  const m = { left: 70, right: 150, top: 30, bottom: 45 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const full = r.runs[0]!.turns.map((t) => t.fullContextBytes);
  const all = [...full, ...r.runs.flatMap((p) => p.turns.map((t) => t.kvBytes))].filter((b) => b > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const x = (turn: number) => m.left + ((turn - 1) / Math.max(1, r.shape.turns - 1)) * pw;
  const y = (bytes: number) =>
    m.top + ph - ((Math.log10(Math.max(bytes, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph;
  const f = (v: number) => v.toFixed(1);
  const line = (values: number[], color: string, dash = '') =>
    `<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${values
      .map((b, i) => `${f(x(i + 1))},${f(y(b))}`)
      .join(' ')}"/>`;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<title>KV cache bytes after each turn, per memory policy, and the full-context equivalent</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left}" y="18" font-size="14">KV cache bytes after each turn (${r.model}, log scale)</text>`,
  ];
  for (let d = lo; d <= hi; d *= 10) {
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${f(y(d))}" y2="${f(y(d))}" stroke="#ddd"/>`,
      `<text x="${m.left - 6}" y="${f(y(d) + 4)}" text-anchor="end">${formatBytes(d)}</text>`,
    );
  }
  const every = Math.max(1, Math.ceil(r.shape.turns / 10));
  const ticks = [1, ...Array.from({ length: Math.floor(r.shape.turns / every) }, (_, k) => (k + 1) * every)];
  for (const turn of new Set(ticks)) {
    out.push(
      `<line x1="${f(x(turn))}" x2="${f(x(turn))}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="#333"/>`,
      `<text x="${f(x(turn))}" y="${m.top + ph + 18}" text-anchor="middle">${turn}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 8}" text-anchor="middle">turn</text>`,
  );
  const legend: [string, string, string][] = [];
  for (const p of r.runs) {
    out.push(
      line(
        p.turns.map((t) => t.kvBytes),
        COLORS[p.policy],
      ),
    );
    legend.push([p.policy, COLORS[p.policy], '']);
  }
  // drawn last so that its dashes show over the full policy's line, which it equals
  out.push(line(full, '#555', '6 4'));
  legend.push(['full context', '#555', '6 4']);
  legend.forEach(([name, color, dash], i) => {
    const ly = m.top + 14 + i * 20;
    const lx = m.left + pw + 12;
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      `<text x="${lx + 30}" y="${ly + 4}">${name}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function formatBytes(b: number): string {
  if (b >= 1e9) return `${+(b / 1e9).toPrecision(3)} GB`;
  if (b >= 1e6) return `${+(b / 1e6).toPrecision(3)} MB`;
  if (b >= 1e3) return `${+(b / 1e3).toPrecision(3)} kB`;
  return `${b} B`;
}

/** The BENCHMARKS.md section of one run; `svgPath` is the plot's path relative to the markdown file. */
export function markdownSection(r: BenchResult, svgPath: string): string {
  const sums = r.runs.map(summarize);
  const byName = new Map(sums.map((s) => [s.policy, s]));
  const s = r.shape;
  const ratios: string[] = [];
  const fullRun = byName.get('full');
  for (const p of sums) {
    const vsFull =
      fullRun && p !== fullRun ? `, ${(p.finalKvBytes / fullRun.finalKvBytes).toFixed(4)} of the full policy's` : '';
    ratios.push(
      `- ${p.policy}: KV bytes at turn ${s.turns} = ${mib(p.finalKvBytes)} MiB, ` +
        `${p.kvRatio.toFixed(4)} of its full-context equivalent (${mib(p.finalFullContextBytes)} MiB)${vsFull}.`,
    );
  }
  for (const p of sums.filter((x) => isCcm(x.policy))) {
    ratios.push(
      `- ${p.policy}: compression step (endTurn, ${s.compTokens} COMP rows + the reply's last token, waited on) ` +
        `${p.meanCompressMs.toFixed(0)} ms mean vs ${p.meanDecodeStepMs.toFixed(0)} ms mean decode step: ` +
        `${(p.meanCompressMs / p.meanDecodeStepMs).toFixed(2)}x.`,
    );
  }
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');
  return `## Context memory: ${s.turns} chat turns per memory policy

- Date: ${r.date}
- Machine: ${r.machine.adapter}; ${r.machine.cpus} CPUs (${r.machine.cpuModel}); Node ${r.machine.node}; load average (1/5/15 min) ${load(r.machine.loadAverage.start)} at start, ${load(r.machine.loadAverage.end)} at end (the cores are shared, so timings are noisy)
- Command: \`${r.command}\`
- Model: ${r.model} shape with seeded random weights (${r.weightFormat}); random CCM adapter, rank ${r.adapter.rank}, n = ${r.adapter.compTokens} COMP tokens (a concat adapter for ccm-concat, a merge adapter for ccm-merge); seed ${r.seed}
- Chat: ${s.turns} turns of a ${s.user}-token user message (random ids, BOS before the first) + a greedy reply of at most ${s.reply} tokens. With random weights the replies are noise; only timings and memory are measured here, not quality.
- Policies: full; window (sinks ${s.sinks}, window ${s.window}); ccm-concat (budget ${s.budget} slots); ccm-merge. Each policy gets its own device and the smallest cache capacity that holds its run, so the ledger shows what each policy allocates: KV allocated is the cache buffers (tag kv), ledger peak all GPU buffers (weights, adapter, cache, scratch).

KV bytes are stats().bytes after each turn's endTurn (what the next turn starts from); full-context is stats().fullContextBytes (the cache a full policy would hold for the same text). Turn time = prefill + decode + compression. The total row gives each policy's largest in-turn KV (before endTurn) and its total time.

${turnTable(r, sums)}

${summaryTable(r, sums)}

Ratios:

${ratios.join('\n')}

![KV cache bytes per turn](${svgPath})
`;
}
