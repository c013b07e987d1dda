// PyTorch's recurrent CCM inference (train/ccm_recurrent.py) and ccmem's agree on adapters trained by
// train/ccm.py: a real chat's turns are compressed one by one, then the question's final logits are
// compared (relative max-norm error below 1e-4), with the memory holding the same number of slots.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { memoryForAdapter } from '../../src/memory/policy.js';
import { loadModelWithAdapter } from '../../src/model/load-adapter.js';
import { relDiff } from '../helpers/checks.js';
import { testGpu } from '../helpers/gpu.js';
import { pipelineData, readJson } from './pipeline.js';

interface LogitsCase {
  chunks: number[][];
  input: number[];
  logits: number[];
  slots: number;
}

let dir: string;
beforeAll(() => {
  dir = pipelineData();
}, 300_000);

describe('CCM: PyTorch recurrent inference vs ccmem on trained adapters', () => {
  for (const mode of ['concat', 'merge'] as const) {
    it(`ccm-${mode}`, async () => {
      const want = readJson<Record<string, LogitsCase>>(dir, 'logits.json')[mode]!;
      const gpu = await testGpu();
      const loaded = await loadModelWithAdapter(gpu, join(dir, 'model'), join(dir, mode), { format: 'f32' });
      const memory = memoryForAdapter({ policy: `ccm-${mode}` }, loaded.adapter?.config);
      const session = new Session(loaded.model, { capacity: 256, memory, adapter: loaded.gpuAdapter });
      for (const chunk of want.chunks) {
        await session.feed(chunk);
        await session.endTurn();
      }
      expect(session.stats().slots.sink + session.stats().slots.memory).toBe(want.slots);
      const [got] = await session.logits(want.input);
      expect(relDiff(got!, want.logits)).toBeLessThan(1e-4);
      gpu.releaseOwner(loaded.model.owner);
    });
  }
});
