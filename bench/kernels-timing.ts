// How the kernel benchmark times GPU work: R calls recorded into one Batch (one command buffer, one
// submit), wall time from Batch.submit (encoding included) to onSubmittedWorkDone, and, where the device
// has 'timestamp-query', GPU time between two timestamps written by marker command buffers submitted in
// the same queue.submit as the batch, so no host work falls inside the span.
import { Batch } from '../src/gpu/batch.js';
import type { Gpu } from '../src/gpu/device.js';

export interface TimingPlan {
  /** Calls per submit are calibrated so that one submit takes about this long. */
  targetMs: number;
  /** Timed submits; the median is reported. */
  repeats: number;
  /** Fewer repeats where they would take longer than this (slow versions on CPU adapters). */
  budgetMs: number;
  maxCalls: number;
}

export interface Timing {
  calls: number;
  submits: number;
  wallMsPerCall: number;
  /** Absent without 'timestamp-query'. */
  gpuMsPerCall: number | undefined;
}

/** Records call number `call` (counting across submits, so rotating operand sets stay cold). */
export type Recorder = (b: Batch, call: number) => void;

interface Sample {
  wallMs: number;
  gpuMs: number | undefined;
}

export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

/** The time a result is judged by: GPU timestamps where there are, else wall. */
export const callMs = (t: Timing) => t.gpuMsPerCall ?? t.wallMsPerCall;

function summary(samples: readonly Sample[], calls: number): Timing {
  const gpu = samples.map((s) => s.gpuMs);
  return {
    calls,
    submits: samples.length,
    wallMsPerCall: median(samples.map((s) => s.wallMs)) / calls,
    gpuMsPerCall: gpu.every((g) => g !== undefined) ? median(gpu as number[]) / calls : undefined,
  };
}

/** The device's timestamp machinery: a 2-entry query set, its resolve buffer and a mappable copy. */
interface Stamps {
  querySet: GPUQuerySet;
  resolved: GPUBuffer;
  readback: GPUBuffer;
}

export class Timer {
  private readonly stamps: Stamps | undefined;
  private calls = 0;

  constructor(readonly gpu: Gpu) {
    if (!gpu.device.features.has('timestamp-query')) return;
    const buffer = (label: string, usage: number) =>
      gpu.createBuffer({ tag: 'scratch', owner: 'bench-timer', label, size: 16, usage });
    this.stamps = {
      querySet: gpu.device.createQuerySet({ type: 'timestamp', count: 2 }),
      resolved: buffer('resolved', GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC),
      readback: buffer('readback', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST),
    };
  }

  get method(): 'timestamp-query' | 'wall' {
    return this.stamps ? 'timestamp-query' : 'wall';
  }

  /** One submit of `calls` calls. */
  async submit(record: Recorder, calls: number): Promise<Sample> {
    const b = new Batch(this.gpu);
    for (let i = 0; i < calls; i++) record(b, this.calls++);
    const queue = this.gpu.device.queue;
    const t0 = performance.now();
    if (this.stamps) this.submitBetweenStamps(b, this.stamps);
    else b.submit();
    await queue.onSubmittedWorkDone();
    const wallMs = performance.now() - t0;
    const gpuMs = this.stamps && (await this.readStamps(this.stamps));
    this.gpu.checkHealthy();
    return { wallMs, gpuMs };
  }

  /**
   * Calls per submit calibrated to about plan.targetMs, then the median of up to plan.repeats submits
   * (fewer where they would take longer than plan.budgetMs; one where a single call already does). The
   * caller has run `record` once before (validation), so pipelines are compiled.
   */
  async measure(record: Recorder, plan: TimingPlan): Promise<Timing> {
    let calls = 1;
    let s = await this.submit(record, calls);
    if (s.wallMs >= plan.budgetMs) return summary([s], calls);
    // the faster of two: one slow outlier on a shared machine would leave calls at 1
    const again = await this.submit(record, calls);
    if (again.wallMs < s.wallMs) s = again;
    while (s.wallMs < plan.targetMs / 2 && calls < plan.maxCalls) {
      calls = Math.min(plan.maxCalls, Math.ceil((calls * plan.targetMs) / Math.max(s.wallMs, 0.01)));
      s = await this.submit(record, calls);
    }
    return this.timeCalls(record, calls, Math.max(1, Math.min(plan.repeats, Math.floor(plan.budgetMs / s.wallMs))));
  }

  /** The median of `repeats` submits of `calls` calls each. */
  async timeCalls(record: Recorder, calls: number, repeats: number): Promise<Timing> {
    const samples: Sample[] = [];
    for (let i = 0; i < repeats; i++) samples.push(await this.submit(record, calls));
    return summary(samples, calls);
  }

  /**
   * Batch.submit makes its own queue.submit; it is wrapped for this one call so that the markers travel in
   * the same submit. (A Batch.finish() returning the command buffer would make this wrapper unnecessary.)
   */
  private submitBetweenStamps(b: Batch, s: Stamps): void {
    const device = this.gpu.device;
    const queue = device.queue;
    const marker = (index: 0 | 1) => {
      const enc = device.createCommandEncoder({ label: `bench-timer-${index}` });
      const writes = index === 0 ? { endOfPassWriteIndex: 0 } : { beginningOfPassWriteIndex: 1 };
      enc.beginComputePass({ timestampWrites: { querySet: s.querySet, ...writes } }).end();
      if (index === 1) {
        enc.resolveQuerySet(s.querySet, 0, 2, s.resolved, 0);
        enc.copyBufferToBuffer(s.resolved, 0, s.readback, 0, 16);
      }
      return enc.finish();
    };
    queue.submit([marker(0), b.finish(), marker(1)]);
  }

  private async readStamps(s: Stamps): Promise<number> {
    await s.readback.mapAsync(GPUMapMode.READ);
    const [begin, end] = new BigUint64Array(s.readback.getMappedRange().slice(0));
    s.readback.unmap();
    return Number((end as bigint) - (begin as bigint)) / 1e6;
  }
}
