// A conversation's GPU state and its generation loop: chunked prefill that reuses the cached prefix,
// then one command buffer per decoded token (forward + GPU sampling), reading back only the sampled id.
// The cache holds [memory slots (sink, compressed turns) | working tokens]; the memory policy decides
// what happens when a turn ends (CCM compression, sentinel sentences) or the cache fills (window eviction,
// streaming compression). Sentinel spans sit among the working tokens, one <CR> slot each. The mechanics
// live in src/memory/ (kvops, stream, sentinel); this file keeps the slot bookkeeping.

import type { GpuAdapter } from '../adapters/gpu.js';
import { aborted, invalidInput } from '../errors.js';
import { Batch } from '../gpu/batch.js';
import { createTensor, type Tensor } from '../gpu/tensor.js';
import { checkSamplingOptions, clearSeen, markSeen, type SamplingOptions, sample } from '../kernels/sample.js';
import { kvScratchElements, mergeSlots, moveSlots, rerotateSlots } from '../memory/kvops.js';
import { decodeMemory, encodeMemory, identityOf, type MemoryIdentity, type MemorySnapshot } from '../memory/persist.js';
import { type MemoryOptions, type ResolvedMemory, resolveMemory, type StreamParams } from '../memory/policy.js';
import {
  checkSpan,
  compressSpanKv,
  prefixOutsideSpans,
  type Span,
  savedSlots,
  sentenceSpans,
  slotIds,
  slotOf,
} from '../memory/sentinel.js';
import { compressOldest, type KvContext, toCacheIndex } from '../memory/stream.js';
import { createState, encodeForward, type ForwardState } from '../model/llama.js';
import type { LoadedModel } from '../model/load.js';
import { StopMatcher } from './stop.js';

export interface GenerateOptions extends Partial<SamplingOptions> {
  /**
   * Default 256; also bounded by the session's free cache slots plus one, and where positions count the
   * whole text by the positions left plus one (finish reason 'length').
   */
  maxNewTokens?: number;
  stop?: readonly string[];
  signal?: AbortSignal;
}

export type FinishReason = 'eos' | 'stop' | 'length';

export interface Usage {
  promptTokens: number;
  /** Prompt tokens whose K/V were reused from the previous request instead of recomputed. */
  reusedTokens: number;
  completionTokens: number;
  timeToFirstTokenMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

export interface GenerationResult {
  ids: number[];
  text: string;
  finishReason: FinishReason;
  usage: Usage;
}

export interface TokenEvent {
  id: number;
  /** Newly completed text (empty while a multi-byte character or a possible stop string is pending). */
  delta: string;
}

export interface SessionOptions {
  /** KV cache slots; default min(2048, max_position_embeddings). */
  capacity?: number;
  /** Prefill chunk (rows per forward); default 64. */
  chunk?: number;
  /** Rows of logits one forward can return (scoring every position); default 1. */
  logitRows?: number;
  /** What the cache keeps of the conversation; default full. */
  memory?: MemoryOptions;
  /**
   * Required by the ccm policies (the conditional LoRA and COMP embeddings) and by sentinel (its CL and CR
   * embedding rows; its LoRA is merged into the model at load).
   */
  adapter?: GpuAdapter;
}

/** A cache slot that outlives its turn: the sink (the first token) or a compressed memory slot. */
export interface MemorySlot {
  kind: 'sink' | 'memory';
  /** RoPE position its key was rotated at (for merged slots: that of the latest contribution). */
  position: number;
  /** The compression step (turn) that produced it. */
  turn: number;
}

export interface MemoryStats {
  policy: ResolvedMemory['policy'];
  /** Compression steps done: turns (ccm), chunks (streaming), live spans (sentinel). */
  compressionSteps: number;
  layers: number;
  /**
   * Slots by kind: sink (the ccm sink, or the window policy's attention sinks), memory (compressed; sentinel
   * <CR> slots count here), working (the rest of the text); every layer holds the same layout.
   */
  slots: { sink: number; memory: number; working: number; capacity: number };
  /** Bytes of K and V in use over all layers. */
  bytes: number;
  /** Bytes a full-context cache would hold for the same conversation now. */
  fullContextBytes: number;
  compressionRatio: number;
  /** Text tokens compressed into memory slots. */
  tokensCompressed: number;
  /** Text tokens evicted without a trace (window policy). */
  tokensEvicted: number;
  /** RoPE position of the next token. */
  nextPosition: number;
}

/** What an export records beyond persist's snapshot: sentinel text and spans, a switch to streaming. */
interface SessionSnapshot extends MemorySnapshot {
  text?: number[];
  spans?: Span[];
  streaming?: boolean;
}

let sessions = 0;

export class Session {
  readonly owner = `session${++sessions}`;
  /** The memory policy and its parameters, every default filled in. */
  readonly memory: ResolvedMemory;
  private readonly state: ForwardState;
  private readonly adapter: GpuAdapter | undefined;
  private readonly seen: Tensor;
  private readonly kvScratch: Tensor;
  private readonly readback: GPUBuffer;
  /** For the policies that append masked rows (streaming COMP, sentinel CL/CR). */
  private readonly kv: KvContext | undefined;
  /** The streaming parameters, when this session streams or may switch to it. */
  private readonly stream: StreamParams | undefined;
  /** The slots kept across turns, [0, keptSlots.length) of the cache: the sink and compressed memory. */
  private keptSlots: MemorySlot[] = [];
  /**
   * Token ids of the working tokens, which occupy the slots after keptSlots: one each, except that each
   * sentinel span's tokens share one <CR> slot.
   */
  private fed: number[] = [];
  /** Sentinel spans compressed in `fed`, ascending. */
  private spans: Span[] = [];
  /** RoPE position of fed[0]: text tokens before it, compressed ones included (ccm.md section 4). */
  private base = 0;
  /** Positions follow the cache index and the window triggers compression (ccm-stream, or ccm after a switch). */
  private streaming: boolean;
  /** The last sampled id, which no forward has fed yet. */
  private pending: number | undefined;
  private turns = 0;
  private tokensCompressed = 0;
  private tokensEvicted = 0;
  private busy = false;

