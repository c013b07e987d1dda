// Device acquisition, feature detection, limit checks, the pipeline cache and buffer creation through
// the ledger. One `Gpu` per engine; kernels receive it and never touch navigator.gpu themselves.
import { CcmemError, deviceLimit, webgpuUnavailable } from '../errors.js';
import { BindGroupCache, type Binding } from './bind-groups.js';
import { Ledger, type LedgerEntry, type MemoryTag } from './ledger.js';
import { type Defines, preprocess } from './preprocess.js';

export interface GpuFeatures {
  /** `shader-f16` is enabled: f16 weights are stored as array<f16>; otherwise packed two per u32. */
  readonly f16: boolean;
  readonly subgroups: boolean;
  /**
   * The adapter runs shaders on the CPU (SwiftShader, Mesa llvmpipe/lavapipe, another fallback adapter):
   * there barriers and workgroup memory are expensive and every per-invocation load is a gather, so
   * kernels pick designs without them and weights take the blocked layout.
   */
  readonly cpuEmulated: boolean;
}

export interface AcquireOptions {
  /** The WebGPU entry point; defaults to navigator.gpu (Node: pass `await nodeGpu()`). */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Ignore shader-f16 even where the adapter has it (tests the packed path on any adapter). */
  disableF16?: boolean;
  /** Further features to enable where the adapter has them (benchmarks: 'timestamp-query'). */
  optionalFeatures?: GPUFeatureName[];
}

/** A WGSL program as its kernel names it (src/kernels/shaders.ts): the GPU layer keeps no table of them. */
export interface ShaderSource {
  /** Identifies `code` (the pipeline cache key) and labels the module. */
  readonly name: string;
  readonly code: string;
  /** What its `#include "NAME"` lines may name (preprocess). */
  readonly snippets: Readonly<Record<string, string>>;
}

export interface BufferRequest {
  tag: MemoryTag;
  owner: string;
  label: string;
  size: number;
  usage?: GPUBufferUsageFlags;
}

const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
] as const;

export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  const entry = options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!entry) {
    throw webgpuUnavailable(
      'WebGPU is not available here (navigator.gpu is missing). In a browser use a WebGPU-enabled ' +
        'browser over https or localhost; in Node pass { gpu: await nodeGpu() }.',
    );
  }
  const adapter = await entry.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw webgpuUnavailable('No WebGPU adapter was found (no GPU, or a blocklisted driver).');
  const f16 = adapter.features.has('shader-f16') && !options.disableF16;
  const subgroups = adapter.features.has('subgroups');
  const requiredFeatures: GPUFeatureName[] = [];
  if (f16) requiredFeatures.push('shader-f16');
  if (subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
  for (const f of options.optionalFeatures ?? []) {
    if (adapter.features.has(f) && !requiredFeatures.includes(f)) requiredFeatures.push(f);
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  } catch (cause) {
    throw webgpuUnavailable(`The WebGPU device could not be created: ${String(cause)}`);
  }
  return new Gpu(device, adapter.info, { f16, subgroups, cpuEmulated: isCpuEmulated(adapter.info) }, entry);
}

function isCpuEmulated(info: GPUAdapterInfo): boolean {
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  const fallback = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /swiftshader|llvmpipe|lavapipe|software|\bcpu\b/i.test(text);
}

export class Gpu {
  readonly ledger = new Ledger();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private arena: GPUBuffer | undefined;
  private readonly bindGroups = new BindGroupCache();
  /** Set once the device is lost; every later submit is refused with this reason. */
  lostReason: string | undefined;
  /** The first uncaptured WebGPU error (a shader or validation bug): later submits and reads throw it. */
  gpuError: string | undefined;

  /** Throws if the device is lost or a WebGPU error was reported. */
  checkHealthy(): void {
    if (this.lostReason) throw new CcmemError('DEVICE_LOST', `the GPU device was lost: ${this.lostReason}`);
    if (this.gpuError) throw new Error(`WebGPU error: ${this.gpuError}`);
  }

