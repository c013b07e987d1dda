// The max_position_embeddings guard (ccm.md section 8): ccm-concat, ccm-merge and sentinel number positions
// by the whole text, so a long conversation overruns the model's positions while its cache stays small. A
// forward that would pass the limit fails with INVALID_INPUT before anything changes, and generation stops
// there ('length'); with onPositionLimit 'stream' a ccm session switches to streaming and goes on (its
// numerics against a CPU reference are in stream.gpu.test.ts).
import { describe, expect, it } from 'vitest';
import { uploadAdapter } from '../../src/adapters/gpu.js';
import { Session } from '../../src/engine/session.js';
import type { MemoryOptions } from '../../src/memory/policy.js';
import { randomAdapter, referenceAdapter } from '../../src/reference/random-adapter.js';
import { typedError } from '../helpers/checks.js';
import { rng, testGpu } from '../helpers/gpu.js';
import { gpuAdapter, gpuModel } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';

const V = 50;
const MAX = 40;
const ref = randomModel({
  hidden: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediate: 48,
  vocab: V,
  seed: 91,
  maxPositions: MAX,
});
ref.config.eosTokenIds = [];
const r = rng(92);
const text = (n: number) => Array.from({ length: n }, () => 3 + Math.floor(r() * (V - 3)));

async function refused(p: Promise<unknown>, position: number) {
  const e = await typedError(p);
  expect(e.code).toBe('INVALID_INPUT');
  expect(e.message).toMatch(new RegExp(`position ${position} would exceed max_position_embeddings ${MAX}`));
}

async function ccmSession(memory: MemoryOptions) {
  const gpu = await testGpu();
  const model = await gpuModel(gpu, ref, 'f32');
  const adapter = gpuAdapter(
    gpu,
    referenceAdapter(randomAdapter(ref.config, { rank: 4, alpha: 8, compTokens: 4, seed: 93 })),
    ref.config,
  );
  const session = new Session(model, { capacity: MAX, memory, adapter });
  // four turns of 8 tokens: text positions 0..31, memory slots at 8, 9, 16, 17, ...
  for (let t = 0; t < 4; t++) {
    await session.feed(text(8));
    await session.endTurn();
  }
  const done = () => {
    session.dispose();
    gpu.releaseOwner(model.owner);
    gpu.releaseOwner(adapter.owner);
  };
  return { session, done };
}

describe('max_position_embeddings guard', () => {
  for (const policy of ['ccm-concat', 'ccm-merge'] as const) {
    it(`${policy}: a forward past the limit is refused and changes nothing`, async () => {
      const { session, done } = await ccmSession({ policy, compTokens: 2 });
      const before = session.stats();
      expect(before.nextPosition).toBe(32);
      await refused(session.feed(text(9)), 40); // positions 32..40
      await session.feed(text(8)); // 32..39 fit
      const fed = session.stats();
      await refused(session.endTurn(), 41); // its COMP rows would sit at 40 and 41
      expect(session.stats()).toEqual(fed);
      expect(fed.slots.working).toBe(8);
      done();
    });
  }

  it('sentinel: positions count compressed spans; generation stops at the limit, then feeding fails', async () => {
    const gpu = await testGpu();
    const model = await gpuModel(gpu, ref, 'f32');
    const adapter = await uploadAdapter(
      gpu,
      randomAdapter(ref.config, { method: 'sentinel', rank: 4, compTokens: 1, seed: 94 }),
      'limits-sentinel',
    );
    const session = new Session(model, { capacity: MAX, memory: { policy: 'sentinel' }, adapter });
    await session.feed(text(30));
    await session.compressSpan(0, 9);
    await session.compressSpan(10, 19);
    expect(session.stats().slots).toEqual({ sink: 0, memory: 2, working: 10, capacity: MAX });
    const stream = session.generate([...session.cachedIds, 7], { maxNewTokens: 50, temperature: 0 });
    let next = await stream.next();
    while (!next.done) next = await stream.next();
    expect(next.value.finishReason).toBe('length');
    expect(next.value.ids.length).toBe(MAX - 31 + 1); // fed at 31..39, the last one sampled and pending
    expect(session.stats().nextPosition).toBe(MAX);
    expect(session.used).toBe(22); // 10 + 2 <CR> slots + 10 fed: far from the 40 slots
    await refused(session.feed([7]), 40);
    session.dispose();
    gpu.releaseOwner(model.owner);
    gpu.releaseOwner(adapter.owner);
  });

  for (const policy of ['ccm-concat', 'ccm-merge'] as const) {
    it(`${policy} with onPositionLimit 'stream' goes on as ccm-stream at cache-index positions`, async () => {
      const memory = { policy, compTokens: 2, onPositionLimit: 'stream', window: 24, chunk: 8, maxMemory: 4 } as const;
      const { session, done } = await ccmSession(memory);
      const stream = session.generate([...text(8)], { maxNewTokens: 60, temperature: 0 });
      let next = await stream.next();
      while (!next.done) next = await stream.next();
      expect(next.value.ids.length).toBe(60); // 100 text positions in all, on a model of 40
      const stats = session.stats();
      expect(stats.compressionSteps).toBeGreaterThan(4 + 3); // the ccm turns, then several streaming compressions
      expect(stats.nextPosition).toBeLessThanOrEqual(24);
      expect(stats.nextPosition).toBe(session.used);
      expect(session.memorySlots.map((m) => m.position)).toEqual([0, 1, 2, 3]);
      await session.endTurn(); // streaming ignores turns
      expect(session.stats()).toEqual(stats);
      done();
    });
  }
});
