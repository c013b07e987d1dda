// A conversation's GPU state and its generation loop: chunked prefill that reuses the cached prefix,
// then one command buffer per decoded token (forward + GPU sampling), reading back only the sampled id.
import { aborted, invalidInput } from '../errors.js';
import { Batch } from '../gpu/batch.js';
import { createTensor, type Tensor } from '../gpu/tensor.js';
import { checkSamplingOptions, clearSeen, markSeen, type SamplingOptions, sample } from '../kernels/sample.js';
import { createState, encodeForward, type ForwardState } from '../model/llama.js';
import type { LoadedModel } from '../model/load.js';
import { StopMatcher } from './stop.js';

export interface GenerateOptions extends Partial<SamplingOptions> {
  /** Default 256; also bounded by the session's free cache slots plus one (finish reason 'length'). */
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
}

let sessions = 0;

export class Session {
  readonly owner = `session${++sessions}`;
  private readonly state: ForwardState;
  private readonly seen: Tensor;
  private readonly readback: GPUBuffer;
  /** Token ids whose K/V occupy cache slots [0, fed.length). */
  private fed: number[] = [];
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
    const chunk = Math.min(options.chunk ?? 64, capacity);
    const logitRows = Math.min(options.logitRows ?? 1, chunk);
    this.state = createState(gpu, config, { capacity, chunk, logitRows, owner: this.owner });
    this.seen = createTensor(gpu, {
      tag: 'scratch',
      owner: this.owner,
      label: 'seen',
      shape: [config.vocabSize],
      format: 'u32',
    });
    this.readback = gpu.createBuffer({
      tag: 'staging',
      owner: this.owner,
      label: 'sampled-id',
      size: 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    gpu.write(
      this.state.positions.buffer,
      Uint32Array.from({ length: capacity }, (_, i) => i),
    );
  }

  get capacity(): number {
    return this.state.options.capacity;
  }

  /** Ids whose K/V are cached (the prefix a follow-up request can reuse). */
  get cachedIds(): readonly number[] {
    return this.fed;
  }

  /**
   * Streams the continuation of `promptIds` token by token; the generator's return value is the result.
   * A second call while one is running is refused (INVALID_INPUT); an aborted signal throws ABORTED and
   * leaves the session usable.
   */
  async *generate(
    promptIds: readonly number[],
    options: GenerateOptions = {},
  ): AsyncGenerator<TokenEvent, GenerationResult> {
    this.checkPrompt(promptIds);
    if (this.busy) throw invalidInput('this session is already generating: wait for it to finish or abort it');
    this.busy = true;
    try {
      return yield* this.run(promptIds, options);
    } finally {
      this.busy = false;
    }
  }

  /** Logits after the last prompt token, or at every prompt position with `all`. */
  async logits(promptIds: readonly number[], options: { all?: boolean } = {}): Promise<Float32Array[]> {
    this.checkPrompt(promptIds);
    if (this.busy) throw invalidInput('this session is busy');
    const { gpu, config } = this.model;
    const { chunk, logitRows } = this.state.options;
    const step = options.all ? logitRows : chunk;
    const start = options.all ? 0 : this.reusablePrefix(promptIds);
    this.fed.length = start;
    gpu.write(this.state.tokens.buffer, Uint32Array.from(promptIds.slice(start)), start * 4);
    const out: Float32Array[] = [];
    for (let past = start; past < promptIds.length; past += step) {
      const rows = Math.min(step, promptIds.length - past);
      const last = past + rows === promptIds.length;
      const b = new Batch(gpu);
      encodeForward(b, config, this.model.weights, this.state, {
        past,
        rows,
        logits: options.all ? 'all' : last ? 'last' : 'none',
      });
      b.submit();
      if (options.all || last) {
        const n = options.all ? rows : 1;
        const flat = new Float32Array(await gpu.read(this.state.logits.buffer, 0, n * config.vocabSize * 4));
        for (let r = 0; r < n; r++) out.push(flat.slice(r * config.vocabSize, (r + 1) * config.vocabSize));
      }
    }
    this.fed = [...promptIds];
    return out;
  }

  /** Forgets the cached prefix (the next request recomputes everything). */
  reset(): void {
    this.fed = [];
  }

  dispose(): void {
    this.model.gpu.releaseOwner(this.owner);
  }

  private checkPrompt(ids: readonly number[]): void {
    const V = this.model.config.vocabSize;
    if (ids.length === 0) throw invalidInput('the prompt is empty');
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw invalidInput(`token id ${id} at index ${i} is not in the vocabulary [0, ${V})`);
      }
    });
    if (ids.length > this.capacity) {
      throw invalidInput(`the prompt has ${ids.length} tokens; this session's cache holds ${this.capacity}`);
    }
  }

  /** Cached slots that can be kept for `ids`: the common prefix, leaving at least one token to feed. */
  private reusablePrefix(ids: readonly number[]): number {
    let n = 0;
    while (n < this.fed.length && n < ids.length && this.fed[n] === ids[n]) n++;
    return Math.min(n, ids.length - 1);
  }

  private async *run(prompt: readonly number[], o: GenerateOptions): AsyncGenerator<TokenEvent, GenerationResult> {
    const { gpu, config, weights, tokenizer } = this.model;
    const s = this.state;
    const sampling = resolveSampling(o);
    // the last sampled token is never fed, so a full cache still yields one more token
    const maxNew = Math.min(o.maxNewTokens ?? 256, this.capacity - prompt.length + 1);
    const eos = new Set([...config.eosTokenIds, ...(tokenizer?.eosTokenIds ?? [])]);
    const decoder = tokenizer?.streamDecoder({ skipSpecialTokens: true });
    const stops = new StopMatcher(o.stop ?? []);
    const checkAbort = () => {
      if (o.signal?.aborted) throw aborted();
    };
    checkAbort();

    const t0 = performance.now();
    const reused = this.reusablePrefix(prompt);
    this.fed.length = reused;
    gpu.write(s.tokens.buffer, Uint32Array.from(prompt.slice(reused)), reused * 4);
    const b = new Batch(gpu);
    if (sampling.repetitionPenalty !== 1) {
      clearSeen(b, { seen: this.seen, vocab: config.vocabSize });
      markSeen(b, { ids: s.tokens, count: prompt.length, seen: this.seen });
    }
    for (let past = reused; past < prompt.length; past += s.options.chunk) {
      const rows = Math.min(s.options.chunk, prompt.length - past);
      const last = past + rows === prompt.length;
      encodeForward(b, config, weights, s, { past, rows, logits: last ? 'last' : 'none' });
      if (!last) b.submit(); // one command buffer per chunk keeps each submission bounded
    }
    this.fed.push(...prompt.slice(reused));
    let id = await this.sampleNext(b, sampling, 0);
    const tFirst = performance.now();

    const ids: number[] = [];
    let text = '';
    let finishReason: FinishReason = 'length';
    for (;;) {
      ids.push(id);
      if (eos.has(id)) {
        finishReason = 'eos';
        break;
      }
      const { emit, stopped } = stops.push(decoder?.push(id) ?? '');
      text += emit;
      yield { id, delta: emit };
      if (stopped) {
        finishReason = 'stop';
        break;
      }
      if (ids.length >= maxNew) break;
      checkAbort();
      encodeForward(b, config, weights, s, { past: this.fed.length, rows: 1, logits: 'last' });
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

  /** Samples from the logits of the forward already in `b`, into the slot after the cache, and reads the id. */
  private async sampleNext(b: Batch, options: SamplingOptions, step: number): Promise<number> {
    const s = this.state;
    const outIndex = this.fed.length;
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
