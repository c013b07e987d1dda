// createEngine hands every loading option to the worker (EngineInit), the first one and a restarted one
// alike: a field the client forgot to copy would be silently ignored (as revision and remoteHost were).
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/client/engine.js';
import type { EngineInit } from '../../src/worker/protocol.js';
import { fakeLoader } from './fake-core.js';
import { fakeWorkers } from './fake-worker.js';

describe('createEngine options', () => {
  it('reach the worker unchanged, after a restart too', async () => {
    const init: Required<EngineInit> = {
      model: 'org/model',
      revision: 'v1.2',
      remoteHost: 'https://hf-mirror.example',
      adapter: 'org/adapter',
      memory: { policy: 'window', window: 64 },
      capacity: 128,
      format: 'f16',
      cache: { cache: 'memory' },
    };
    const loader = fakeLoader();
    const workers = fakeWorkers(loader);
    const engine = await createEngine({ ...init, worker: workers, devtools: false });
    const chat = engine.chat();
    for await (const _ of chat.send('hi'));
    workers.started[0]!.crash('gone');
    for await (const _ of chat.send('again'));
    expect(loader.cores.map((c) => c.init)).toEqual([init, init]);
    await engine.dispose();
  });
});
