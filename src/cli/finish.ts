// Why a generation ended, for the user: a reply cut short because the cache (or the model's positions)
// ran out ends with finish reason 'length' before --max-new-tokens, which would otherwise look like a
// normal end. The CLI says so on stderr and puts finishReason in its JSON.
import type { GenerationResult, MemoryStats } from '../engine/session.js';

/**
 * The stderr line for a generation that stopped for lack of room; undefined when it did not. `atEnd`: the
 * session's stats when the last token was generated (before a turn's compression makes room again).
 */
export function stopNote(result: GenerationResult, maxNewTokens: number, atEnd: MemoryStats, maxPositions: number) {
  if (result.finishReason !== 'length' || result.ids.length >= maxNewTokens) return undefined;
  const { slots, nextPosition } = atEnd;
  const freeSlots = slots.capacity - (slots.sink + slots.memory + slots.working);
  const freePositions = maxPositions - nextPosition;
  const why =
    freePositions < freeSlots
      ? `the model's ${maxPositions} positions are used up`
      : `the cache is full (${slots.capacity} tokens)`;
  return `ccmem: stopped after ${result.ids.length} of ${maxNewTokens} new tokens: ${why}`;
}