  constructor(
    readonly model: LoadedModel,
    options: SessionOptions = {},
  ) {
    const { gpu, config } = model;
    const capacity = options.capacity ?? Math.min(2048, config.maxPositions);
    if (capacity > config.maxPositions) {
      throw invalidInput(`capacity ${capacity} exceeds max_position_embeddings ${config.maxPositions}`);
    }
    const m = resolveMemory(options.memory, capacity);
    this.memory = m;
    if (m.policy.startsWith('ccm') && !options.adapter) {
      throw invalidInput(`the ${m.policy} policy needs a CCM adapter`);
    }
    if (m.policy === 'sentinel' && (options.adapter?.rank !== 0 || options.adapter.embeddings?.shape[0] !== 2)) {
      throw invalidInput('the sentinel policy needs a sentinel adapter: its CL and CR rows, its LoRA merged at load');
    }
    this.adapter = options.adapter;
    this.stream = m.policy === 'ccm-stream' ? m : 'stream' in m ? m.stream : undefined;
    this.streaming = m.policy === 'ccm-stream';
    const windowSize = m.policy === 'window' ? m.window - m.sinks : capacity; // a prefill chunk evicts at most this
    // appended groups are one forward each: sentinel CL + CR; a turn's pending token + its n COMP rows
    const group = m.policy === 'sentinel' ? 2 : 'compTokens' in m ? m.compTokens + 1 : 1;
    const chunk = Math.max(Math.min(options.chunk ?? 64, capacity, windowSize), group);
    const logitRows = Math.min(options.logitRows ?? 1, chunk);
    try {
      this.state = createState(gpu, config, {
        capacity,
        chunk,
        logitRows,
        loraRank: this.adapter?.rank ?? 0,
        owner: this.owner,
      });
      ({ seen: this.seen, kvScratch: this.kvScratch, kv: this.kv, readback: this.readback } = this.allocate(chunk));
    } catch (e) {
      gpu.releaseOwner(this.owner); // nothing of a half-built session stays allocated
      throw e;
    }
  }

