// The engine API in headless Chromium (SwiftShader WebGPU): createEngine starts its own module worker and
// loads stories260K (converted here, served over HTTP); three streamed turns, a reply stopped midway,
// engine.memory() against the ledger, export -> a new engine -> import -> the same continuation, dispose
// back to the device's own buffers, and the OpenAI-style facade, for the window and full policies.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { GenerationResult, LedgerSnapshot, MemoryStats } from '../src/index.js';
import type { CcmemModule } from './browser/engine/page.js';
import { browserEnvWithStories } from './helpers/browser.js';

const TURNS = ['Hi, I am Ada.', 'Tell me a story about a cat.', 'What was my name?'];

interface Scenario {
  model: string;
  memory: { policy: 'full' } | { policy: 'window'; window: number };
  turns: string[];
}

interface Report {
  progress: { file: string; loaded: number; total: number }[];
  info: { policy: string; gpu: string };
  turns: { deltas: string[]; result: GenerationResult }[];
  stop: { pieces: number; error: { code: string; isCcmemError: boolean } | undefined; maxNewTokens: number };
  stats: { memory: MemoryStats; ledger: LedgerSnapshot };
  continuation: string[];
  imported: string[];
  importedStats: MemoryStats;
  disposed: (LedgerSnapshot | undefined)[];
}

/** Runs in the page: everything the engine API promises for one policy. */
async function chatScenario(s: Scenario): Promise<Report> {
  const { createEngine, CcmemError } = (window as unknown as { ccmem: CcmemModule }).ccmem;
  const send = { maxNewTokens: 12, temperature: 0 };
  const progress: Report['progress'] = [];
  const open = () =>
    createEngine({ model: s.model, memory: s.memory, capacity: 160, onProgress: (p) => progress.push({ ...p }) });
  const collect = async (stream: AsyncIterable<string>) => {
    const out: string[] = [];
    for await (const d of stream) out.push(d);
    return out;
  };
  const engine = await open();
  const chat = engine.chat();
  const turns: Report['turns'] = [];
  for (const text of s.turns) {
    const deltas = await collect(chat.send(text, send));
    turns.push({ deltas, result: (await chat.lastResult())! });
  }
  const controller = new AbortController();
  const stop: Report['stop'] = { pieces: 0, error: undefined, maxNewTokens: 200 };
  try {
    for await (const _ of chat.send('Tell me more.', {
      ...send,
      maxNewTokens: stop.maxNewTokens,
      signal: controller.signal,
    })) {
      if (++stop.pieces === 3) controller.abort();
    }
  } catch (e) {
    stop.error = { code: (e as { code: string }).code, isCcmemError: e instanceof CcmemError };
  }
  const stats = await engine.memory();
  const bytes = await chat.exportMemory();
  const continuation = await collect(chat.send('And then?', send));

  const other = await open();
  const copy = other.chat();
  await copy.importMemory(bytes);
  const imported = await collect(copy.send('And then?', send));
  const importedStats = (await other.memory(copy)).memory!;
  const disposed = [await engine.dispose(), await other.dispose()];
  return {
    progress,
    info: engine.info,
    turns,
    stop,
    stats: stats as Report['stats'],
    continuation,
    imported,
    importedStats,
    disposed,
  };
}

const { env, modelUrl } = browserEnvWithStories();

