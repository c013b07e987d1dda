// Memory policy options: `{ policy: NAME }` alone works on any cache its policy can run in (documented
// defaults that fit the capacity), and a value that does not fit says what would (issue 11, item 6).
import { describe, expect, it } from 'vitest';
import type { AdapterConfig } from '../../src/adapters/types.js';
import { type MemoryOptions, memoryForAdapter, resolveMemory } from '../../src/memory/policy.js';
import { errorCode } from '../helpers/checks.js';

/** The INVALID_INPUT message resolveMemory refuses `o` with on a cache of `capacity` slots. */
function refusal(o: MemoryOptions, capacity: number): string {
  try {
    resolveMemory(o, capacity);
  } catch (e) {
    expect(errorCode(() => resolveMemory(o, capacity))).toBe('INVALID_INPUT');
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('window policy', () => {
  it('defaults to StreamingLLM: 4 sinks and the rest of the cache', () => {
    expect(resolveMemory({ policy: 'window' }, 512)).toEqual({
      policy: 'window',
      sinks: 4,
      window: 512,
      evictChunk: 63,
    });
    expect(resolveMemory({ policy: 'window' }, 64)).toEqual({ policy: 'window', sinks: 4, window: 64, evictChunk: 7 });
  });

  it("takes README's { window: 512 } on a 512-token cache: the window counts its sinks", () => {
    expect(resolveMemory({ policy: 'window', window: 512 }, 512)).toMatchObject({ sinks: 4, window: 512 });
    expect(resolveMemory({ policy: 'window', window: 24, sinks: 0, evictChunk: 24 }, 32)).toMatchObject({
      window: 24,
      sinks: 0,
    });
  });

  it('says what fits when a value does not', () => {
    expect(refusal({ policy: 'window', window: 600 }, 512)).toBe(
      'memory.window 600 exceeds the cache of 512 tokens (the window counts the sinks); at most 512 fits',
    );
    expect(refusal({ policy: 'window', window: 4 }, 512)).toBe(
      'memory.sinks 4 leaves no room for recent tokens in a window of 4; at most 3 fits',
    );
    expect(refusal({ policy: 'window', window: 20, evictChunk: 17 }, 512)).toBe(
      'memory.evictChunk 17 exceeds the 16 recent tokens of the window; at most 16 fits',
    );
    expect(refusal({ policy: 'window', window: 0 }, 512)).toMatch(/memory.window must be a positive integer, got 0/);
  });
});

describe('ccm-stream defaults fit the cache', () => {
  it('keeps the documented defaults where they fit', () => {
    expect(resolveMemory({ policy: 'ccm-stream', compTokens: 2 }, 2048)).toEqual({
      policy: 'ccm-stream',
      compTokens: 2,
      window: 160,
      chunk: 64,
      maxMemory: 8,
    });
  });

  it('shrinks the window and chunk to a small cache', () => {
    // 100 slots: the window leaves room for the 2 COMP rows; the chunk for the sink and 8 memory slots
    expect(resolveMemory({ policy: 'ccm-stream', compTokens: 2 }, 100)).toMatchObject({ window: 98, chunk: 64 });
    expect(resolveMemory({ policy: 'ccm-stream', compTokens: 2 }, 48)).toMatchObject({ window: 46, chunk: 37 });
    // and a ccm session's switch to streaming gets the same
    const concat = resolveMemory({ policy: 'ccm-concat', compTokens: 2, onPositionLimit: 'stream' }, 48);
    expect(concat).toMatchObject({ stream: { window: 46, chunk: 37, maxMemory: 8 } });
  });

  it('says what fits when a value does not, or why nothing does', () => {
    expect(refusal({ policy: 'ccm-stream', compTokens: 2, window: 200 }, 128)).toBe(
      'memory.window 200 plus 2 COMP rows exceeds the cache of 128 slots; at most 126 fits',
    );
    expect(refusal({ policy: 'ccm-stream', compTokens: 2, chunk: 200 }, 2048)).toBe(
      'memory.chunk 200 does not fit the window 160 beside the sink and 8 memory slots; at most 151 fits',
    );
    expect(refusal({ policy: 'ccm-stream', compTokens: 4 }, 16)).toBe(
      'memory.chunk 3 must exceed n = 4 COMP tokens to free any slot; the window 12 leaves only 3 beside the sink and memory',
    );
  });
});

describe('defaults of the other policies', () => {
  it('sentinel: 32 recent tokens, spans of at most 25', () => {
    expect(resolveMemory({ policy: 'sentinel' }, 64)).toEqual({ policy: 'sentinel', recent: 32, maxSpan: 25 });
  });

  it("ccm: the adapter's COMP count and sink, no budget, an error at the position limit", () => {
    const adapter = { method: 'ccm', mode: 'concat', compTokens: 3, sink: true } as AdapterConfig;
    const options = memoryForAdapter({ policy: 'ccm-concat' }, adapter);
    expect(options).toEqual({ policy: 'ccm-concat', compTokens: 3, sink: true });
    expect(resolveMemory(options, 512)).toEqual({
      policy: 'ccm-concat',
      compTokens: 3,
      sink: true,
      budget: Number.POSITIVE_INFINITY,
      onPositionLimit: 'error',
    });
  });

  it('no options: the full policy', () => {
    expect(resolveMemory(undefined, 64)).toEqual({ policy: 'full' });
  });
});