  private allocate(chunk: number) {
    const { gpu, config, weights } = this.model;
    const { capacity } = this.state.options;
    const m = this.memory;
    const label = (l: string) => ({ tag: 'scratch' as const, owner: this.owner, label: l });
    const seen = createTensor(gpu, { ...label('seen'), shape: [config.vocabSize], format: 'u32' });
    const kvScratch = createTensor(gpu, { ...label('kv-scratch'), shape: [kvScratchElements(config, capacity)] });
    let kv: KvContext | undefined;
    if (this.stream || m.policy === 'sentinel') {
      const mask = createTensor(gpu, { ...label('mask'), shape: [chunk, Math.ceil(capacity / 32)], format: 'u32' });
      kv = { config, weights, state: this.state, adapter: this.adapter, scratch: kvScratch, mask };
    }
    const readback = gpu.createBuffer({
      ...label('sampled-id'),
      tag: 'staging',
      size: 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    return { seen, kvScratch, kv, readback };
  }

  get capacity(): number {
    return this.state.options.capacity;
  }

  /** Ids of the working tokens: the uncompressed part a follow-up request can reuse as its prefix. */
  get cachedIds(): readonly number[] {
    return this.fed;
  }

  /** The last sampled id of the previous request, which was not fed (e.g. EOS). */
  get pendingId(): number | undefined {
    return this.pending;
  }

  /** Cache slots in use. */
  get used(): number {
    return this.keptSlots.length + this.fed.length - savedSlots(this.spans);
  }

  get memorySlots(): readonly MemorySlot[] {
    return this.keptSlots;
  }

  /** Sentinel spans of cachedIds compressed into one slot each, as [start, end) indices, ascending. */
  get compressedSpans(): readonly Readonly<Span>[] {
    return this.spans;
  }

  /**
   * Streams the continuation of `promptIds` token by token; the generator's return value is the result.
   * `promptIds` is the uncompressed part of the conversation (everything after the memory slots): with
   * the full policy the whole conversation, after a CCM compression just the new turn. The common prefix
   * with the cached working tokens is reused (with sentinel spans, never part of a span: a span cut by the
   * new prompt is dropped and its tokens are fed again). A second call while one is running is refused
   * (INVALID_INPUT); an aborted signal throws ABORTED and leaves the session usable.
   */
  async *generate(
    promptIds: readonly number[],
    options: GenerateOptions = {},
  ): AsyncGenerator<TokenEvent, GenerationResult> {
    this.checkPrompt(promptIds);
    this.enter();
    try {
      return yield* this.run(promptIds, options);
    } finally {
      this.busy = false;
    }
  }

  /** Logits after the last prompt token, or at every prompt position with `all` (recomputed from scratch). */
  async logits(promptIds: readonly number[], options: { all?: boolean } = {}): Promise<Float32Array[]> {
    this.checkPrompt(promptIds);
    this.enter();
    try {
      const { gpu, config } = this.model;
      const V = config.vocabSize;
      const { chunk, logitRows } = this.state.options;
      const step = options.all ? logitRows : chunk;
      this.truncate(options.all ? 0 : this.reusablePrefix(promptIds));
      const out: Float32Array[] = [];
      // count fed rows separately: a window eviction shrinks `fed` while the prompt is consumed
      for (let i = this.fed.length; i < promptIds.length; ) {
        const b = new Batch(gpu);
        const rows = this.makeRoom(b, Math.min(step, promptIds.length - i));
        const last = i + rows === promptIds.length;
        this.feedRows(b, promptIds.slice(i, i + rows), { logits: options.all ? 'all' : last ? 'last' : 'none' });
        b.submit();
        i += rows;
        if (options.all || last) {
          const n = options.all ? rows : 1;
          const flat = new Float32Array(await gpu.read(this.state.logits.buffer, 0, n * V * 4));
          for (let r = 0; r < n; r++) out.push(flat.slice(r * V, (r + 1) * V));
        }
      }
      return out;
    } finally {
      this.busy = false;
    }
  }

  /** Feeds tokens after the working tokens without producing logits (e.g. a context chunk to compress). */
  async feed(ids: readonly number[]): Promise<void> {
    if (ids.length) this.checkPrompt([...this.fed, ...ids]);
    this.enter();
    try {
      this.pending = undefined; // ids follow the fed tokens: a caller keeping the sampled token includes it
      const b = new Batch(this.model.gpu);
      for (let i = 0; i < ids.length; ) {
        const rows = this.makeRoom(b, Math.min(this.state.options.chunk, ids.length - i));
        this.feedRows(b, ids.slice(i, i + rows), { logits: 'none' });
        b.submit();
        i += rows;
      }
    } finally {
      this.busy = false;
    }
  }

  /**
   * Ends the current turn. With ccm-concat or ccm-merge its working tokens (plus the pending sampled token
   * when `feedPending`, e.g. a reply cut by the token limit; a final EOS is never fed) are compressed into
   * n COMP slots and released (ccm.md section 5). With sentinel (and sentence ends given) the pending token
   * is fed likewise, then every finished sentence older than the recent tokens is compressed into a span.
   * Other policies keep the tokens (streaming compresses by the window, also after a ccm session switched
   * to it); this is a no-op for them.
   */
  async endTurn(options: { feedPending?: boolean } = {}): Promise<void> {
    const m = this.memory;
    const ccm = (m.policy === 'ccm-concat' || m.policy === 'ccm-merge') && !this.streaming;
    if (!ccm && m.policy !== 'sentinel') return;
    this.enter();
    try {
      const extra = options.feedPending && this.pending !== undefined ? [this.pending] : [];
      if (ccm && this.fed.length + extra.length > 0) this.compressTurn(extra);
      else if (m.policy === 'sentinel') this.compressSentences(extra);
      this.pending = undefined;
    } finally {
      this.busy = false;
    }
  }

  /**
   * Compresses working tokens [first, last] (indices into cachedIds) into one sentinel <CR> slot in place
   * (sentinel.md section 4). Refused unless the policy is sentinel, the range lies in the working tokens
   * and holds no compressed span, and two cache slots are free for the <CL>/<CR> forward.
   */
  async compressSpan(first: number, last: number): Promise<void> {
    if (this.memory.policy !== 'sentinel')
      throw invalidInput(`compressSpan needs the sentinel policy, not ${this.memory.policy}`);
    checkSpan(this.spans, first, last, this.fed.length);
    this.enter();
    try {
      this.compressSpanNow(new Batch(this.model.gpu), { start: first, end: last + 1 });
    } finally {
      this.busy = false;
    }
  }

  stats(): MemoryStats {
    const c = this.model.config;
    const bytesPerSlot = 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
    const sink = this.keptSlots.filter((s) => s.kind === 'sink').length;
    // the window policy keeps its sinks as the first working tokens
    const windowSinks = this.memory.policy === 'window' ? Math.min(this.memory.sinks, this.fed.length) : 0;
    const inSpans = this.spans.reduce((n, s) => n + s.end - s.start, 0);
    // span tokens are still in `fed`; tokens compressed into memory slots are not
    const textTokens = this.tokensCompressed + this.tokensEvicted + sink + this.fed.length;
    const bytes = this.used * bytesPerSlot;
    return {
      policy: this.memory.policy,
      compressionSteps: this.turns + this.spans.length,
      layers: c.numLayers,
      slots: {
        sink: sink + windowSinks,
        memory: this.keptSlots.length - sink + this.spans.length,
        working: this.fed.length - inSpans - windowSinks,
        capacity: this.capacity,
      },
      bytes,
      fullContextBytes: textTokens * bytesPerSlot,
      compressionRatio: bytes ? (textTokens * bytesPerSlot) / bytes : 1,
      tokensCompressed: this.tokensCompressed + inSpans,
      tokensEvicted: this.tokensEvicted,
      nextPosition: this.base + this.fed.length,
    };
  }

  /**
   * The context memory and working tokens as bytes (versioned, SHA-256 checked), for importMemory in a
   * later session of the same model, adapter and policy (e.g. after a page reload).
   */
  async exportMemory(): Promise<Uint8Array> {
    this.enter();
    try {
      const { gpu } = this.model;
      const bytes = this.used * this.state.kCache[0]!.shape[1]! * 4;
      const rows: Float32Array[] = [];
      for (let l = 0; l < this.model.config.numLayers; l++) {
        for (const cache of [this.state.kCache[l]!, this.state.vCache[l]!]) {
          rows.push(new Float32Array(bytes ? await gpu.read(cache.buffer, 0, bytes) : new ArrayBuffer(0)));
        }
      }
      const snapshot: SessionSnapshot = {
        mem: this.keptSlots.map((s) => ({ ...s })),
        fed: this.slotIds(), // one id per working slot, as the K/V rows are
        base: this.base,
        pending: this.pending,
        turns: this.turns,
        tokensCompressed: this.tokensCompressed,
        tokensEvicted: this.tokensEvicted,
        ...(this.spans.length ? { text: [...this.fed], spans: this.spans.map((s) => ({ ...s })) } : {}),
        ...(this.streaming ? { streaming: true } : {}),
      };
      return await encodeMemory(this.identity(), snapshot, rows);
    } finally {
      this.busy = false;
    }
  }

  /** Restores an exportMemory() result exactly; corrupt or mismatched bytes are refused and change nothing. */
  async importMemory(bytes: Uint8Array): Promise<void> {
    this.enter();
    try {
      const decoded = await decodeMemory(bytes, this.identity(), this.capacity);
      const snapshot: SessionSnapshot = decoded.snapshot;
      const { gpu } = this.model;
      decoded.rows.forEach((r, i) => {
        const layer = i >> 1;
        const cache = i & 1 ? this.state.vCache[layer]! : this.state.kCache[layer]!;
        if (r.length) gpu.write(cache.buffer, r);
      });
      this.keptSlots = snapshot.mem;
      this.fed = snapshot.text ?? snapshot.fed;
      this.spans = snapshot.spans ?? [];
      this.base = snapshot.base;
      this.pending = snapshot.pending;
      this.turns = snapshot.turns;
      this.tokensCompressed = snapshot.tokensCompressed;
      this.tokensEvicted = snapshot.tokensEvicted;
      this.streaming = this.memory.policy === 'ccm-stream' || snapshot.streaming === true;
      this.writeTokenTable();
    } finally {
      this.busy = false;
    }
  }

  /** Forgets the whole conversation, memory included. */
  reset(): void {
    this.keptSlots = [];
    this.fed = [];
    this.spans = [];
    this.base = 0;
    this.streaming = this.memory.policy === 'ccm-stream';
    this.pending = undefined;
    this.turns = 0;
    this.tokensCompressed = 0;
    this.tokensEvicted = 0;
  }

  dispose(): void {
    this.model.gpu.releaseOwner(this.owner);
  }

  private identity(): MemoryIdentity {
    const a = this.adapter;
    const adapter = a && { rank: a.rank, scale: a.scale, fingerprint: a.fingerprint };
    return identityOf(this.model.config, adapter, this.memory);
  }

  private enter(): void {
    if (this.busy) throw invalidInput('this session is already generating: wait for it to finish or abort it');
    this.busy = true;
  }

  private checkPrompt(ids: readonly number[]): void {
    const V = this.model.config.vocabSize;
    if (ids.length === 0) throw invalidInput('the prompt is empty');
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw invalidInput(`token id ${id} at index ${i} is not in the vocabulary [0, ${V})`);
      }
    });
    // a lower bound of the slots it needs (reused sentinel spans hold fewer); eviction policies need none
    const slots = this.keptSlots.length + ids.length - savedSlots(this.spans) + this.compressionReserve();
    if (this.memory.policy !== 'window' && !this.streaming && slots > this.capacity) {
      throw invalidInput(
        `the prompt has ${ids.length} tokens; this session's cache holds ${this.capacity}` +
          (this.keptSlots.length ? ` (${this.keptSlots.length} taken by memory)` : ''),
      );
    }
  }

