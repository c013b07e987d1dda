// createEngine publishes every chat's memory statistics on the global devtools hook by itself (as React
// does for its DevTools), so a <ccm-memory-panel hook> shows a page that only calls createEngine: one
// sample per finished turn with its turn number and speed, a stopped turn marked stopped, an import
// starting the chat over, resets when a chat or the engine goes; and nothing with { devtools: false }.
// The client over a MessageChannel around the fake core (no GPU; the hook lives on Node's globalThis).
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type EngineOptions } from '../../src/client/engine.js';
import { type HookEvent, installHook } from '../../src/devtools/hook.js';
import { isCcmemError } from '../../src/errors.js';
import { fakeLoader } from './fake-core.js';
import { fakeWorkers } from './fake-worker.js';

const engines: Engine[] = [];
const unsubscribes: (() => void)[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.dispose()));
  for (const off of unsubscribes.splice(0)) off();
});

/** Every hook event from now on whose id starts with `prefix`. */
function watchHook(prefix: string): HookEvent[] {
  const seen: HookEvent[] = [];
  let live = false;
  unsubscribes.push(
    installHook().subscribe((e) => {
      if (live && e.engine.startsWith(prefix)) seen.push(e);
    }),
  );
  live = true; // (not the replay of earlier tests' events)
  return seen;
}

async function start(options: Partial<EngineOptions> = {}) {
  const engine = await createEngine({ model: 'm/x', worker: fakeWorkers(fakeLoader(5)), ...options });
  engines.push(engine);
  return engine;
}

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const d of stream) out.push(d);
  return out;
}

const summary = (e: HookEvent) =>
  e.type === 'reset'
    ? `${e.engine} reset`
    : `${e.engine} turn ${e.sample.turn}${e.sample.stopped ? ' stopped' : ''}${e.sample.speed ? ' speed' : ''}`;

describe('createEngine on the devtools hook', () => {
  it('publishes each chat after every turn, under its own id, and resets it when it goes', async () => {
    const seen = watchHook('pub-a');
    const engine = await start({ devtools: { id: 'pub-a' } });
    const chat = engine.chat();
    expect(seen).toEqual([]); // nothing before the first message
    await collect(chat.send('one'));
    // the sample is on the hook when the reply's stream ends, and it is engine.memory() of the chat
    const first = seen.at(-1);
    const { memory, ledger } = await engine.memory(chat);
    expect(first).toMatchObject({ type: 'sample', engine: 'pub-a.1', sample: { memory, turn: 1 } });
    expect(first?.type === 'sample' && first.sample.ledger.current).toBe(ledger.current);
    await collect(chat.send('two'));

    // a stopped reply: marked stopped, numbered as the turn it was, with the memory of before it
    const controller = new AbortController();
    const stopped = (async () => {
      for await (const _ of chat.send('three and more words', { signal: controller.signal })) controller.abort();
    })();
    expect(isCcmemError(await stopped.catch((e: unknown) => e), 'ABORTED')).toBe(true);
    const last = seen.at(-1);
    expect(last?.type === 'sample' && last.sample.memory).toEqual(seen[1]?.type === 'sample' && seen[1].sample.memory);

    // an import is another conversation: the chat starts over at the turns it holds
    const bytes = await chat.exportMemory();
    const other = engine.chat();
    await collect(other.send('hello'));
    await other.importMemory(bytes);
    await chat.dispose();
    await engine.dispose();
    expect(seen.map(summary)).toEqual([
      'pub-a.1 turn 1 speed',
      'pub-a.1 turn 2 speed',
      'pub-a.1 turn 3 stopped',
      'pub-a.2 turn 1 speed',
      'pub-a.2 reset',
      'pub-a.2 turn 2',
      'pub-a.1 reset',
      'pub-a.2 reset',
    ]);
  });

  it('numbers the engines of a page by default, and publishes the completions facade', async () => {
    const seen = watchHook('ccmem-');
    const a = await start();
    const b = await start();
    await collect(a.chat().send('x'));
    await collect(b.chat().send('y'));
    await b.chat.completions.create({ messages: [{ role: 'user', content: 'z' }] });
    const ids = seen.map((e) => e.engine);
    const n = Number(/^ccmem-(\d+)\.1$/.exec(ids[0] ?? '')?.[1]);
    expect(ids).toEqual([`ccmem-${n}.1`, `ccmem-${n + 1}.1`, `ccmem-${n + 1}.completions`]);
    expect(seen.map(summary).at(-1)).toBe(`ccmem-${n + 1}.completions turn 1 speed`);
  });

  it('publishes nothing with { devtools: false }, and refuses an id the hook would drop', async () => {
    const seen = watchHook('');
    const engine = await start({ devtools: false });
    const chat = engine.chat();
    await collect(chat.send('quiet'));
    await chat.importMemory(await chat.exportMemory());
    await engine.chat.completions.create({ messages: [{ role: 'user', content: 'z' }] });
    await engine.dispose();
    expect(seen).toEqual([]);
    const e = await start({ devtools: { id: 'has spaces' } }).catch((err: unknown) => err);
    expect(isCcmemError(e, 'INVALID_INPUT')).toBe(true);
  });
});
