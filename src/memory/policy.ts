// Context-memory policies: what a session keeps of a conversation in its KV cache.
//   full        every token, with prefix reuse across requests;
//   window      attention sinks plus the most recent tokens (StreamingLLM): positions follow the cache
//               index and kept keys are re-rotated when older tokens are evicted;
//   ccm-concat  each finished turn compressed into n COMP slots appended to the memory (ccm.md), with a slot
//               budget and FIFO eviction of the oldest n-slot groups;
//   ccm-merge   each finished turn compressed into n COMP slots averaged into n memory slots (mean of h(1..t));
//   ccm-stream  unbounded text (ccm.md section 7): [sink | <= M COMP slots | recent tokens], positions by cache
//               index; when the cache reaches the window its oldest chunk is compressed into n COMP slots;
//   sentinel    spans of working tokens each compressed into one <CR> slot in place (sentinel.md), chosen
//               explicitly (Session.compressSpan) or, after each turn, finished sentences older than the recent tokens.
// full, ccm-concat, ccm-merge and sentinel number positions by the whole text, which can outgrow the model's
// max_position_embeddings: that is an error, or for ccm-concat/merge a switch to ccm-stream when asked.

import type { AdapterConfig } from '../adapters/types.js';
import { invalidInput } from '../errors.js';

export type PolicyName = 'full' | 'window' | 'ccm-concat' | 'ccm-merge' | 'ccm-stream' | 'sentinel';
export const POLICY_NAMES: readonly PolicyName[] = [
  'full',
  'window',
  'ccm-concat',
  'ccm-merge',
  'ccm-stream',
  'sentinel',
];

/** ccm-stream parameters (ccm.md section 7); the defaults shrink to fit a small cache. */
export interface StreamOptions {
  /**
   * Cache slots (sink + memory + recent) at which the oldest chunk is compressed; default 160, or
   * capacity - n when the cache is smaller (the n COMP rows are computed in the slots after the window).
   */
  window?: number;
  /** Oldest recent tokens compressed at once into n COMP slots; default 64, or what fits the window. */
  chunk?: number;
  /** Most COMP slots kept (a multiple of n), oldest groups evicted first; default 8 (rounded up to n). */
  maxMemory?: number;
}

export type MemoryOptions =
  | { policy: 'full' }
  | {
      policy: 'window';
      /** First tokens kept forever (attention sinks, StreamingLLM's 4); default 4. */
      sinks?: number;
      /**
       * Most tokens kept, the sinks included (as transformers' SinkCache counts its window_length):
       * `{ window: 512 }` keeps 4 sinks and the 508 latest tokens. Default: the whole cache.
       */
      window?: number;
      /**
       * Tokens evicted at once when the window is full (amortizes re-rotation); default (window - sinks) / 8,
       * at least 1.
       */
      evictChunk?: number;
    }
  | ({
      policy: 'ccm-concat' | 'ccm-merge';
      /** COMP tokens per compression step (n); must match the adapter (memoryForAdapter takes its n). */
      compTokens: number;
      /** Keep the conversation's first token (BOS) as a permanent slot 0 (sink adapters); default false (memoryForAdapter: the adapter's). */
      sink?: boolean;
      /** ccm-concat: most memory slots (a multiple of n); oldest groups are evicted first. Default unbounded. */
      budget?: number;
      /**
       * When a forward would pass max_position_embeddings: 'error' (default, INVALID_INPUT) or 'stream', which
       * re-rotates the cache to cache-index positions and continues as ccm-stream with the StreamOptions given
       * here (maxMemory defaults to a finite budget).
       */
      onPositionLimit?: 'error' | 'stream';
    } & StreamOptions)
  | ({ policy: 'ccm-stream'; compTokens: number } & StreamOptions)
  | {
      policy: 'sentinel';
      /**
       * Token ids whose text ends a sentence (. ! ? or a newline), or a predicate: enables compressing every
       * finished sentence older than `recent` tokens at endTurn. Without it, only compressSpan compresses.
       */
      sentenceEnds?: ReadonlySet<number> | ((id: number) => boolean);
      /** Most recent working tokens never compressed automatically; default 32. */
      recent?: number;
      /** Longest automatic span; longer sentences are split into near-equal pieces; default 25. */
      maxSpan?: number;
    };

