// The device's own limits, against which the kernels are read: copy bandwidth (copyBufferToBuffer and a
// plain vec4 WGSL copy) and the dispatch-overhead floor (a trivial kernel dispatched N times in one
// submit, and one submit + onSubmittedWorkDone round trip). The shaders are inline: they are probes of
// the device, not engine kernels.
import { flatGrid, packParams } from '../src/gpu/batch.js';
import type { Gpu } from '../src/gpu/device.js';
import { callMs, median, type Recorder, type Timer, type Timing, type TimingPlan } from './kernels-timing.js';

const COPY_WG = 64;
const COPY_WGSL = /* wgsl */ `
struct Params { count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(${COPY_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * ${COPY_WG}u + lid;
  if (i < p.count) { dst[i] = src[i]; }
}`;

/** Binds a uniform and one storage buffer, like every engine kernel, and does (almost) nothing. */
const TRIVIAL_WGSL = /* wgsl */ `
struct Params { value: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() { out[0] = p.value; }`;

export interface CopyResult {
  bytes: number;
  method: 'copyBufferToBuffer' | 'wgsl-vec4';
  timing: Timing;
  /** Bytes read + bytes written, per second (GB = 1e9 bytes). */
  readWriteGBps: number;
  /** Bytes read per second: half of readWriteGBps. */
  readGBps: number;
}

export interface DispatchFloor {
  dispatches: number;
  /** Per dispatch, N dispatches of the trivial kernel in one submit. */
  perDispatch: Timing;
  /** One submit of one trivial dispatch until onSubmittedWorkDone resolves: median wall ms over `roundTrips`. */
  roundTripMs: number;
  roundTrips: number;
}

const pipeline = (gpu: Gpu, label: string, code: string) =>
  gpu.device.createComputePipeline({
    label,
    layout: 'auto',
    compute: { module: gpu.device.createShaderModule({ label, code }), entryPoint: 'main' },
  });

const OWNER = 'bench-baseline';

/** The largest buffer one storage binding allows, capped at `maxBytes`, rounded down to 16 bytes. */
export function copyBytes(gpu: Gpu, maxBytes: number): number {
  const { maxBufferSize, maxStorageBufferBindingSize } = gpu.limits;
  return Math.floor(Math.min(maxBytes, maxBufferSize, maxStorageBufferBindingSize) / 16) * 16;
}

export async function copyBandwidth(timer: Timer, bytes: number, plan: TimingPlan): Promise<CopyResult[]> {
  const gpu = timer.gpu;
  const buffer = (label: string) => gpu.createBuffer({ tag: 'scratch', owner: OWNER, label, size: bytes });
  const src = buffer('copy-src');
  const dst = buffer('copy-dst');
  const shader = pipeline(gpu, 'bench-copy', COPY_WGSL);
  const params = packParams([['u32', bytes / 16]]);
  const methods: [CopyResult['method'], Recorder][] = [
    ['copyBufferToBuffer', (b) => b.copy(src, 0, dst, 0, bytes)],
    ['wgsl-vec4', (b) => b.dispatch(shader, params, [src, dst], flatGrid(b, bytes / 16, COPY_WG))],
  ];
  try {
    const results: CopyResult[] = [];
    for (const [method, record] of methods) {
      await timer.submit(record, 1); // compilation, first touch of the pages
      const timing = await timer.measure(record, plan);
      const ms = callMs(timing);
      results.push({ bytes, method, timing, readWriteGBps: (2 * bytes) / ms / 1e6, readGBps: bytes / ms / 1e6 });
    }
    return results;
  } finally {
    gpu.releaseOwner(OWNER);
  }
}

export async function dispatchFloor(
  timer: Timer,
  dispatches: number,
  repeats: number,
  roundTrips: number,
): Promise<DispatchFloor> {
  const gpu = timer.gpu;
  const out = gpu.createBuffer({ tag: 'scratch', owner: OWNER, label: 'trivial-out', size: 16 });
  const trivial = pipeline(gpu, 'bench-trivial', TRIVIAL_WGSL);
  const record: Recorder = (b, call) => b.dispatch(trivial, packParams([['u32', call]]), [out], [1]);
  try {
    await timer.submit(record, 1); // compile
    const perDispatch = await timer.timeCalls(record, dispatches, repeats);
    const trips: number[] = [];
    for (let i = 0; i < roundTrips; i++) trips.push((await timer.submit(record, 1)).wallMs);
    return { dispatches, perDispatch, roundTripMs: median(trips), roundTrips };
  } finally {
    gpu.releaseOwner(OWNER);
  }
}