  /**
   * Working tokens that can be kept for `ids`: the common prefix, leaving at least one token to feed and
   * cutting no sentinel span.
   */
  private reusablePrefix(ids: readonly number[]): number {
    let n = 0;
    while (n < this.fed.length && n < ids.length && this.fed[n] === ids[n]) n++;
    return prefixOutsideSpans(this.spans, Math.min(n, ids.length - 1));
  }

  private truncate(keep: number): void {
    this.fed.length = Math.min(keep, this.fed.length);
    this.spans = this.spans.filter((s) => s.end <= this.fed.length);
    this.pending = undefined;
  }

  private checkRoom(rows: number): void {
    if (this.used + rows > this.capacity) {
      throw invalidInput(
        `the conversation needs ${this.used + rows} cache slots, the session has ${this.capacity}: ` +
          'use a larger capacity, or a window or ccm memory policy',
      );
    }
  }

  /**
   * Makes room for up to `rows` new working tokens and returns how many the next forward may take: all of
   * them, except when streaming, where the forward stops at the window (a compression is due there, so
   * results do not depend on how a prompt is chunked). Window eviction, streaming compression, the position
   * limit (an error, or the switch to streaming), otherwise a capacity check.
   */
  private makeRoom(b: Batch, rows: number): number {
    const m = this.memory;
    this.checkPositions(b, rows);
    if (this.streaming) {
      const { window } = this.stream!;
      while (this.used >= window) this.compressOldest(b);
      return Math.min(rows, window - this.used);
    }
    if (m.policy !== 'window') {
      this.checkRoom(rows);
      return rows;
    }
    const limit = m.window; // the sinks included
    if (this.fed.length + rows <= limit) return rows;
    const evictable = this.fed.length - m.sinks;
    const e = Math.min(evictable, Math.max(this.fed.length + rows - limit, m.evictChunk));
    const count = this.fed.length - m.sinks - e;
    const { config, weights } = this.model;
    moveSlots(b, this.state, { from: m.sinks + e, to: m.sinks, count, scratch: this.kvScratch });
    rerotateSlots(b, this.state, config, weights.invFreq, { first: m.sinks, count, delta: -e });
    b.submit();
    this.fed.splice(m.sinks, e);
    this.tokensEvicted += e;
    this.writeTokenTable();
    return rows;
  }

