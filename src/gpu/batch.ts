// A Batch records the dispatches and copies of one command buffer. Kernel parameters go into one
// shared uniform arena (256-byte slots) written once at submit, so a decode step is a single
// writeBuffer plus a single submit, and no buffer is created per dispatch. Bind groups come from the
// Gpu's cache: a decode step binds the same buffers at the same arena slots every time, so after the
// first step it creates no WebGPU objects at all.
import type { Binding } from './bind-groups.js';
import type { Gpu } from './device.js';

export type { Binding } from './bind-groups.js';

const SLOT = 256; // minUniformBufferOffsetAlignment upper bound on every adapter

interface Dispatch {
  kind: 'dispatch';
  pipeline: GPUComputePipeline;
  params: Uint8Array | null;
  buffers: readonly Binding[];
  groups: readonly [number, number, number];
}

interface Copy {
  kind: 'copy';
  src: GPUBuffer;
  srcOffset: number;
  dst: GPUBuffer;
  dstOffset: number;
  size: number;
}

/** Packs a mix of u32 and f32 fields in declaration order, as a WGSL uniform struct of scalars. */
export function packParams(fields: readonly (readonly ['u32' | 'f32' | 'i32', number])[]): Uint8Array {
  const bytes = new Uint8Array(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(bytes.buffer);
  fields.forEach(([type, value], i) => {
    if (type === 'f32') view.setFloat32(i * 4, value, true);
    else if (type === 'i32') view.setInt32(i * 4, value, true);
    else view.setUint32(i * 4, value, true);
  });
  return bytes;
}

export class Batch {
  private readonly ops: (Dispatch | Copy)[] = [];

  constructor(readonly gpu: Gpu) {}

  /** Binding 0 is the params uniform (when given), storage buffers follow from binding 1 in order. */
  dispatch(
    pipeline: GPUComputePipeline,
    params: Uint8Array | null,
    buffers: readonly Binding[],
    groups: readonly [number, number?, number?],
  ): this {
    const [x, y = 1, z = 1] = groups;
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) throw new Error(`dispatch of ${x}x${y}x${z} workgroups exceeds ${max}`);
    if (x > 0 && y > 0 && z > 0) this.ops.push({ kind: 'dispatch', pipeline, params, buffers, groups: [x, y, z] });
    return this;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): this {
    if (size > 0) this.ops.push({ kind: 'copy', src, srcOffset, dst, dstOffset, size });
    return this;
  }

  get length(): number {
    return this.ops.length;
  }

  submit(): void {
    this.gpu.device.queue.submit([this.finish()]);
  }

  /** The recorded work as one command buffer (parameters already written), for a caller that submits it. */
  finish(): GPUCommandBuffer {
    this.gpu.checkHealthy();
    const withParams = this.ops.filter((o): o is Dispatch => o.kind === 'dispatch' && o.params !== null);
    const arena = this.gpu.uniformArena(withParams.length * SLOT);
    const staging = new Uint8Array(withParams.length * SLOT);
    const device = this.gpu.device;
    const encoder = device.createCommandEncoder();
    let pass: GPUComputePassEncoder | null = null;
    let slot = 0;
    for (const op of this.ops) {
      if (op.kind === 'copy') {
        pass?.end();
        pass = null;
        encoder.copyBufferToBuffer(op.src, op.srcOffset, op.dst, op.dstOffset, op.size);
        continue;
      }
      let params: GPUBufferBinding | undefined;
      if (op.params) {
        staging.set(op.params, slot * SLOT);
        params = { buffer: arena, offset: slot * SLOT, size: op.params.byteLength };
        slot++;
      }
      const bindGroup = this.gpu.bindGroup(op.pipeline, params, op.buffers);
      pass ??= encoder.beginComputePass();
      pass.setPipeline(op.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...op.groups);
    }
    pass?.end();
    if (staging.byteLength) device.queue.writeBuffer(arena, 0, staging);
    this.ops.length = 0;
    return encoder.finish();
  }
}

/**
 * Workgroups for `invocations` threads in groups of `wg`, folded into x*y so that no dimension exceeds
 * maxComputeWorkgroupsPerDimension. Shaders recover the index as (wid.y * nwg.x + wid.x) * WG + lid and
 * return when it is past the count.
 */
export function flatGrid(b: Batch, invocations: number, wg: number): [number, number] {
  const groups = Math.ceil(invocations / wg);
  const x = Math.min(groups, b.gpu.limits.maxComputeWorkgroupsPerDimension);
  return [x, x ? Math.ceil(groups / x) : 0];
}
