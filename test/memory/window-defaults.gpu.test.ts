// README's library example on the embedded model: stories260K's cache holds 512 tokens, and both
// `{ policy: 'window', window: 512 }` and `{ policy: 'window' }` run on it, keeping 4 sinks that the
// stats report as sink slots (issue 11, items 6 and 11).
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { loadModel } from '../../src/model/load.js';
import { testGpu } from '../helpers/gpu.js';
import { storiesGolden, storiesModelDir } from '../helpers/stories.js';

describe('window policy on stories260K (a 512-token cache)', () => {
  it.each([{ policy: 'window', window: 512 } as const, { policy: 'window' } as const])('%o', async (memory) => {
    const gpu = await testGpu();
    const model = await loadModel(gpu, storiesModelDir(), { format: 'f32' });
    const session = new Session(model, { memory });
    expect(session.memory).toEqual({ policy: 'window', sinks: 4, window: 512, evictChunk: 63 });
    const { prompt_ids } = storiesGolden();
    const stream = session.generate(prompt_ids, { maxNewTokens: 12, temperature: 0 });
    while (!(await stream.next()).done);
    const used = session.cachedIds.length;
    expect(session.stats().slots).toEqual({ sink: 4, memory: 0, working: used - 4, capacity: 512 });
    session.dispose();
    gpu.releaseOwner(model.owner);
  });
});