  /**
   * Positions grow with the whole text under full, ccm-concat/merge and sentinel. When `rows` more would
   * pass max_position_embeddings: a ccm session with onPositionLimit 'stream' switches to streaming, any
   * other fails before changing anything.
   */
  private checkPositions(b: Batch, rows: number): void {
    const m = this.memory;
    if (m.policy === 'window' || this.streaming) return;
    const last = this.base + this.fed.length + rows - 1;
    const max = this.model.config.maxPositions;
    if (last < max) return;
    if ('stream' in m && m.stream) {
      this.switchToStream(b);
      return;
    }
    throw invalidInput(
      `position ${last} would exceed max_position_embeddings ${max}: the ${m.policy} policy numbers positions ` +
        'by the whole conversation' +
        (m.policy.startsWith('ccm') ? "; use onPositionLimit 'stream' (or ccm-stream) to go on" : '; reset it'),
    );
  }

  /**
   * The ccm fallback at the position limit: every slot is re-rotated to its cache index (memory beyond
   * the streaming budget evicted oldest first), and the session streams from now on.
   */
  private switchToStream(b: Batch): void {
    toCacheIndex(b, this.ctx, { mem: this.keptSlots, fed: this.fed }, this.base, this.stream!.maxMemory);
    this.base = this.keptSlots.length;
    this.streaming = true;
    this.writeTokenTable();
  }

