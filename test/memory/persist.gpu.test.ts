// exportMemory / importMemory: a restored session continues with identical logits; corrupt or mismatched
// bytes are refused with INVALID_INPUT and leave the importing session as it was.
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { typedError } from '../helpers/checks.js';
import { testGpu } from '../helpers/gpu.js';
import { gpuModel } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';

const OPTS = { hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 60, seed: 31, maxPositions: 256 };

async function refused(p: Promise<unknown>, message: RegExp) {
  const e = await typedError(p);
  expect(e.code).toBe('INVALID_INPUT');
  expect(e.message).toMatch(message);
}

describe('memory export and import', () => {
  for (const memory of [
    { policy: 'full' as const },
    { policy: 'window' as const, sinks: 2, window: 12, evictChunk: 3 },
  ]) {
    it(`${memory.policy}: round-trips to identical logits`, async () => {
      const gpu = await testGpu();
      const ref = randomModel(OPTS);
      ref.config.eosTokenIds = [];
      const model = await gpuModel(gpu, ref, 'f32');
      const a = new Session(model, { capacity: 32, memory });
      const stream = a.generate([1, 5, 9, 13, 17, 21, 25, 29, 33], { maxNewTokens: 10, temperature: 0 });
      while (!(await stream.next()).done);
      const bytes = await a.exportMemory();
      const b = new Session(model, { capacity: 32, memory });
      await b.importMemory(bytes);
      expect(b.stats()).toEqual(a.stats());
      expect(b.cachedIds).toEqual(a.cachedIds);
      expect(b.pendingId).toBe(a.pendingId);
      const next = [...a.cachedIds, a.pendingId!, 7, 8];
      const [la] = await a.logits(next);
      const [lb] = await b.logits(next);
      expect(Array.from(lb!)).toEqual(Array.from(la!));
      a.dispose();
      b.dispose();
      gpu.releaseOwner(model.owner);
    });
  }

  it('refuses corrupt, truncated and mismatched data and changes nothing', async () => {
    const gpu = await testGpu();
    const model = await gpuModel(gpu, randomModel(OPTS), 'f32');
    const a = new Session(model, { capacity: 32 });
    await a.feed([1, 2, 3, 4, 5]);
    const bytes = await a.exportMemory();
    const b = new Session(model, { capacity: 32 });
    await b.feed([9, 9]);
    const before = { stats: b.stats(), ids: [...b.cachedIds] };

    const flipped = bytes.slice();
    flipped[40] = (flipped[40] ?? 0) ^ 1;
    await refused(b.importMemory(flipped), /checksum/);
    await refused(b.importMemory(bytes.subarray(0, 20)), /too short|checksum/);
    const other = await gpuModel(gpu, randomModel({ ...OPTS, hidden: 48 }), 'f32');
    const c = new Session(other, { capacity: 32 });
    await refused(c.importMemory(bytes), /made for model/);
    const windowed = new Session(model, { capacity: 32, memory: { policy: 'window', window: 16 } });
    await refused(windowed.importMemory(bytes), /memory/);
    const small = new Session(model, { capacity: 4 });
    await refused(small.importMemory(bytes), /holds 5 slots/);

    expect({ stats: b.stats(), ids: [...b.cachedIds] }).toEqual(before);
    for (const s of [a, b, c, windowed, small]) s.dispose();
    gpu.releaseOwner(model.owner);
    gpu.releaseOwner(other.owner);
  });
});