export interface StreamParams {
  window: number;
  chunk: number;
  maxMemory: number;
}

export type ResolvedMemory =
  | { policy: 'full' }
  /** window counts the sinks: sinks + recent tokens. */
  | { policy: 'window'; sinks: number; window: number; evictChunk: number }
  | {
      policy: 'ccm-concat' | 'ccm-merge';
      compTokens: number;
      sink: boolean;
      budget: number;
      onPositionLimit: 'error' | 'stream';
      /** The ccm-stream parameters after a switch ('stream' only). */
      stream?: StreamParams;
    }
  | ({ policy: 'ccm-stream'; compTokens: number } & StreamParams)
  | {
      policy: 'sentinel';
      recent: number;
      maxSpan: number;
      /** Absent: no automatic spans. (A function: memory exports do not record it.) */
      sentenceEnd?: (id: number) => boolean;
    };

const positive = (v: number, what: string) => {
  if (!Number.isInteger(v) || v < 1) throw invalidInput(`memory.${what} must be a positive integer, got ${v}`);
};

/** Refuses memory.`what` = `v` above `most`, saying what would fit (`why`: what bounds it). */
const atMost = (v: number, most: number, what: string, why: string) => {
  if (v > most) throw invalidInput(`memory.${what} ${v} ${why}; at most ${most} fits`);
};

/** Validates options and fills defaults. */
export function resolveMemory(o: MemoryOptions | undefined, capacity: number): ResolvedMemory {
  const m = o ?? { policy: 'full' };
  switch (m.policy) {
    case 'full':
      return m;
    case 'window': {
      const sinks = m.sinks ?? 4;
      if (!Number.isInteger(sinks) || sinks < 0) throw invalidInput(`memory.sinks must be >= 0, got ${sinks}`);
      const window = m.window ?? capacity;
      positive(window, 'window');
      atMost(window, capacity, 'window', `exceeds the cache of ${capacity} tokens (the window counts the sinks)`);
      atMost(sinks, window - 1, 'sinks', `leaves no room for recent tokens in a window of ${window}`);
      const recent = window - sinks;
      const evictChunk = m.evictChunk ?? Math.max(1, Math.floor(recent / 8));
      positive(evictChunk, 'evictChunk');
      atMost(evictChunk, recent, 'evictChunk', `exceeds the ${recent} recent tokens of the window`);
      return { policy: 'window', sinks, window, evictChunk };
    }
    case 'ccm-concat':
    case 'ccm-merge': {
      positive(m.compTokens, 'compTokens');
      const budget = m.budget ?? Number.POSITIVE_INFINITY;
      if (m.policy === 'ccm-concat' && budget !== Number.POSITIVE_INFINITY) {
        positive(budget, 'budget');
        if (budget % m.compTokens)
          throw invalidInput(`memory.budget ${budget} is not a multiple of n = ${m.compTokens}`);
      }
      const onPositionLimit = m.onPositionLimit ?? 'error';
      if (onPositionLimit !== 'error' && onPositionLimit !== 'stream') {
        throw invalidInput(`memory.onPositionLimit must be 'error' or 'stream', got ${onPositionLimit}`);
      }
      const resolved = { policy: m.policy, compTokens: m.compTokens, sink: m.sink ?? false, budget, onPositionLimit };
      if (onPositionLimit === 'error') return resolved;
      const maxMemory = m.maxMemory ?? (m.policy === 'ccm-concat' && Number.isFinite(budget) ? budget : undefined);
      return { ...resolved, stream: streamParams({ ...m, maxMemory }, m.compTokens, capacity) };
    }
    case 'ccm-stream':
      positive(m.compTokens, 'compTokens');
      return { policy: 'ccm-stream', compTokens: m.compTokens, ...streamParams(m, m.compTokens, capacity) };
    case 'sentinel': {
      const recent = m.recent ?? 32;
      if (!Number.isInteger(recent) || recent < 0) throw invalidInput(`memory.recent must be >= 0, got ${recent}`);
      const maxSpan = m.maxSpan ?? 25;
      if (!Number.isInteger(maxSpan) || maxSpan < 2) throw invalidInput(`memory.maxSpan must be >= 2, got ${maxSpan}`);
      const ends = m.sentenceEnds;
      const sentenceEnd = typeof ends === 'function' ? ends : ends ? (id: number) => ends.has(id) : undefined;
      return { policy: 'sentinel', recent, maxSpan, ...(sentenceEnd ? { sentenceEnd } : {}) };
    }
    default:
      throw invalidInput(
        `unknown memory policy "${(m as { policy: string }).policy}" (one of ${POLICY_NAMES.join(', ')})`,
      );
  }
}