  /** Streaming: the oldest chunk of recent tokens becomes n COMP slots (ccm.md section 7). */
  private compressOldest(b: Batch): void {
    const m = this.memory;
    const n = 'compTokens' in m ? m.compTokens : 0;
    const comp = Array.from({ length: n }, (_, k) => this.model.config.vocabSize + k);
    // ccm-stream always keeps a sink; a ccm fallback only with a sink adapter
    const sink = m.policy === 'ccm-stream' || ('sink' in m && m.sink);
    const cache = { mem: this.keptSlots, fed: this.fed };
    compressOldest(b, this.ctx, cache, this.stream!, { comp, sink, turn: ++this.turns });
    this.tokensCompressed += this.stream!.chunk;
    this.base = this.keptSlots.length;
    this.writeTokenTable();
  }

  /** ccm-concat/merge: the working tokens (+ `extra`) become n COMP slots of memory (ccm.md section 5). */
  private compressTurn(extra: number[]): void {
    const m = this.memory;
    if (m.policy !== 'ccm-concat' && m.policy !== 'ccm-merge') return;
    const { gpu, config } = this.model;
    const n = m.compTokens;
    const comp = Array.from({ length: n }, (_, k) => config.vocabSize + k);
    const b = new Batch(gpu);
    this.makeRoom(b, extra.length + n); // may switch to streaming at the position limit
    if (this.streaming) {
      // the turn stays as recent tokens; the window decides what is compressed from now on
      if (extra.length) {
        this.makeRoom(b, 1);
        this.feedRows(b, extra, { logits: 'none' });
      }
      b.submit();
      return;
    }
    this.feedRows(b, [...extra, ...comp], { logits: 'none', gates: [...extra.map(() => 0), ...comp.map(() => 1)] });
    this.fed.length -= n; // the COMP rows are not working tokens: they sit just after them
    this.turns++;
    const t = this.turns;
    const next = this.base + this.fed.length; // L_{t+1}
    let kept = 0;
    if (m.sink && !this.keptSlots.some((s) => s.kind === 'sink')) {
      // the first token of the conversation (BOS, at slot 0 since nothing precedes it) stays as the sink
      this.keptSlots.push({ kind: 'sink', position: this.base, turn: t });
      kept = 1;
    }
    const sinks = this.keptSlots.filter((s) => s.kind === 'sink').length;
    const memoryCount = this.keptSlots.length - sinks;
    const compSlot = this.keptSlots.length - kept + this.fed.length;
    const scratch = this.kvScratch;
    const slots = comp.map((_, k): MemorySlot => ({ kind: 'memory', position: next + k, turn: t }));
    if (m.policy === 'ccm-merge' && memoryCount > 0) {
      mergeSlots(b, this.state, { dst: sinks, src: compSlot, count: n, weight: 1 / t });
      this.keptSlots.splice(sinks, n, ...slots);
    } else {
      moveSlots(b, this.state, { from: compSlot, to: this.keptSlots.length, count: n, scratch });
      this.keptSlots.push(...slots);
      if (this.keptSlots.length - sinks > m.budget) {
        const over = this.keptSlots.length - sinks - m.budget; // a multiple of n: evict the oldest groups
        moveSlots(b, this.state, {
          from: sinks + over,
          to: sinks,
          count: this.keptSlots.length - sinks - over,
          scratch,
        });
        this.keptSlots.splice(sinks, over);
      }
    }
    b.submit();
    this.tokensCompressed += this.fed.length - kept;
    this.base = next;
    this.fed = [];
  }

  /** Sentinel endTurn: feeds `extra`, then compresses the finished sentences the policy picks. */
  private compressSentences(extra: number[]): void {
    const m = this.memory;
    if (m.policy !== 'sentinel') return;
    const b = new Batch(this.model.gpu);
    if (extra.length) {
      this.makeRoom(b, extra.length);
      this.feedRows(b, extra, { logits: 'none' });
      b.submit();
      this.pending = undefined; // fed: a failure below must not feed it again
    }
    if (!m.sentenceEnd) return;
    const rule = { isEnd: m.sentenceEnd, recent: m.recent, maxSpan: m.maxSpan, bos: this.model.config.bosTokenId };
    for (const span of sentenceSpans(this.fed, this.spans, rule)) {
      // the automatic rule compresses what fits and leaves the rest as text (compressSpan refuses instead)
      if (this.used + 2 > this.capacity) break;
      this.compressSpanNow(b, span);
    }
  }

