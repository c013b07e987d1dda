// The client and the worker's API object with the real WebGPU core (Dawn in Node) over a MessageChannel:
// stories260K chats whose exports continue identically in another chat (full, window, and ccm-concat
// with a seeded random adapter; the browser test imports into another engine), aborted turns that leave
// no trace, the facade's prefix reuse, and dispose returning the ledger to the device's own buffers.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAdapter } from '../../src/adapters/files.js';
import { createEngine, type Engine, type EngineOptions } from '../../src/client/engine.js';
import { nodeGpu } from '../../src/gpu/node.js';
import { loadConfig } from '../../src/model/config.js';
import { openSource } from '../../src/model/source.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { loadGpuCore } from '../../src/worker/gpu-core.js';
import { storiesModelDir } from '../helpers/stories.js';
import { fakeWorkers } from './fake-worker.js';

const TURNS = ['Hi, I am Ada.', 'Tell me a story about a cat.', 'What was my name?'];
const SEND = { maxNewTokens: 8, temperature: 0 };

const engines: Engine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.dispose()));
});

async function open(options: Omit<EngineOptions, 'model' | 'worker'> = {}): Promise<Engine> {
  const gpu = await nodeGpu();
  const worker = fakeWorkers((init, onProgress) => loadGpuCore(init, onProgress, { gpu }));
  const engine = await createEngine({ model: storiesModelDir(), capacity: 256, ...options, worker });
  engines.push(engine);
  return engine;
}

async function reply(stream: AsyncGenerator<string, { text: string }>): Promise<string> {
  const pieces: string[] = [];
  let step = await stream.next();
  for (; !step.done; step = await stream.next()) pieces.push(step.value);
  expect(pieces.join('')).toBe(step.value.text);
  return step.value.text;
}

function ccmAdapterDir(): Promise<string> {
  return loadConfig(openSource(storiesModelDir())).then((config) => {
    const dir = mkdtempSync(join(tmpdir(), 'ccmem-adapter-'));
    const files = writeAdapter(randomAdapter(config, { rank: 4, compTokens: 2, seed: 5 }));
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    return dir;
  });
}

describe('engine API on the WebGPU core (stories260K)', () => {
  // one engine (one device: pipelines compile once per device, seconds on SwiftShader) per policy
  let full: Engine;
  beforeAll(async () => {
    full = await open();
  });

  const policies = [
    ['full', undefined],
    ['window', { memory: { policy: 'window' as const, window: 24, sinks: 4 } }],
    ['ccm-concat', { memory: { policy: 'ccm-concat' as const } }],
  ] as const;
  it.each(policies)('%s: an exported chat continues identically in another chat', async (policy, options) => {
    const extra = policy === 'ccm-concat' ? { adapter: await ccmAdapterDir() } : {};
    const engine = options ? await open({ ...options, ...extra }) : full;
    expect(engine.info.policy).toBe(policy);
    const chat = engine.chat();
    for (const text of TURNS.slice(0, 2)) expect((await reply(chat.send(text, SEND))).length).toBeGreaterThan(0);
    const stats = (await engine.memory(chat)).memory!;
    if (policy === 'ccm-concat') expect(stats.slots.memory).toBe(4); // two turns, n = 2 COMP slots each
    if (policy === 'window') expect(stats.tokensEvicted).toBeGreaterThan(0);
    const copy = engine.chat();
    await copy.importMemory(await chat.exportMemory());
    const expected = await reply(chat.send(TURNS[2]!, SEND));
    expect(await reply(copy.send(TURNS[2]!, SEND))).toBe(expected);
    expect((await engine.memory(copy)).memory).toEqual((await engine.memory(chat)).memory);
    if (engine !== full) await engine.dispose();
  });

  it('an aborted turn leaves no trace in the conversation', async () => {
    const a = full.chat({ system: 'A story.' });
    const b = full.chat({ system: 'A story.' });
    await reply(a.send(TURNS[0]!, SEND));
    await reply(b.send(TURNS[0]!, SEND));
    const controller = new AbortController();
    let pieces = 0;
    await expect(
      (async () => {
        for await (const _ of a.send(TURNS[1]!, { ...SEND, signal: controller.signal })) {
          if (++pieces === 2) controller.abort();
        }
      })(),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await reply(a.send(TURNS[2]!, SEND))).toBe(await reply(b.send(TURNS[2]!, SEND)));
  });

  it('the facade continues a conversation its messages extend, as a chat does, and rebuilds otherwise', async () => {
    const create = full.chat.completions.create.bind(full.chat.completions);
    const ask = { max_tokens: 8, temperature: 0 };
    const first = await create({ messages: [{ role: 'user', content: TURNS[0]! }], ...ask });
    const messages = [
      { role: 'user' as const, content: TURNS[0]! },
      { role: 'assistant' as const, content: first.choices[0]!.message.content },
      { role: 'user' as const, content: TURNS[1]! },
    ];
    const stream = await create({ messages, ...ask, stream: true });
    let extended = '';
    for await (const chunk of stream) extended += chunk.choices[0]!.delta.content ?? '';
    const chat = full.chat();
    expect(await reply(chat.send(TURNS[0]!, SEND))).toBe(first.choices[0]!.message.content);
    expect(await reply(chat.send(TURNS[1]!, SEND))).toBe(extended);
    expect((await chat.lastResult())!.usage.reusedTokens).toBeGreaterThan(0);

    // the same messages again do not extend it (it ends with the streamed reply): rebuilt, twice alike
    const again = await create({ messages, ...ask });
    expect(again.usage.prompt_tokens_details.cached_tokens).toBe(0);
    await create({ messages: [{ role: 'user', content: 'Something else.' }], max_tokens: 2, temperature: 0 });
    const rebuilt = await create({ messages, ...ask });
    expect(rebuilt.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(rebuilt.choices[0]!.message.content).toBe(again.choices[0]!.message.content);
  });

  it('dispose frees every buffer but the device’s own', async () => {
    const during = (await full.memory()).ledger;
    expect(during.byTag.weights.current).toBeGreaterThan(0);
    expect(during.byTag.kv.current).toBeGreaterThan(0);
    const after = await full.dispose();
    expect(Object.keys(after!.byOwner)).toEqual(['gpu']);
    for (const tag of ['weights', 'kv', 'memory', 'staging'] as const) expect(after!.byTag[tag].current, tag).toBe(0);
  });
});