  constructor(
    readonly device: GPUDevice,
    readonly adapterInfo: GPUAdapterInfo,
    readonly features: GpuFeatures,
    /** Held so that the WebGPU instance (Dawn's `create()` result in Node) is never garbage-collected. */
    readonly entry: GPU,
  ) {
    void device.lost.then((info) => {
      this.lostReason = info.message || info.reason || 'unknown';
    });
    // WGSL compile and validation errors are reported asynchronously and would otherwise only make
    // dispatches silently do nothing; keep the first one and fail the next submit or readback with it.
    device.onuncapturederror = (event) => {
      this.gpuError ??= event.error.message;
    };
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  get adapterName(): string {
    const i = this.adapterInfo;
    return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unknown adapter';
  }

  /** Throws DEVICE_LIMIT when a buffer of `bytes` cannot be created or bound as one storage binding. */
  checkFits(bytes: number, what: string): void {
    const { maxBufferSize, maxStorageBufferBindingSize } = this.limits;
    const limit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
    if (bytes > limit) {
      const which = maxBufferSize <= maxStorageBufferBindingSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
      throw deviceLimit(
        `${what} needs one ${mib(bytes)} buffer, but this adapter (${this.adapterName}) allows at most ` +
          `${mib(limit)} (${which}).`,
      );
    }
  }

  createBuffer(req: BufferRequest): GPUBuffer {
    const size = Math.max(4, Math.ceil(req.size / 4) * 4);
    this.checkFits(size, `${req.owner}/${req.label}`);
    const usage = req.usage ?? GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const buffer = this.device.createBuffer({ label: `${req.owner}/${req.label}`, size, usage });
    const entry: LedgerEntry = { tag: req.tag, owner: req.owner, label: req.label, bytes: size };
    this.ledger.record(buffer, entry);
    return buffer;
  }

  destroyBuffer(buffer: GPUBuffer): void {
    this.bindGroups.forget(buffer);
    this.ledger.forget(buffer);
    buffer.destroy();
  }

  /** Frees every buffer of one owner: an owner's lifetime ends here. */
  releaseOwner(owner: string): void {
    for (const [buffer, entry] of this.ledger.liveEntries()) if (entry.owner === owner) this.destroyBuffer(buffer);
  }

  /** The compute pipeline of `shader` with `defines` (plus SUBGROUPS when the device has them), cached. */
  pipeline(shader: ShaderSource, defines: Defines = {}): GPUComputePipeline {
    const { name } = shader;
    if (defines.F16 && !this.features.f16) throw new Error(`${name}: native f16 requested without shader-f16`);
    const all: Defines = { SUBGROUPS: this.features.subgroups, ...defines };
    const key = `${name}|${JSON.stringify(all)}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const header = (all.F16 ? 'enable f16;\n' : '') + (all.SUBGROUPS ? 'enable subgroups;\n' : '');
      const code = header + preprocess(shader.code, all, shader.snippets);
      const module = this.device.createShaderModule({ label: name, code });
      p = this.device.createComputePipeline({ label: name, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** A bind group of `pipeline`: binding 0 = `params` (when given), then `buffers` from binding 1. */
  bindGroup(
    pipeline: GPUComputePipeline,
    params: GPUBufferBinding | undefined,
    buffers: readonly Binding[],
  ): GPUBindGroup {
    return this.bindGroups.get(this.device, pipeline, params, buffers);
  }

  /** The shared uniform buffer that batches write kernel parameters into; grows, never shrinks. */
  uniformArena(bytes: number): GPUBuffer {
    if (!this.arena || this.arena.size < bytes) {
      if (this.arena) this.destroyBuffer(this.arena);
      this.arena = this.createBuffer({
        tag: 'scratch',
        owner: 'gpu',
        label: 'uniform-arena',
        size: Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1)))),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
    }
    return this.arena;
  }

  /** Copies `size` bytes of `buffer` back to the CPU (tests, CLI logits; never inside the decode loop). */
  async read(buffer: GPUBuffer, offset = 0, size = buffer.size - offset): Promise<ArrayBuffer> {
    const staging = this.createBuffer({
      tag: 'staging',
      owner: 'readback',
      label: buffer.label,
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(buffer, offset, staging, 0, Math.ceil(size / 4) * 4);
      this.device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      this.checkHealthy();
      return staging.getMappedRange(0, Math.ceil(size / 4) * 4).slice(0, size);
    } finally {
      this.destroyBuffer(staging);
    }
  }

  /** Uploads `data` into `buffer` at `offset` (padded to 4 bytes, as writeBuffer requires). */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buffer, offset, bytes);
    } else {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.device.queue.writeBuffer(buffer, offset, padded);
    }
  }

  destroy(): void {
    for (const [buffer] of this.ledger.liveEntries()) this.destroyBuffer(buffer);
    this.device.destroy();
  }
}

export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