  /** One sentinel span into one <CR> slot in place; later slots move left, keeping their rotations. */
  private compressSpanNow(b: Batch, span: Span): void {
    const V = this.model.config.vocabSize;
    const past = this.used;
    if (past + 2 > this.capacity) {
      throw invalidInput(
        `compressing a span needs 2 free cache slots; ${this.capacity - past} of ${this.capacity} are free`,
      );
    }
    compressSpanKv(b, this.ctx, {
      past,
      slot: this.keptSlots.length + slotOf(this.spans, span.start),
      length: span.end - span.start,
      first: this.base + span.start,
      last: this.base + span.end - 1,
      open: V,
      close: V + 1,
    });
    b.submit();
    this.spans = [...this.spans, span].sort((x, y) => x.start - y.start);
    this.writeTokenTable();
  }

  private get ctx(): KvContext {
    if (!this.kv) throw invalidInput(`the ${this.memory.policy} policy appends no masked rows`);
    return this.kv;
  }

  /** One id per working slot: the text, with each sentinel span as one <CR> id. */
  private slotIds(): number[] {
    return this.spans.length ? slotIds(this.fed, this.spans, this.model.config.vocabSize + 1) : [...this.fed];
  }

  /**
   * Rewrites the token table of the working slots (and the pending id after them) once slots have moved:
   * the embedding of the next input and the repetition-penalty set read it.
   */
  private writeTokenTable(): void {
    const table = this.pending === undefined ? this.slotIds() : [...this.slotIds(), this.pending];
    if (table.length)
      this.model.gpu.write(this.state.tokens.buffer, Uint32Array.from(table), this.keptSlots.length * 4);
  }

  /**
   * Encodes one forward of `ids` as new working tokens (room already made), at positions continuing from
   * the last working token. Gated rows (COMP) use the adapter's LoRA.
   */
  private feedRows(b: Batch, ids: readonly number[], o: { logits: 'last' | 'all' | 'none'; gates?: number[] }): void {
    const { gpu, config, weights } = this.model;
    const slot = this.used;
    const s = this.state;
    gpu.write(s.tokens.buffer, Uint32Array.from(ids), slot * 4);
    const first = this.base + this.fed.length;
    gpu.write(
      s.positions.buffer,
      Uint32Array.from(ids, (_, i) => first + i),
      slot * 4,
    );
    const gated = o.gates?.some((g) => g !== 0) ?? false;
    if (gated) gpu.write(s.rowGate.buffer, Float32Array.from(o.gates!));
    encodeForward(b, config, weights, s, { past: slot, rows: ids.length, logits: o.logits, gated }, this.adapter);
    this.fed.push(...ids);
  }

  private async *run(prompt: readonly number[], o: GenerateOptions): AsyncGenerator<TokenEvent, GenerationResult> {
    const { gpu, config, tokenizer } = this.model;
    const s = this.state;
    const sampling = resolveSampling(o);
    const eos = new Set([...config.eosTokenIds, ...(tokenizer?.eosTokenIds ?? [])]);
    // decoded in context: deltas and text are what the reply adds to the prompt's text (decoded alone, a
    // first SentencePiece token would lose its leading space)
    const decoder = tokenizer?.streamDecoder({ skipSpecialTokens: true, context: prompt });
    const stops = new StopMatcher(o.stop ?? []);
    const checkAbort = () => {
      if (o.signal?.aborted) throw aborted();
    };
    checkAbort();

    const t0 = performance.now();
    const reused = this.reusablePrefix(prompt);
    this.truncate(reused);
    const b = new Batch(gpu);
    for (let i = this.fed.length; i < prompt.length; ) {
      const rows = this.makeRoom(b, Math.min(s.options.chunk, prompt.length - i));
      this.feedRows(b, prompt.slice(i, i + rows), { logits: i + rows === prompt.length ? 'last' : 'none' });
      i += rows;
      if (i < prompt.length) b.submit(); // one command buffer per chunk keeps each submission bounded
    }
    const maxNew = o.maxNewTokens ?? 256;
    if (sampling.repetitionPenalty !== 1) {
      clearSeen(b, { seen: this.seen, vocab: config.vocabSize });
      markSeen(b, {
        ids: s.tokens,
        offset: this.keptSlots.length,
        count: this.used - this.keptSlots.length,
        seen: this.seen,
      });
    }
    let id = await this.sampleNext(b, sampling, 0);
    const tFirst = performance.now();

    const ids: number[] = [];
    let text = '';
    let finishReason: FinishReason = 'length';
    const firstGenerated = this.fed.length; // where the generated tokens start in `fed`
    const decodedEnd: number[] = []; // decoded text length after each generated token
    for (;;) {
      ids.push(id);
      if (eos.has(id)) {
        finishReason = 'eos';
        break;
      }
      const piece = decoder?.push(id) ?? '';
      decodedEnd.push((decodedEnd.at(-1) ?? 0) + piece.length);
      const { emit, stopped } = stops.push(piece);
      text += emit;
      yield { id, delta: emit };
      if (stopped) {
        finishReason = 'stop';
        this.dropStopString(firstGenerated, decodedEnd, text.length, ids.length - 1);
        break;
      }
      if (ids.length >= maxNew || !this.canFeed()) break;
      checkAbort();
      this.makeRoom(b, 1); // (an eviction or compression rewrites the token table, pending id included)
      this.pending = undefined; // fed by this step: the sampler already wrote it into the token table
      const slot = this.used;
      gpu.write(s.positions.buffer, Uint32Array.of(this.base + this.fed.length), slot * 4);
      encodeForward(b, config, this.model.weights, s, { past: slot, rows: 1, logits: 'last' }, this.adapter);
      this.fed.push(id);
      id = await this.sampleNext(b, sampling, ids.length);
    }
    if (finishReason !== 'stop') text += stops.push(decoder?.flush() ?? '').emit + stops.flush();
    const tEnd = performance.now();
    const fedPrompt = prompt.length - reused;
    return {
      ids,
      text,
      finishReason,
      usage: {
        promptTokens: prompt.length,
        reusedTokens: reused,
        completionTokens: ids.length,
        timeToFirstTokenMs: tFirst - t0,
        prefillTokensPerSecond: (fedPrompt * 1000) / Math.max(tFirst - t0, 1e-3),
        decodeTokensPerSecond: ((ids.length - 1) * 1000) / Math.max(tEnd - tFirst, 1e-3),
      },
    };
  }

