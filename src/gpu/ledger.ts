// The allocation ledger: every GPU buffer the engine creates is recorded here with a tag, an owner and
// its exact size, and removed when its owner releases it. Exact bytes are part of the product (the
// devtools panel and engine.memory() read this), so nothing may call device.createBuffer directly.

export type MemoryTag = 'weights' | 'kv' | 'memory' | 'scratch' | 'staging';
export const MEMORY_TAGS: readonly MemoryTag[] = ['weights', 'kv', 'memory', 'scratch', 'staging'];

export interface LedgerEntry {
  readonly tag: MemoryTag;
  readonly owner: string;
  readonly label: string;
  readonly bytes: number;
}

export interface TagTotals {
  current: number;
  peak: number;
}

export interface LedgerSnapshot {
  current: number;
  peak: number;
  byTag: Record<MemoryTag, TagTotals>;
  byOwner: Record<string, number>;
  buffers: number;
}

export class Ledger {
  private readonly live = new Map<GPUBuffer, LedgerEntry>();
  private readonly totals = Object.fromEntries(MEMORY_TAGS.map((t) => [t, { current: 0, peak: 0 }])) as Record<
    MemoryTag,
    TagTotals
  >;
  private current = 0;
  private peak = 0;

  record(buffer: GPUBuffer, entry: LedgerEntry): void {
    this.live.set(buffer, entry);
    const t = this.totals[entry.tag];
    t.current += entry.bytes;
    t.peak = Math.max(t.peak, t.current);
    this.current += entry.bytes;
    this.peak = Math.max(this.peak, this.current);
  }

  /** Forget a buffer (the caller destroys it). Unknown buffers are ignored, so release is idempotent. */
  forget(buffer: GPUBuffer): void {
    const entry = this.live.get(buffer);
    if (!entry) return;
    this.live.delete(buffer);
    this.totals[entry.tag].current -= entry.bytes;
    this.current -= entry.bytes;
  }

  entries(): LedgerEntry[] {
    return [...this.live.values()];
  }

  /** A copy of the live buffers with their entries, safe to iterate while releasing. */
  liveEntries(): [GPUBuffer, LedgerEntry][] {
    return [...this.live.entries()];
  }

  snapshot(): LedgerSnapshot {
    const byOwner: Record<string, number> = {};
    for (const e of this.live.values()) byOwner[e.owner] = (byOwner[e.owner] ?? 0) + e.bytes;
    const byTag = Object.fromEntries(MEMORY_TAGS.map((t) => [t, { ...this.totals[t] }])) as Record<
      MemoryTag,
      TagTotals
    >;
    return { current: this.current, peak: this.peak, byTag, byOwner, buffers: this.live.size };
  }
}
