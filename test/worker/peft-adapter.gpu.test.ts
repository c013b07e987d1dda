// createEngine with an official-layout PEFT adapter (issue 11, item 2): the memory option's ccm policy
// gives the mode (and COMP count) the adapter does not record; where no policy says it, the typed error stays.
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/client/engine.js';
import { isCcmemError } from '../../src/errors.js';
import { nodeGpu } from '../../src/gpu/node.js';
import { loadConfig } from '../../src/model/config.js';
import { openSource } from '../../src/model/source.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { loadGpuCore } from '../../src/worker/gpu-core.js';
import type { EngineInit } from '../../src/worker/protocol.js';
import { peftFiles, writeFolder } from '../helpers/peftAdapter.js';
import { storiesModelDir } from '../helpers/stories.js';
import { fakeWorkers } from './fake-worker.js';

const engines: Engine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.dispose()));
});

async function peftAdapterDir(mode: 'concat' | 'merge'): Promise<string> {
  const config = await loadConfig(openSource(storiesModelDir()));
  return writeFolder(peftFiles(randomAdapter(config, { rank: 4, compTokens: 2, mode, seed: 11 })));
}

describe('createEngine with a PEFT CCM adapter', () => {
  it.each(['concat', 'merge'] as const)(
    'memory ccm-%s gives the mode: two turns go into its COMP slots',
    async (mode) => {
      const gpu = await nodeGpu();
      const worker = fakeWorkers((init, onProgress) => loadGpuCore(init, onProgress, { gpu }));
      const policy = `ccm-${mode}` as const;
      const engine = await createEngine({
        model: storiesModelDir(),
        adapter: await peftAdapterDir(mode),
        memory: { policy, compTokens: 2 },
        capacity: 256,
        worker,
      });
      engines.push(engine);
      expect(engine.info.policy).toBe(policy);
      const chat = engine.chat();
      for (const text of ['Hi, I am Ada.', 'Tell me a story.']) {
        for await (const _ of chat.send(text, { maxNewTokens: 4, temperature: 0 })) {
          // streamed deltas: only the finished turn matters here
        }
      }
      const stats = (await engine.memory(chat)).memory!;
      expect(stats.policy).toBe(policy);
      expect(stats.slots.memory).toBe(mode === 'concat' ? 4 : 2);
    },
  );

  it('without a ccm policy nothing says the mode: MODEL_FORMAT from the load', async () => {
    const gpu = await nodeGpu();
    const init: EngineInit = {
      model: storiesModelDir(),
      adapter: await peftAdapterDir('concat'),
      memory: { policy: 'full' },
    };
    const error = await loadGpuCore(init, () => undefined, { gpu }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCcmemError(error, 'MODEL_FORMAT'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/does not record its mode/);
  });
});
