// The client (src/client) and the worker's API object (src/worker/engine.ts) talking over a Node
// MessageChannel with Comlink, around a fake engine core: streaming order, abort and rollback, busy
// refusal, error types across the boundary, crash and device-loss recovery, the facade, dispose.
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/client/engine.js';
import { type CcmemError, isCcmemError } from '../../src/errors.js';
import type { LoadProgress } from '../../src/worker/protocol.js';
import { fakeLoader, fakeReply } from './fake-core.js';
import { FakeWorker, fakeWorkers } from './fake-worker.js';

const engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.dispose()));
});

async function start(
  tokenMs = 2,
  extra: { onError?: (e: CcmemError) => void; onProgress?: (p: LoadProgress) => void } = {},
) {
  const loader = fakeLoader(tokenMs);
  const workers = fakeWorkers(loader);
  const engine = await createEngine({ model: 'https://example.test/model/', worker: workers, ...extra });
  engines.push(engine);
  return { engine, loader, workers };
}

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const d of stream) out.push(d);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

function expectCode(e: unknown, code: string) {
  expect(isCcmemError(e), String(e)).toBe(true);
  expect((e as CcmemError).code).toBe(code);
}

describe('engine client over a MessageChannel (fake core)', () => {
  it('reports load progress in order before createEngine resolves', async () => {
    const seen: number[] = [];
    const { engine } = await start(2, { onProgress: (p) => seen.push(p.loaded) });
    expect(seen).toEqual([0, 512, 1024]);
    expect(engine.info.model).toBe('https://example.test/model/');
  });

  it('streams every delta in order before the turn returns, and keeps the result', async () => {
    const { engine } = await start();
    const chat = engine.chat({ system: 'be brief' });
    const stream = chat.send('hello there', { maxNewTokens: 64 });
    const deltas: string[] = [];
    let step = await stream.next();
    for (; !step.done; step = await stream.next()) deltas.push(step.value);
    expect(deltas).toEqual(fakeReply('hello there', 1));
    expect(step.value.text).toBe(deltas.join(''));
    expect(await chat.lastResult()).toEqual(step.value);

    const idle = engine.chat();
    const second = await collect(chat.send('again'));
    expect(second).toEqual(fakeReply('again', 2));
    expect((await chat.lastResult())?.usage.reusedTokens).toBeGreaterThan(0);
    // by default engine.memory() reports the chat used last
    const stats = await engine.memory();
    expect(stats.memory?.compressionSteps).toBe(2);
    expect(stats.ledger.byTag.kv.current).toBe(stats.memory?.bytes);
    expect((await engine.memory(idle)).memory?.compressionSteps).toBe(0);
  });

  it('aborts through the signal with ABORTED and rolls the chat back to before the turn', async () => {
    const { engine } = await start(5);
    const chat = engine.chat();
    await collect(chat.send('first'));
    const controller = new AbortController();
    const got: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const d of chat.send('second turn here', { signal: controller.signal })) {
          got.push(d);
          if (got.length === 2) controller.abort();
        }
      })(),
    );
    expectCode(error, 'ABORTED');
    expect(got.length).toBeLessThan(fakeReply('second turn here', 2).length);
    // the aborted turn left no trace: the next one is turn 2
    expect(await collect(chat.send('retry'))).toEqual(fakeReply('retry', 2));
    // an already aborted signal never starts a turn
    expectCode(await rejection(collect(chat.send('x', { signal: AbortSignal.abort() }))), 'ABORTED');
  });

  it('stops the reply when the consumer leaves the loop early', async () => {
    const { engine } = await start(5);
    const chat = engine.chat();
    for await (const _ of chat.send('one two three')) break;
    // the chat is free again at once, and the abandoned turn was rolled back
    expect(await collect(chat.send('four'))).toEqual(fakeReply('four', 1));
  });

  it('refuses a second send, an export and an import on a busy chat with INVALID_INPUT', async () => {
    const { engine } = await start(5);
    const chat = engine.chat();
    const first = chat.send('a long message to answer');
    await first.next();
    expectCode(await rejection(chat.send('b').next()), 'INVALID_INPUT');
    expectCode(await rejection(chat.exportMemory()), 'INVALID_INPUT');
    expectCode(await rejection(chat.importMemory(new Uint8Array(4))), 'INVALID_INPUT');
    const rest = await collect(first);
    expect(rest.length).toBe(fakeReply('a long message to answer', 1).length - 1);
    // another chat is independent of the busy one
    const other = engine.chat();
    expect(await collect(other.send('c'))).toEqual(fakeReply('c', 1));
  });

  it('keeps error types across the boundary', async () => {
    const { engine } = await start();
    const chat = engine.chat();
    const empty = await rejection(collect(chat.send('')));
    expectCode(empty, 'INVALID_INPUT');
    expect((empty as Error).message).toContain('empty');
    const plain = await rejection(collect(chat.send('boom')));
    expect(isCcmemError(plain)).toBe(false);
    expect(plain).toBeInstanceOf(Error);
    expect((plain as Error).name).toBe('RangeError');
    expect((plain as Error).message).toBe('a plain error from the core');
    expectCode(await rejection(chat.importMemory(new Uint8Array([1, 2, 3]))), 'INVALID_INPUT');
    // a model that cannot load: createEngine rejects with its code and ends the worker
    const workers = fakeWorkers(fakeLoader());
    expectCode(await rejection(createEngine({ model: 'missing', worker: workers })), 'MODEL_FORMAT');
    expect(workers.started[0]?.terminated).toBe(true);
  });

  it('exports and imports a conversation into a chat of another engine', async () => {
    const a = await start();
    const chat = a.engine.chat();
    await collect(chat.send('remember this'));
    const bytes = await chat.exportMemory();
    const b = await start();
    const copy = b.engine.chat();
    await copy.importMemory(bytes);
    expect(await collect(copy.send('next'))).toEqual(fakeReply('next', 2));
  });

  it('detects a crashed worker, fails the pending turn, restarts and restores every chat', async () => {
    const errors: CcmemError[] = [];
    const { engine, loader, workers } = await start(5, { onError: (e) => errors.push(e) });
    const a = engine.chat({ system: 'A' });
    const b = engine.chat();
    await collect(a.send('one'));
    await collect(a.send('two'));
    await collect(b.send('only'));

    const pending = a.send('three is cut short');
    await pending.next();
    workers.started[0]!.crash('out of memory');
    expectCode(await rejection(collect(pending)), 'WORKER_LOST');
    expect(errors.map((e) => e.code)).toEqual(['WORKER_LOST']);
    expect(errors[0]!.message).toContain('out of memory');

    // a new worker reloaded the same model, and both conversations went on where they were
    expect(await collect(a.send('three'))).toEqual(fakeReply('three', 3));
    expect(await collect(b.send('again'))).toEqual(fakeReply('again', 2));
    expect(workers.started).toHaveLength(2);
    expect(loader.cores.map((c) => c.init.model)).toEqual([
      'https://example.test/model/',
      'https://example.test/model/',
    ]);
    expect(loader.cores[1]!.chats.size).toBe(2);
  });

  it('recovers from a lost device the same way', async () => {
    const errors: CcmemError[] = [];
    const { engine, workers } = await start(2, { onError: (e) => errors.push(e) });
    const chat = engine.chat();
    await collect(chat.send('before'));
    expectCode(await rejection(collect(chat.send('lose the device'))), 'DEVICE_LOST');
    expect(await collect(chat.send('after'))).toEqual(fakeReply('after', 2));
    expect(errors.map((e) => e.code)).toEqual(['DEVICE_LOST']);
    expect(workers.started).toHaveLength(2);
    expect(workers.started[0]!.terminated).toBe(true);
  });

  it('cannot restart a worker it was handed as an instance: the engine reports it and refuses calls', async () => {
    const errors: CcmemError[] = [];
    const worker = new FakeWorker(fakeLoader());
    const engine = await createEngine({ model: 'm/x', worker, onError: (e) => errors.push(e) });
    engines.push(engine);
    const chat = engine.chat();
    await collect(chat.send('hi'));
    worker.crash('gone');
    expect(errors.map((e) => e.code)).toEqual(['WORKER_LOST']);
    expectCode(await rejection(collect(chat.send('still there?'))), 'WORKER_LOST');
    expectCode(await rejection(engine.memory()), 'WORKER_LOST');
  });

  it('answers OpenAI-style requests, continuing the conversation when the messages extend it', async () => {
    const { engine } = await start();
    const first = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], temperature: 0 });
    expect(first.object).toBe('chat.completion');
    expect(first.model).toBe('https://example.test/model/');
    const reply = first.choices[0]!.message.content;
    expect(reply).toBe(fakeReply('hi', 1).join(''));
    expect(first.usage.prompt_tokens_details.cached_tokens).toBe(0);

    const messages = [
      { role: 'user' as const, content: 'hi' },
      { role: 'assistant' as const, content: reply },
      { role: 'user' as const, content: 'more' },
    ];
    const stream = await engine.chat.completions.create({ messages, stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]!.delta.content ?? '').join('');
    expect(text).toBe(fakeReply('more', 2).join(''));
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
    expect((await engine.memory()).memory?.compressionSteps).toBe(2);

    // messages that do not extend the conversation rebuild it: nothing reused
    const rebuilt = await engine.chat.completions.create({
      messages: [
        { role: 'user', content: 'other' },
        { role: 'assistant', content: 'x' },
        { role: 'user', content: 'y' },
      ],
      max_tokens: 3,
    });
    expect(rebuilt.choices[0]!.message.content).toBe(fakeReply('y', 2).slice(0, 3).join(''));
    expect(rebuilt.choices[0]!.finish_reason).toBe('length');
    expect(rebuilt.usage.prompt_tokens_details.cached_tokens).toBe(0);

    expectCode(
      await rejection(engine.chat.completions.create({ messages: [{ role: 'assistant', content: 'x' }] })),
      'INVALID_INPUT',
    );
  });

  it('dispose stops a streaming reply, frees everything and ends the worker', async () => {
    const { engine, loader, workers } = await start(5);
    const chat = engine.chat();
    const stream = chat.send('a reply that is still streaming when the engine goes away');
    await stream.next();
    const [ledger, error] = await Promise.all([engine.dispose(), rejection(collect(stream))]);
    expectCode(error, 'ABORTED');
    expect(ledger?.byOwner).toEqual({ gpu: 256 });
    expect(loader.cores[0]!.disposed).toBe(true);
    expect(workers.started[0]!.terminated).toBe(true);
    expectCode(await rejection(engine.memory()), 'INVALID_INPUT');
    expect(() => engine.chat()).toThrow(/disposed/);
  });
});