/**
 * Fills and checks the streaming parameters: every compression must find a full chunk of recent tokens
 * (chunk <= window - sink - maxMemory) and free at least one slot (chunk > n), and the n COMP rows are
 * computed in slots after a full window (window + n <= capacity).
 */
function streamParams(o: StreamOptions, n: number, capacity: number): StreamParams {
  const window = o.window ?? Math.min(160, capacity - n);
  const maxMemory = o.maxMemory ?? n * Math.ceil(8 / n);
  positive(window, 'window');
  positive(maxMemory, 'maxMemory');
  if (maxMemory % n) throw invalidInput(`memory.maxMemory ${maxMemory} is not a multiple of n = ${n}`);
  atMost(window, capacity - n, 'window', `plus ${n} COMP rows exceeds the cache of ${capacity} slots`);
  const room = window - 1 - maxMemory; // recent tokens beside the sink and the memory slots
  const chunk = o.chunk ?? Math.min(64, room);
  positive(chunk, 'chunk');
  if (chunk <= n) {
    const need = o.chunk === undefined ? `; the window ${window} leaves only ${room} beside the sink and memory` : '';
    throw invalidInput(`memory.chunk ${chunk} must exceed n = ${n} COMP tokens to free any slot${need}`);
  }
  atMost(chunk, room, 'chunk', `does not fit the window ${window} beside the sink and ${maxMemory} memory slots`);
  return { window, chunk, maxMemory };
}

/** Memory options as a caller gives them: the COMP count may be left to the adapter. */
export type MemoryRequest = OptionalCompTokens<MemoryOptions>;
type OptionalCompTokens<T> = T extends { compTokens: number } ? Omit<T, 'compTokens'> & { compTokens?: number } : T;

/**
 * Checks memory options against the adapter the session will run with and fills what the adapter fixes:
 * ccm policies need a CCM adapter trained for that mode (streaming concatenates its memory, ccm.md
 * section 7) and take its n and sink; sentinel needs a sentinel adapter.
 */
export function memoryForAdapter(m: MemoryRequest | undefined, adapter: AdapterConfig | undefined): MemoryOptions {
  if (!m || m.policy === 'full' || m.policy === 'window') return m ?? { policy: 'full' };
  if (m.policy === 'sentinel') {
    if (adapter?.method !== 'sentinel') throw invalidInput('the sentinel policy needs a sentinel adapter');
    return m;
  }
  if (adapter?.method !== 'ccm') throw invalidInput(`the ${m.policy} policy needs a CCM adapter`);
  const mode = m.policy === 'ccm-merge' ? 'merge' : 'concat';
  if (adapter.mode !== mode) throw invalidInput(`the adapter was trained for ccm-${adapter.mode}, not ${m.policy}`);
  if (m.compTokens !== undefined && m.compTokens !== adapter.compTokens) {
    throw invalidInput(`memory.compTokens is ${m.compTokens}, but the adapter was trained with ${adapter.compTokens}`);
  }
  if (m.policy === 'ccm-stream') return { ...m, compTokens: adapter.compTokens };
  return { ...m, compTokens: adapter.compTokens, sink: m.sink ?? adapter.sink };
}