  /**
   * After a stop string: the cache keeps only the generated tokens whose text ends before it (the reply
   * as returned), and the pending token is dropped, so the next turn does not see the stop string.
   * `fedCount` generated tokens were fed from `firstGenerated` on. Left as it is when evictions or
   * compressions moved the working tokens meanwhile.
   */
  private dropStopString(firstGenerated: number, decodedEnd: number[], cut: number, fedCount: number): void {
    this.pending = undefined;
    if (this.fed.length !== firstGenerated + fedCount) return;
    const kept = decodedEnd.filter((end) => end <= cut).length;
    this.fed.length = firstGenerated + Math.min(kept, fedCount);
  }

  /**
   * Whether one more token can be fed. Generation stops when not (finish reason 'length'; the last sampled
   * token is never fed): at a full cache, or at the last position where positions grow with the text.
   * Window eviction and streaming never stop, nor does a ccm session that switches to streaming at the limit.
   */
  private canFeed(): boolean {
    const m = this.memory;
    if (m.policy === 'window' || this.streaming) return true;
    const reserve = this.compressionReserve();
    if (this.used + reserve >= this.capacity) return false;
    return (
      ('stream' in m && m.stream !== undefined) ||
      this.base + this.fed.length + reserve < this.model.config.maxPositions
    );
  }

  /**
   * Slots (and positions) a ccm-concat/merge turn must keep free for its end: the pending sampled token
   * and the n COMP rows, so that a turn which filled the cache can still be compressed.
   */
  private compressionReserve(): number {
    const m = this.memory;
    return (m.policy === 'ccm-concat' || m.policy === 'ccm-merge') && !this.streaming ? m.compTokens + 1 : 0;
  }

  /** Samples from the logits of the forward already in `b`, into the slot after the cache, and reads the id. */
  private async sampleNext(b: Batch, options: SamplingOptions, step: number): Promise<number> {
    const s = this.state;
    const outIndex = this.used;
    sample(b, {
      logits: s.logits,
      vocab: this.model.config.vocabSize,
      out: s.tokens,
      outIndex,
      seen: this.seen,
      options,
      step,
    });
    b.copy(s.tokens.buffer, outIndex * 4, this.readback, 0, 4);
    b.submit();
    const { gpu } = this.model;
    try {
      await this.readback.mapAsync(GPUMapMode.READ);
    } catch (e) {
      gpu.checkHealthy(); // a lost device explains a failed map better than the map error itself
      throw e;
    }
    gpu.checkHealthy();
    const id = new Uint32Array(this.readback.getMappedRange(0, 4))[0]!;
    this.readback.unmap();
    this.pending = id;
    return id;
  }
}

function resolveSampling(o: GenerateOptions): SamplingOptions {
  if (o.maxNewTokens !== undefined && !(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 1)) {
    throw invalidInput(`maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
  }
  const options: SamplingOptions = {
    temperature: o.temperature ?? 0,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    repetitionPenalty: o.repetitionPenalty ?? 1,
    seed: (o.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0,
  };
  checkSamplingOptions(options);
  return options;
}
