// One benchmark case on the GPU: upload its operands (streamed ones in enough copies to defeat the CPU
// caches), validate every version against the CPU reference, then time the versions that passed.
import { CcmemError } from '../src/errors.js';
import { Batch } from '../src/gpu/batch.js';
import type { Gpu } from '../src/gpu/device.js';
import { roundToF16 } from '../src/gpu/half.js';
import {
  canBlock,
  createTensor,
  isHalf,
  storageBytes,
  type Tensor,
  uploadTensor,
  uploadU32,
} from '../src/gpu/tensor.js';
import { mulberry32 } from '../src/util/random.js';
import type { HostArray, KernelCase, Operand, Tensors } from './kernels-cases.js';
import type { Timer, Timing, TimingPlan } from './kernels-timing.js';
import { uniformArray } from './random-weights.js';

/**
 * Streamed operands are replicated until the copies hold this many bytes and each call reads the next
 * copy, so a weight is read from memory as in a forward pass over many layers, not from a warm cache
 * (twice the 32 MiB L3 of this machine; above the L2 of current GPUs).
 */
const ROTATE_BYTES = 64 * 2 ** 20;
const MAX_SETS = 256;

export interface VersionResult {
  name: string;
  chosen: boolean;
  /** False for a version that cannot compute this shape (neither validated nor timed). */
  fits: boolean;
  /** max |gpu - ref| / max |ref| over the checked elements (for integer outputs: the share that differ). */
  maxError: number;
  passed: boolean;
  /** Absent when validation failed: a version that fails is never timed. */
  timing?: Timing;
}

export interface CaseResult {
  kernel: string;
  op: string;
  shape: string;
  flops: number;
  bytesRead: number;
  bytesWritten: number;
  /** Copies of the streamed operands that the timed calls rotate through. */
  sets: number;
  /** Output elements compared with the CPU reference (a prefix of the output when it would be too slow). */
  checked: number;
  tolerance: number;
  versions: VersionResult[];
  /** Why the case did not run (a buffer past the adapter's limits). */
  skipped?: string;
}

function hostData(o: Operand, seed: number): HostArray {
  const n = o.shape.reduce((a, b) => a * b, 1);
  const init = o.init;
  if (init === 'zeros') return o.format === 'u32' ? new Uint32Array(n) : new Float32Array(n);
  if ('values' in init) return init.values;
  if ('uniform' in init) return uniformArray(n, seed, init.uniform);
  const r = mulberry32(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * init.ids));
}

/** Weights take the engine's layout for this adapter (src/model/weights.ts): blocked on CPU adapters. */
const blockedOn = (gpu: Gpu, o: Operand) =>
  o.weight === true && gpu.features.cpuEmulated && canBlock(o.format, o.shape);

function upload(gpu: Gpu, owner: string, label: string, o: Operand, data: HostArray): Tensor {
  const req = { tag: 'scratch' as const, owner, label, shape: o.shape };
  if (o.format === 'u32') return uploadU32(gpu, req, data as Uint32Array);
  return uploadTensor(gpu, { ...req, format: o.format, blocked: blockedOn(gpu, o) }, data as Float32Array);
}

function maxError(got: HostArray, want: HostArray): number {
  let err = 0;
  let scale = 0;
  let differ = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs((got[i] as number) - (want[i] as number));
    if (!(d <= err)) err = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    if (d !== 0) differ++;
    scale = Math.max(scale, Math.abs(want[i] as number));
  }
  if (want instanceof Uint32Array) return differ / want.length;
  return err === 0 ? 0 : err / (scale || 1);
}

export async function runCase(timer: Timer, kc: KernelCase, plan: TimingPlan, seed: number): Promise<CaseResult> {
  const gpu = timer.gpu;
  const entries = Object.entries(kc.operands);
  const streamedBytes = entries.reduce((s, [, o]) => s + (o.streamed ? storageBytes(o.format, o.shape) : 0), 0);
  const sets = streamedBytes ? Math.min(MAX_SETS, Math.max(1, Math.ceil(ROTATE_BYTES / streamedBytes))) : 1;
  const { kernel, op, shape, flops, bytesRead, bytesWritten, tolerance } = kc;
  const base = { kernel, op, shape, flops, bytesRead, bytesWritten, sets, tolerance };
  try {
    for (const [name, o] of entries) gpu.checkFits(storageBytes(o.format, o.shape), `${kc.kernel} ${name}`);
  } catch (e) {
    if (e instanceof CcmemError && e.code === 'DEVICE_LIMIT')
      return { ...base, checked: 0, versions: [], skipped: e.message };
    throw e;
  }

  const owner = `bench-kernels-${kc.kernel}`;
  try {
    const host: Record<string, HostArray> = {};
    const first: Tensors = {};
    entries.forEach(([name, o], i) => {
      host[name] = hostData(o, seed * 1000 + i);
      first[name] = upload(gpu, owner, name, o, host[name]);
    });
    const copies: Tensors[] = [first];
    const b = new Batch(gpu);
    for (let s = 1; s < sets; s++) {
      const copy: Tensors = { ...first };
      for (const [name, o] of entries) {
        if (!o.streamed) continue;
        const label = `${name}-${s}`;
        const t = createTensor(gpu, {
          tag: 'scratch',
          owner,
          label,
          shape: o.shape,
          format: o.format,
          blocked: blockedOn(gpu, o),
        });
        b.copy(first[name]!.buffer, 0, t.buffer, 0, t.buffer.size);
        copy[name] = t;
      }
      copies.push(copy);
    }
    b.submit();

    // the reference sees the values the GPU holds: f16 weights rounded
    const refHost = Object.fromEntries(
      entries.map(([name, o]) => [name, isHalf(o.format) ? roundToF16(host[name] as Float32Array) : host[name]!]),
    );
    const want = kc.reference(refHost);
    const out = first[kc.output]!;
    const versions: VersionResult[] = [];
    for (const v of kc.versions) {
      const common = { name: v.name, chosen: v.chosen(first), fits: v.fits?.(first) ?? true };
      if (!common.fits) {
        versions.push({ ...common, maxError: 0, passed: true });
        continue;
      }
      // outputs, scratch and in-place operands start from their initial contents for every version
      for (const [name, o] of entries) {
        if (o.init === 'zeros' || name === kc.output) gpu.write(first[name]!.buffer, host[name]!);
      }
      const vb = new Batch(gpu);
      v.encode(vb, first);
      vb.submit();
      const bytes = await gpu.read(out.buffer, 0, want.length * 4);
      const got = want instanceof Uint32Array ? new Uint32Array(bytes) : new Float32Array(bytes);
      const err = maxError(got, want);
      const passed = err <= kc.tolerance;
      const result: VersionResult = { ...common, maxError: err, passed };
      if (passed) result.timing = await timer.measure((tb, call) => v.encode(tb, copies[call % sets]!), plan);
      versions.push(result);
    }
    return { ...base, checked: want.length, versions };
  } finally {
    gpu.releaseOwner(owner);
  }
}