describe('createEngine in Chromium (stories260K)', () => {
  const inPage = <T>(fn: (page: Page) => Promise<T>) =>
    env().withPage('/test/browser/engine/', async (page) => {
      await page.waitForFunction(() => 'ccmem' in window);
      return fn(page);
    });

  it.each([
    ['window', { policy: 'window', window: 48 }],
    ['full', { policy: 'full' }],
  ] as const)('%s policy: streamed turns, stop, memory, export/import, dispose', async (policy, options) => {
    const r = await inPage((page) => page.evaluate(chatScenario, { model: modelUrl(), memory: options, turns: TURNS }));
    expect(r.info.policy).toBe(policy);
    expect(r.info.gpu.toLowerCase()).toContain('swiftshader');
    const weights = r.progress.filter((p) => p.file === 'model.safetensors');
    expect(weights.at(-1)?.loaded).toBe(weights.at(-1)?.total);

    for (const { deltas, result } of r.turns) {
      expect(deltas.length).toBeGreaterThan(1); // streamed, not delivered at once
      expect(deltas.join('')).toBe(result.text);
      expect(result.usage.completionTokens).toBeGreaterThan(0);
      expect(result.usage.decodeTokensPerSecond).toBeGreaterThan(0);
      expect(result.usage.timeToFirstTokenMs).toBeGreaterThan(0);
    }
    expect(r.turns[1]!.result.usage.reusedTokens).toBeGreaterThan(0); // the cache carried over between turns

    expect(r.stop.error).toEqual({ code: 'ABORTED', isCcmemError: true });
    expect(r.stop.pieces).toBeLessThan(r.stop.maxNewTokens);

    const { memory, ledger } = r.stats;
    expect(memory.policy).toBe(policy);
    expect(memory.compressionSteps).toBe(0); // window and full compress nothing
    const used = memory.slots.sink + memory.slots.memory + memory.slots.working;
    // the ledger holds one KV cache of `capacity` slots; the stats count the slots in use, at the same size
    expect(ledger.byTag.kv.current * used).toBe(memory.bytes * memory.slots.capacity);
    expect(ledger.byTag.weights.current).toBeGreaterThan(0);
    if (policy === 'window') {
      expect(memory.tokensEvicted).toBeGreaterThan(0);
      expect(memory.fullContextBytes).toBeGreaterThan(memory.bytes);
    } else {
      expect(memory.fullContextBytes).toBe(memory.bytes);
    }

    expect(r.continuation.length).toBeGreaterThan(0);
    expect(r.imported).toEqual(r.continuation);
    for (const after of r.disposed) {
      expect(Object.keys(after!.byOwner)).toEqual(['gpu']);
      for (const tag of ['weights', 'kv', 'memory', 'staging'] as const) expect(after!.byTag[tag].current, tag).toBe(0);
    }
  });

  it('rejects a model that fails its sha256 check with MODEL_FORMAT, from the worker', async () => {
    const e = await inPage((page) =>
      page.evaluate(async (url) => {
        const { createEngine, CcmemError } = (window as unknown as { ccmem: CcmemModule }).ccmem;
        const sha256 = { 'model.safetensors': '0'.repeat(64) };
        try {
          await createEngine({ model: url, cache: { cache: 'memory', sha256 } });
          return undefined;
        } catch (e) {
          return { isCcmemError: e instanceof CcmemError, code: (e as { code?: string }).code, message: String(e) };
        }
      }, modelUrl()),
    );
    expect(e).toMatchObject({ isCcmemError: true, code: 'MODEL_FORMAT' });
    expect(e!.message).toContain('sha256');
  });

  it('answers OpenAI-style requests, streaming and not, reusing the conversation it extends', async () => {
    const r = await inPage((page) =>
      page.evaluate(async (url) => {
        const { createEngine } = (window as unknown as { ccmem: CcmemModule }).ccmem;
        const engine = await createEngine({ model: url, capacity: 160 });
        const ask = { max_tokens: 10, temperature: 0 };
        const first = await engine.chat.completions.create({
          messages: [{ role: 'user', content: 'Hi, I am Ada.' }],
          ...ask,
        });
        const messages = [
          { role: 'user' as const, content: 'Hi, I am Ada.' },
          { role: 'assistant' as const, content: first.choices[0]!.message.content },
          { role: 'user' as const, content: 'Tell me a story.' },
        ];
        const stream = await engine.chat.completions.create({ messages, ...ask, stream: true });
        const chunks = [];
        for await (const c of stream) chunks.push(c);
        // the same messages again no longer extend the conversation (it ends with the streamed reply)
        const again = await engine.chat.completions.create({ messages, ...ask });
        // the same two turns through engine.chat(): the facade's extension is this conversation
        const chat = engine.chat();
        const replies = [];
        for (const text of ['Hi, I am Ada.', 'Tell me a story.']) {
          for await (const _ of chat.send(text, { maxNewTokens: 10, temperature: 0 }));
          replies.push((await chat.lastResult())!.text);
        }
        await engine.dispose();
        return { first, chunks, again, replies };
      }, modelUrl()),
    );
    expect(r.first.object).toBe('chat.completion');
    expect(r.first.choices[0]!.message.role).toBe('assistant');
    expect(r.first.usage.completion_tokens).toBeGreaterThan(0);
    expect(r.first.usage.total_tokens).toBe(r.first.usage.prompt_tokens + r.first.usage.completion_tokens);
    expect(r.first.choices[0]!.message.content).toBe(r.replies[0]);

    expect(r.chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(r.chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(r.chunks.length).toBeGreaterThan(3);
    expect(r.chunks.at(-1)!.choices[0]!.finish_reason).not.toBeNull();
    expect(r.chunks.map((c) => c.choices[0]!.delta.content ?? '').join('')).toBe(r.replies[1]);

    expect(r.again.choices[0]!.message.content.length).toBeGreaterThan(0);
    expect(r.again.usage.prompt_tokens_details.cached_tokens).toBe(0); // rebuilt
  });
});
