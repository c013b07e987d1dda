// PyTorch's incremental sentinel inference (train/sentinel_infer.py) and ccmem's sentinel policy agree on
// an adapter trained by train/sentinel.py: a real chat's turns are fed one by one, each turn's finished
// sentences compressed at its end (ccmem's defaults), then the question's final logits are compared
// (relative max-norm error below 1e-4), with the same live slots.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { memoryForAdapter } from '../../src/memory/policy.js';
import { loadModelWithAdapter } from '../../src/model/load-adapter.js';
import { relDiff } from '../helpers/checks.js';
import { testGpu } from '../helpers/gpu.js';
import { pipelineData, readJson } from './pipeline.js';

interface SentinelLogits {
  chunks: number[][];
  input: number[];
  logits: number[];
  slots: number;
  spans: [number, number][];
}

let dir: string;
beforeAll(() => {
  dir = pipelineData();
}, 300_000);

describe('sentinel: PyTorch incremental inference vs ccmem on a trained adapter', () => {
  it('compresses the same spans and gives the same logits', async () => {
    const want = readJson<Record<string, SentinelLogits>>(dir, 'logits.json').sentinel!;
    const gpu = await testGpu();
    const loaded = await loadModelWithAdapter(gpu, join(dir, 'model'), join(dir, 'sentinel'), { format: 'f32' });
    const tokenizer = loaded.model.tokenizer!;
    const sentenceEnds = (id: number) => /[.!?\n]$/.test(tokenizer.decode([id], { skipSpecialTokens: true }));
    const memory = memoryForAdapter({ policy: 'sentinel', sentenceEnds }, loaded.adapter?.config);
    const session = new Session(loaded.model, { capacity: 512, memory, adapter: loaded.gpuAdapter });
    for (const chunk of want.chunks) {
      await session.feed(chunk);
      await session.endTurn();
    }
    expect(want.spans.length).toBeGreaterThan(3);
    expect(session.compressedSpans.map((s) => [s.start, s.end])).toEqual(want.spans);
    const stats = session.stats();
    expect(stats.slots.sink + stats.slots.memory + stats.slots.working).toBe(want.slots);
    const [got] = await session.logits([...session.cachedIds, ...want.input]);
    expect(relDiff(got!, want.logits)).toBeLessThan(1e-4);
    gpu.releaseOwner(loaded.model.owner);
  });
});
