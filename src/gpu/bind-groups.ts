// Bind groups cached by what they bind. Creating one per dispatch per step is the main JavaScript cost
// of a decode step (hundreds per token); the same pipeline binding the same buffer ranges is the same
// bind group, so it is made once. Entries die with any buffer they reference (Gpu.destroyBuffer).

export type Binding = GPUBuffer | GPUBufferBinding;

/** Entries past which the cache starts over (prefill shapes vary; decode needs a few hundred). */
const MAX_ENTRIES = 8192;

interface Entry {
  group: GPUBindGroup;
  /** The ids of the buffers it binds. */
  bufferIds: number[];
}

export class BindGroupCache {
  private readonly groups = new Map<string, Entry>();
  private readonly ids = new WeakMap<object, number>();
  /** Keys that mention each buffer id, so destroying a buffer drops its bind groups. */
  private readonly keysOf = new Map<number, Set<string>>();
  private nextId = 1;

  get(
    device: GPUDevice,
    pipeline: GPUComputePipeline,
    params: GPUBufferBinding | undefined,
    buffers: readonly Binding[],
  ): GPUBindGroup {
    const bindings: (GPUBufferBinding | undefined)[] = [
      params,
      ...buffers.map((b) => ('buffer' in b ? b : { buffer: b })),
    ];
    const key = [
      this.id(pipeline),
      ...bindings.map((b) => (b ? `${this.id(b.buffer)}@${b.offset ?? 0}+${b.size ?? ''}` : '-')),
    ].join(' ');
    const cached = this.groups.get(key);
    if (cached) return cached.group;
    if (this.groups.size >= MAX_ENTRIES) this.clear();
    const entries: GPUBindGroupEntry[] = [];
    bindings.forEach((resource, binding) => {
      if (resource) entries.push({ binding, resource });
    });
    const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const bufferIds = bindings.flatMap((b) => (b ? [this.id(b.buffer)] : []));
    this.groups.set(key, { group, bufferIds });
    for (const id of bufferIds) this.keysFor(id).add(key);
    return group;
  }

  /** Drops the bind groups that bind `buffer`, and their keys from the other buffers they bind. */
  forget(buffer: GPUBuffer): void {
    const id = this.ids.get(buffer);
    if (id === undefined) return;
    for (const key of this.keysOf.get(id) ?? []) {
      for (const other of this.groups.get(key)?.bufferIds ?? []) if (other !== id) this.keysOf.get(other)?.delete(key);
      this.groups.delete(key);
    }
    this.keysOf.delete(id);
  }

  private clear(): void {
    this.groups.clear();
    this.keysOf.clear();
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }

  private keysFor(id: number): Set<string> {
    let keys = this.keysOf.get(id);
    if (!keys) {
      keys = new Set();
      this.keysOf.set(id, keys);
    }
    return keys;
  }
}
