// Regression cases found in review: a ccm turn that fills the cache must still compress (its pending token
// and n COMP rows are reserved), also when the prefill chunk equals n, and when the session falls back to
// streaming at the position limit; a stop string leaves the cache as well as the text.
import { describe, expect, it } from 'vitest';
import { Session, type SessionOptions } from '../../src/engine/session.js';
import { loadModel } from '../../src/model/load.js';
import { randomAdapter, referenceAdapter } from '../../src/reference/random-adapter.js';
import { testGpu } from '../helpers/gpu.js';
import { gpuAdapter, gpuModel } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';
import { storiesGolden, storiesModelDir } from '../helpers/stories.js';

async function ccmSession(options: Omit<SessionOptions, 'adapter'>, maxPositions = 256) {
  const gpu = await testGpu();
  const ref = randomModel({
    hidden: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 48,
    vocab: 60,
    seed: 8,
    maxPositions,
  });
  ref.config.eosTokenIds = [];
  const model = await gpuModel(gpu, ref, 'f32');
  const adapter = gpuAdapter(
    gpu,
    referenceAdapter(randomAdapter(ref.config, { rank: 4, alpha: 8, compTokens: 2, seed: 8 })),
    ref.config,
  );
  const session = new Session(model, { ...options, adapter });
  const done = () => {
    session.dispose();
    gpu.releaseOwner(model.owner);
    gpu.releaseOwner(adapter.owner);
    expect(gpu.gpuError).toBeUndefined();
  };
  return { session, done };
}

async function generate(session: Session, ids: number[], maxNewTokens: number, stop?: string[]) {
  const stream = session.generate(ids, { maxNewTokens, temperature: 0, stop });
  let next = await stream.next();
  while (!next.done) next = await stream.next();
  return next.value;
}

describe('the end of a ccm turn', () => {
  it('a reply that fills the cache stops early enough to be compressed, twice in a row', async () => {
    const { session, done } = await ccmSession({ capacity: 24, memory: { policy: 'ccm-concat', compTokens: 2 } });
    for (const turn of [1, 2]) {
      const r = await generate(session, [3, 4, 5, 6], 100);
      expect(r.finishReason).toBe('length');
      await session.endTurn({ feedPending: true });
      expect(session.stats().slots.memory).toBe(2 * turn);
      expect(session.stats().slots.working).toBe(0);
    }
    done();
  });

  it('a prefill chunk of n rows still fits the pending token plus the COMP rows', async () => {
    const { session, done } = await ccmSession({
      capacity: 32,
      chunk: 2,
      memory: { policy: 'ccm-merge', compTokens: 2 },
    });
    const r = await generate(session, [3, 4, 5], 3);
    expect(r.finishReason).toBe('length');
    await session.endTurn({ feedPending: true });
    expect(session.stats().slots.memory).toBe(2);
    done();
  });

  it('falls back to streaming at the position limit without overrunning a full cache', async () => {
    const { session, done } = await ccmSession(
      {
        capacity: 40,
        memory: { policy: 'ccm-concat', compTokens: 2, onPositionLimit: 'stream', window: 30, chunk: 8 },
      },
      40,
    );
    for (let turn = 0; turn < 3; turn++) {
      await generate(session, [...session.cachedIds, 3, 4, 5], 30);
      await session.endTurn({ feedPending: true });
    }
    expect(session.stats().nextPosition).toBeLessThanOrEqual(40);
    const again = await generate(session, [...session.cachedIds, 7, 8], 5);
    expect(again.ids.length).toBe(5);
    done();
  });
});

describe('stop strings', () => {
  it('leave neither the text nor the cache with the stop string', async () => {
    const gpu = await testGpu();
    const golden = storiesGolden();
    const model = await loadModel(gpu, storiesModelDir(), { format: 'f32' });
    const session = new Session(model, { capacity: 128 });
    const r = await generate(session, golden.prompt_ids, 60, ['Lily.']);
    expect(r.finishReason).toBe('stop');
    expect(session.pendingId).toBeUndefined();
    const cachedText = model.tokenizer!.decode(session.cachedIds.slice(golden.prompt_ids.length), {
      skipSpecialTokens: true,
    });
    expect(r.text.startsWith(cachedText)).toBe(true);
    expect(cachedText).not.toContain('Lily.');
    session.dispose();
    gpu.releaseOwner(model.owner);
  });
});
