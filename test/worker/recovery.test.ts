// Crash recovery that cannot succeed: a restarted worker that dies again while it restores the chats is
// not restarted once more (that would loop for ever on a save whose restore kills the worker); the
// engine reports WORKER_LOST once and every later call rejects with it. Fake workers over a
// MessageChannel (fake-worker.ts) around the fake core.
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/client/engine.js';
import { type CcmemError, isCcmemError } from '../../src/errors.js';
import { fakeLoader, fakeReply } from './fake-core.js';
import { fakeWorkers } from './fake-worker.js';

const engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.dispose()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const d of stream) out.push(d);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<CcmemError> {
  const e = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
  expect(isCcmemError(e), String(e)).toBe(true);
  return e as CcmemError;
}

describe('crash recovery that fails', () => {
  it('gives up with WORKER_LOST when the restarted worker dies while restoring the chats', async () => {
    const errors: CcmemError[] = [];
    const loader = fakeLoader();
    // every worker after the first dies when it is asked to restore a chat
    const workers = fakeWorkers(loader, (n) => n > 0);
    const engine = await createEngine({ model: 'm/x', worker: workers, onError: (e) => errors.push(e) });
    engines.push(engine);
    const a = engine.chat();
    const b = engine.chat();
    await collect(a.send('one'));
    await collect(b.send('two'));

    workers.started[0]!.crash('out of memory');
    const refused = await rejection(collect(a.send('three')));
    expect(refused.code).toBe('WORKER_LOST');
    expect(refused.message).toContain('died again while it was reloading the model and restoring the chats');
    expect(refused.message).toContain('out of memory while restoring a chat');

    // no restart loop: one restart was tried, and nothing more happens afterwards
    await sleep(50);
    expect(workers.started).toHaveLength(2);
    expect(workers.started[1]!.terminated).toBe(true);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringContaining('crashed: out of memory'),
      expect.stringContaining('crashed: out of memory while restoring a chat'),
      refused.message,
    ]);
    expect(errors.every((e) => e.code === 'WORKER_LOST')).toBe(true);
    // every call now gets the same typed error, a new chat too
    expect(await rejection(collect(b.send('four')))).toBe(refused);
    expect(await rejection(engine.memory())).toBe(refused);
    expect(() => engine.chat()).toThrow(refused);
  });

  it('still restarts a worker that dies after a restart that restored everything', async () => {
    const errors: CcmemError[] = [];
    const workers = fakeWorkers(fakeLoader());
    const engine = await createEngine({ model: 'm/x', worker: workers, onError: (e) => errors.push(e) });
    engines.push(engine);
    const chat = engine.chat();
    await collect(chat.send('one'));
    for (const n of [0, 1]) {
      workers.started[n]!.crash(`crash ${n}`);
      expect(await collect(chat.send(`after ${n}`))).toEqual(fakeReply(`after ${n}`, n + 2));
    }
    expect(workers.started).toHaveLength(3);
    expect(errors.map((e) => e.code)).toEqual(['WORKER_LOST', 'WORKER_LOST']);
  });

  it('gives up the same way when the restarted worker dies while it loads the model', async () => {
    const errors: CcmemError[] = [];
    const workers = fakeWorkers(fakeLoader());
    const engine = await createEngine({ model: 'm/x', worker: workers, onError: (e) => errors.push(e) });
    engines.push(engine);
    const chat = engine.chat();
    await collect(chat.send('one'));
    workers.started[0]!.crash('first');
    workers.started[1]!.crash('second, before its model was loaded');
    const refused = await rejection(collect(chat.send('two')));
    expect(refused.message).toContain('died again');
    await sleep(50);
    expect(workers.started).toHaveLength(2);
    expect(errors.map((e) => e.code)).toEqual(['WORKER_LOST', 'WORKER_LOST', 'WORKER_LOST']);
  });
});
