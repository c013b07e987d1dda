// Kernel micro-benchmarks in the llm.c dev/cuda style: the device's copy bandwidth and dispatch floor,
// then every kernel at the decode and prefill shapes of each model, each version validated against its
// CPU reference before it is timed. Writes the bench:kernels section of BENCHMARKS.md, or one JSON
// document on stdout with --json. Progress goes to stderr. See bench/README.md.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { acquireGpu } from '../src/gpu/device.js';
import { nodeGpu } from '../src/gpu/node.js';
import type { WeightFormat } from '../src/gpu/tensor.js';
import { parseConfig } from '../src/model/config.js';
import { log, parseList, runMain, UsageError } from './cli.js';
import { copyBandwidth, copyBytes, dispatchFloor } from './kernels-baseline.js';
import { KERNELS, modelCases } from './kernels-cases.js';
import { copyReadGBps, type KernelsResult, kernelsSection, type ShapeResult } from './kernels-report.js';
import { runCase } from './kernels-run.js';
import { callMs, Timer, type TimingPlan } from './kernels-timing.js';
import { writeSection } from './markdown.js';

const FIXTURES = '../shared/fixtures';
const SHAPES = readdirSync(FIXTURES).filter((d) => {
  try {
    return JSON.parse(readFileSync(`${FIXTURES}/${d}/config.json`, 'utf8')).hidden_size > 0;
  } catch {
    return false;
  }
});

const USAGE = `usage: npm run bench:kernels -- [options]
  --quick            smollm2-135m only, shorter submits and fewer repeats (about 2 minutes on lavapipe here)
  --shapes LIST      comma-separated model shapes from ${FIXTURES}: ${SHAPES.join(',')} (default all)
  --kernels LIST     comma-separated subset of ${KERNELS.join(',')}
  --format F         weights: f16 (native, or packed where the adapter lacks shader-f16; default) or f32
  --seed S           random operands seed (default 1)
  --out FILE         markdown file whose bench:kernels section is replaced (default BENCHMARKS.md)
  --dry-run          write no markdown
  --json             print one JSON document on stdout`;

const list = <T extends string>(name: string, value: string, allowed: readonly T[]) =>
  parseList(name, value, allowed, USAGE);

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      shapes: { type: 'string' },
      kernels: { type: 'string', default: KERNELS.join(',') },
      format: { type: 'string', default: 'f16' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string', default: 'BENCHMARKS.md' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be an integer >= 0\n${USAGE}`);
  const [format] = list('format', values.format, ['f16', 'f32'] as const);
  const q = values.quick;
  return {
    ...values,
    seed,
    format: format!,
    shapes: list('shape', values.shapes ?? (q ? 'smollm2-135m' : SHAPES.join(',')), SHAPES),
    kernels: list('kernel', values.kernels, KERNELS),
    // calls per submit are calibrated to about targetMs of wall time each
    kernelPlan: {
      targetMs: q ? 60 : 250,
      repeats: q ? 3 : 7,
      budgetMs: q ? 2000 : 10000,
      maxCalls: 1000,
    } satisfies TimingPlan,
    copyPlan: {
      targetMs: q ? 200 : 1000,
      repeats: q ? 3 : 7,
      budgetMs: q ? 2000 : 10000,
      maxCalls: 64,
    } satisfies TimingPlan,
    copyMaxBytes: 256 * 2 ** 20,
    floorDispatches: q ? 200 : 1000,
    roundTrips: q ? 10 : 50,
  };
}

async function main(): Promise<void> {
  const o = options();
  if (o.help) {
    log(USAGE);
    return;
  }
  const loads = [loadavg()];
  // unquantised timestamps: Dawn rounds them to 64 µs steps by default
  const entry = await nodeGpu(['disable-dawn-features=timestamp_quantization']);
  const gpu = await acquireGpu({ gpu: entry, optionalFeatures: ['timestamp-query'] });
  const timer = new Timer(gpu);
  const weights: WeightFormat = o.format === 'f32' ? 'f32' : gpu.features.f16 ? 'f16' : 'f16p';
  log(`${gpu.adapterName}: f16 ${gpu.features.f16}, subgroups ${gpu.features.subgroups}, timing ${timer.method}`);

  const copy = await copyBandwidth(timer, copyBytes(gpu, o.copyMaxBytes), o.copyPlan);
  for (const c of copy)
    log(
      `copy ${c.method}: ${c.readWriteGBps.toFixed(2)} GB/s read+written, ${callMs(c.timing).toFixed(2)} ms per copy`,
    );
  const floor = await dispatchFloor(timer, o.floorDispatches, o.kernelPlan.repeats, o.roundTrips);
  log(
    `dispatch floor: ${(floor.perDispatch.wallMsPerCall * 1000).toFixed(1)} µs wall per dispatch, ` +
      `round trip ${floor.roundTripMs.toFixed(3)} ms`,
  );

  const shapes: ShapeResult[] = [];
  for (const name of o.shapes) {
    const c = parseConfig(JSON.parse(readFileSync(`${FIXTURES}/${name}/config.json`, 'utf8')));
    const cases = [];
    for (const kc of modelCases(gpu, c, weights, o.kernels)) {
      const r = await runCase(timer, kc, o.kernelPlan, o.seed);
      cases.push(r);
      for (const v of r.versions) {
        const t = v.timing ? `${(callMs(v.timing) * 1000).toFixed(1)} µs/call x${v.timing.calls}` : 'FAILED';
        const what = v.fits ? `err ${v.maxError.toExponential(1)}, ${t}` : 'does not fit this shape';
        log(`${name} ${r.kernel} ${r.op} ${r.shape} ${v.name}${v.chosen ? ' (chosen)' : ''}: ${what}`);
      }
      if (r.skipped) log(`${name} ${r.kernel} ${r.op} ${r.shape}: skipped: ${r.skipped}`);
    }
    const config = {
      hidden: c.hiddenSize,
      intermediate: c.intermediateSize,
      heads: c.numHeads,
      kvHeads: c.numKvHeads,
      headDim: c.headDim,
      vocab: c.vocabSize,
    };
    shapes.push({ name, config, cases });
  }
  loads.push(loadavg());

  const result: KernelsResult = {
    date: new Date().toISOString(),
    args: process.argv.slice(2).join(' '),
    machine: {
      adapter: gpu.adapterName,
      features: { ...gpu.features, timestampQuery: timer.method === 'timestamp-query' },
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadAverage: loads,
    },
    timing: timer.method,
    weights,
    copy,
    floor,
    shapes,
  };
  log(`best copy read rate ${copyReadGBps(copy).toFixed(2)} GB/s`);
  if (shapes.some((s) => s.cases.some((c) => c.versions.some((v) => !v.passed)))) process.exitCode = 1;
  if (!o['dry-run']) {
    writeSection(o.out, 'kernels', kernelsSection(result));
    log(`wrote ${o.out}`);
  }
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (o['dry-run']) process.stdout.write(kernelsSection(result));
  gpu.destroy();
}

await runMain(main);
