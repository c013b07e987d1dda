// The window policy (StreamingLLM): sinks plus the recent tokens, positions by cache index, kept keys
// re-rotated on eviction. The GPU session equals an independent CPU implementation of the same algorithm
// (src/reference/llama.ts's ReferenceSession with its cache edited between steps).
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { ropeInvFreq } from '../../src/model/rope-freq.js';
import { argmax, ReferenceSession, rope } from '../../src/reference/llama.js';
import { testGpu } from '../helpers/gpu.js';
import { gpuModel, relError } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';

const SINKS = 2;
const WINDOW = 12; // the sinks included: 2 sinks and 10 recent tokens
const CHUNK = 4;

describe('window policy', () => {
  it('equals the CPU StreamingLLM reference through evictions (greedy ids and logits)', async () => {
    const gpu = await testGpu();
    const ref = randomModel({ hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 60, seed: 41 });
    ref.config.eosTokenIds = [];
    const c = ref.config;
    const model = await gpuModel(gpu, ref, 'f32');
    const s = new Session(model, {
      capacity: 16,
      memory: { policy: 'window', sinks: SINKS, window: WINDOW, evictChunk: CHUNK },
    });
    const prompt = [3, 4, 5, 6, 7, 8];
    const stream = s.generate(prompt, { maxNewTokens: 30, temperature: 0 });
    let next = await stream.next();
    while (!next.done) next = await stream.next();
    const gpuIds = next.value.ids;

    // CPU: the same eviction rule on a reference cache
    const cpu = new ReferenceSession(ref);
    const invFreq = ropeInvFreq(c.headDim, c.ropeTheta, c.ropeScaling);
    const fed: number[] = [];
    let evicted = 0;
    const feed = (id: number) => {
      if (fed.length + 1 > WINDOW) {
        const e = Math.min(fed.length - SINKS, Math.max(fed.length + 1 - WINDOW, CHUNK));
        for (const layer of cpu.cache) {
          layer.keys.splice(SINKS, e);
          layer.values.splice(SINKS, e);
          for (const k of layer.keys.slice(SINKS)) rope(k, c.numKvHeads, c.headDim, invFreq, -e);
        }
        fed.splice(SINKS, e);
        evicted += e;
      }
      const logits = cpu.step(id, fed.length); // position = cache index
      fed.push(id);
      return logits;
    };
    let logits: Float64Array = new Float64Array();
    for (const id of prompt) logits = feed(id);
    const cpuIds: number[] = [];
    for (let i = 0; i < 30; i++) {
      const id = argmax(logits);
      cpuIds.push(id);
      if (i < 29) logits = feed(id);
    }
    expect(evicted).toBeGreaterThanOrEqual(3 * CHUNK);
    expect(gpuIds).toEqual(cpuIds);
    expect(s.cachedIds).toEqual(fed);

    // one more token through both: logits agree after all the evictions and re-rotations
    const [row] = await s.logits([...s.cachedIds, s.pendingId!]);
    const want = Float32Array.from(feed(cpuIds.at(-1)!));
    expect(relError(row!, want)).toBeLessThan(1e-4);
    expect(s.stats().tokensEvicted).toBe(evicted);
    expect(s.stats().slots).toMatchObject({ sink: SINKS, memory: 0, working: fed.length - SINKS });
    s.dispose();
    gpu.releaseOwner(model.owner);
  });
});
