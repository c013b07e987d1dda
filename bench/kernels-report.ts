// The bench:kernels section of BENCHMARKS.md: the adapter, the copy bandwidth and dispatch floor, then one
// table per model shape (every kernel case and version).
import type { WeightFormat } from '../src/gpu/tensor.js';
import type { CopyResult, DispatchFloor } from './kernels-baseline.js';
import type { CaseResult, VersionResult } from './kernels-run.js';
import { callMs } from './kernels-timing.js';
import { table } from './markdown.js';

export interface ShapeResult {
  name: string;
  config: { hidden: number; intermediate: number; heads: number; kvHeads: number; headDim: number; vocab: number };
  cases: CaseResult[];
}

export interface KernelsResult {
  date: string;
  args: string;
  machine: {
    adapter: string;
    features: { f16: boolean; subgroups: boolean; timestampQuery: boolean };
    cpus: number;
    cpuModel: string;
    node: string;
    /** os.loadavg() at the start and at the end. */
    loadAverage: number[][];
  };
  timing: 'timestamp-query' | 'wall';
  weights: WeightFormat;
  copy: CopyResult[];
  floor: DispatchFloor;
  shapes: ShapeResult[];
}

const ms = (t: number) => (t < 1 ? `${(t * 1000).toFixed(1)} µs` : `${t.toFixed(2)} ms`);
const gb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const fixed = (x: number, digits = 1) => x.toFixed(digits);

/** The best read rate of the two copies: what "% of copy bandwidth" compares against. */
export const copyReadGBps = (copy: readonly CopyResult[]) => Math.max(...copy.map((c) => c.readGBps));

function versionRow(c: CaseResult, v: VersionResult, copyRead: number): string[] {
  const name = `${v.name}${v.chosen && c.versions.length > 1 ? ' *' : ''}`;
  const err = v.maxError === 0 ? '0' : v.maxError.toExponential(1);
  const head = [c.kernel, c.op, c.shape, name];
  if (!v.fits) return [...head, 'n/a', '-', '-', '-', '-', '-', 'does not fit (shape or layout)'];
  if (!v.timing) return [...head, 'FAILED', '-', '-', '-', '-', '-', `${err} > ${c.tolerance}`];
  const t = callMs(v.timing);
  const readGBps = c.bytesRead / t / 1e6;
  return [
    ...head,
    ms(t),
    ms(v.timing.wallMsPerCall),
    String(v.timing.calls),
    c.flops ? fixed(c.flops / t / 1e6) : '-',
    fixed((c.bytesRead + c.bytesWritten) / t / 1e6, 2),
    `${fixed((100 * readGBps) / copyRead)}%`,
    err,
  ];
}

function shapeTable(s: ShapeResult, copyRead: number): string {
  const rows: string[][] = [];
  for (const c of s.cases) {
    if (c.skipped) rows.push([c.kernel, c.op, c.shape, 'skipped', '-', '-', '-', '-', '-', '-', 'too large here']);
    else for (const v of c.versions) rows.push(versionRow(c, v, copyRead));
  }
  const header = ['kernel', 'op', 'shape', 'version', 'time/call', 'wall/call', 'calls', 'GFLOP/s', 'GB/s', '% copy'];
  return table([...header, 'max err'], rows);
}

export function kernelsSection(r: KernelsResult): string {
  const f = r.machine.features;
  const copyRead = copyReadGBps(r.copy);
  const fl = r.floor;
  const copies = r.copy.map(
    (c) =>
      `- Copy, ${c.method} of ${gb(c.bytes)}: ${fixed(c.readWriteGBps, 2)} GB/s read + written ` +
      `(${fixed(c.readGBps, 2)} GB/s read), ${ms(callMs(c.timing))} per copy.`,
  );
  const gpuFloor = fl.perDispatch.gpuMsPerCall;
  const lines = [
    '## Kernel micro-benchmarks',
    '',
    `\`npm run bench:kernels -- ${r.args}\` on ${r.date.slice(0, 10)}; ${r.machine.cpus} × ${r.machine.cpuModel}, ` +
      `Node ${r.machine.node}, load average ${r.machine.loadAverage.map((l) => fixed(l[0] ?? 0, 2)).join(' → ')}.`,
    '',
    `Adapter: ${r.machine.adapter}; shader-f16 ${f.f16 ? 'yes' : 'no'}, subgroups ${f.subgroups ? 'yes' : 'no'}, ` +
      `timestamp-query ${f.timestampQuery ? 'yes' : 'no'}. Weights ${r.weights}, in the layout the engine gives them ` +
      `here (blocked on CPU adapters, where the row-major coop design is n/a). Times are ` +
      (r.timing === 'timestamp-query' ? 'GPU timestamps' : 'wall clock (no timestamp-query)') +
      ' per call, the median of several submits of `calls` back-to-back calls (see bench/README.md).',
    '',
    ...copies,
    `- Dispatch floor: ${fl.dispatches} trivial dispatches in one submit take ` +
      (gpuFloor === undefined ? '' : `${ms(gpuFloor)} each on the GPU, `) +
      `${ms(fl.perDispatch.wallMsPerCall)} each in wall time (encoding included); one submit of one dispatch ` +
      `until onSubmittedWorkDone: ${ms(fl.roundTripMs)} (median of ${fl.roundTrips}).`,
    '',
    'GB/s counts each operand byte read or written once (compulsory traffic; a half-precision weight is 2 bytes). ' +
      '% copy = the bytes a call reads per second ÷ the best copy read rate above ' +
      `(${fixed(copyRead, 2)} GB/s: buffer size / copy time). ` +
      'Max err = max |gpu − cpu| / max |cpu| over the checked output (0 = bit-exact). ' +
      'Where a kernel has several versions, * marks the one the engine picks on this adapter.',
  ];
  for (const s of r.shapes) {
    const c = s.config;
    lines.push(
      '',
      `### ${s.name}`,
      '',
      `hidden ${c.hidden}, intermediate ${c.intermediate}, heads ${c.heads}/${c.kvHeads} × ${c.headDim}, vocab ${c.vocab}.`,
      '',
      shapeTable(s, copyRead),
    );
  }
  return `${lines.join('\n')}\n`;
}
