// Context-memory policies: what a session keeps of a conversation in its KV cache.
//   full        every token, with prefix reuse across requests;
//   window      attention sinks plus the most recent tokens (StreamingLLM): positions follow the cache
//               index and kept keys are re-rotated when older tokens are evicted;
//   ccm-concat  each finished turn compressed into n COMP slots appended to the memory (ccm.md), with a slot
//               budget and FIFO eviction of the oldest n-slot groups;
//   ccm-merge   each finished turn compressed into n COMP slots averaged into n memory slots (mean of h(1..t)).
import { invalidInput } from '../errors.js';

export type PolicyName = 'full' | 'window' | 'ccm-concat' | 'ccm-merge';
export const POLICY_NAMES: readonly PolicyName[] = ['full', 'window', 'ccm-concat', 'ccm-merge'];

export type MemoryOptions =
  | { policy: 'full' }
  | {
      policy: 'window';
      /** First tokens kept forever (attention sinks); default 4. */
      sinks?: number;
      /** Most tokens kept after the sinks. */
      window: number;
      /** Tokens evicted at once when the window is full (amortizes re-rotation); default window / 8. */
      evictChunk?: number;
    }
  | {
      policy: 'ccm-concat' | 'ccm-merge';
      /** COMP tokens per compression step (n); must match the adapter. */
      compTokens: number;
      /** Keep the conversation's first token (BOS) as a permanent slot 0 (sink adapters). */
      sink?: boolean;
      /** ccm-concat: most memory slots (a multiple of n); oldest groups are evicted first. Default unbounded. */
      budget?: number;
    };

export type ResolvedMemory =
  | { policy: 'full' }
  | { policy: 'window'; sinks: number; window: number; evictChunk: number }
  | { policy: 'ccm-concat' | 'ccm-merge'; compTokens: number; sink: boolean; budget: number };

/** Validates options and fills defaults. */
export function resolveMemory(o: MemoryOptions | undefined, capacity: number): ResolvedMemory {
  const m = o ?? { policy: 'full' };
  const positive = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) throw invalidInput(`memory.${what} must be a positive integer, got ${v}`);
  };
  switch (m.policy) {
    case 'full':
      return m;
    case 'window': {
      const sinks = m.sinks ?? 4;
      if (!Number.isInteger(sinks) || sinks < 0) throw invalidInput(`memory.sinks must be >= 0, got ${sinks}`);
      positive(m.window, 'window');
      const evictChunk = m.evictChunk ?? Math.max(1, Math.floor(m.window / 8));
      positive(evictChunk, 'evictChunk');
      if (evictChunk > m.window) throw invalidInput('memory.evictChunk cannot exceed memory.window');
      if (sinks + m.window > capacity) {
        throw invalidInput(`window policy keeps ${sinks + m.window} tokens but the cache holds ${capacity}`);
      }
      return { policy: 'window', sinks, window: m.window, evictChunk };
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
      return { policy: m.policy, compTokens: m.compTokens, sink: m.sink ?? false, budget };
    }
    default:
      throw invalidInput(
        `unknown memory policy "${(m as { policy: string }).policy}" (one of ${POLICY_NAMES.join(', ')})`,
      );
  }
}
