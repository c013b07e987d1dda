// The generation loop: greedy equals the CPU reference, seeds reproduce, stop strings, EOS, limits,
// cancellation and the errors a caller can trigger, with the ledger back to zero after dispose.
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { loadModel } from '../../src/model/load.js';
import { referenceGreedy } from '../../src/reference/llama.js';
import { typedError } from '../helpers/checks.js';
import { testGpu } from '../helpers/gpu.js';
import { gpuModel } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';
import { storiesGolden, storiesModelDir } from '../helpers/stories.js';

const SMALL = { hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 53, seed: 11, maxPositions: 128 };

async function collect(stream: ReturnType<Session['generate']>) {
  const events = [];
  let next = await stream.next();
  while (!next.done) {
    events.push(next.value);
    next = await stream.next();
  }
  return { events, result: next.value };
}

const expectCode = async (p: Promise<unknown>, code: string) => expect((await typedError(p)).code).toBe(code);

describe('Session.generate', () => {
  it('greedy decoding equals the CPU reference for 64 tokens', async () => {
    const gpu = await testGpu();
    const ref = randomModel(SMALL);
    ref.config.eosTokenIds = []; // run the full 64 tokens
    const model = await gpuModel(gpu, ref, 'f32');
    const session = new Session(model, { capacity: 80, chunk: 4 });
    const prompt = [3, 14, 15, 9, 26, 5];
    const { result } = await collect(session.generate(prompt, { maxNewTokens: 64, temperature: 0 }));
    expect(result.ids).toEqual(referenceGreedy(ref, prompt, 64));
    expect(result.usage.completionTokens).toBe(64);
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('is reproducible with a seed, and the seed matters', async () => {
    const gpu = await testGpu();
    const ref = randomModel(SMALL);
    ref.config.eosTokenIds = [];
    const model = await gpuModel(gpu, ref, 'f32');
    const session = new Session(model, { capacity: 64 });
    const opts = { maxNewTokens: 24, temperature: 1.5, topK: 20, topP: 0.95, repetitionPenalty: 1.1 };
    const a = await collect(session.generate([1, 2, 3], { ...opts, seed: 7 }));
    const b = await collect(session.generate([1, 2, 3], { ...opts, seed: 7 }));
    const c = await collect(session.generate([1, 2, 3], { ...opts, seed: 8 }));
    expect(b.result.ids).toEqual(a.result.ids);
    expect(c.result.ids).not.toEqual(a.result.ids);
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('stops at EOS without emitting it as text', async () => {
    const gpu = await testGpu();
    const ref = randomModel(SMALL);
    ref.config.eosTokenIds = [];
    const greedy = referenceGreedy(ref, [4, 5, 6], 12);
    ref.config.eosTokenIds = [greedy[5]!]; // the 6th generated token (its first occurrence) is now EOS
    const first = greedy.indexOf(greedy[5]!);
    const model = await gpuModel(gpu, ref, 'f32');
    const session = new Session(model, { capacity: 32 });
    const { events, result } = await collect(session.generate([4, 5, 6], { maxNewTokens: 12, temperature: 0 }));
    expect(result.finishReason).toBe('eos');
    expect(result.ids).toEqual(greedy.slice(0, first + 1));
    expect(events.length).toBe(first);
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('refuses bad prompts and options with INVALID_INPUT, and a busy session', async () => {
    const gpu = await testGpu();
    const model = await gpuModel(gpu, randomModel(SMALL), 'f32');
    const session = new Session(model, { capacity: 16 });
    const run = (ids: number[], o = {}) => collect(session.generate(ids, o));
    await expectCode(run([]), 'INVALID_INPUT');
    await expectCode(run([1, 53]), 'INVALID_INPUT');
    await expectCode(run([1, -1]), 'INVALID_INPUT');
    await expectCode(run([1, 2.5]), 'INVALID_INPUT');
    await expectCode(run(Array(17).fill(1)), 'INVALID_INPUT');
    await expectCode(run([1], { temperature: -1 }), 'INVALID_INPUT');
    await expectCode(run([1], { topP: 0 }), 'INVALID_INPUT');
    await expectCode(run([1], { maxNewTokens: 0 }), 'INVALID_INPUT');
    const busy = session.generate([1, 2], { maxNewTokens: 4 });
    await busy.next();
    await expectCode(run([1, 2]), 'INVALID_INPUT');
    await busy.return(undefined as never);
    const after = await run([1, 2], { maxNewTokens: 2 });
    expect(after.result.ids.length).toBe(2);
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('an aborted request throws ABORTED and the session stays usable', async () => {
    const gpu = await testGpu();
    const ref = randomModel(SMALL);
    ref.config.eosTokenIds = [];
    const model = await gpuModel(gpu, ref, 'f32');
    const session = new Session(model, { capacity: 64 });
    const controller = new AbortController();
    const stream = session.generate([1, 2, 3], { maxNewTokens: 40, signal: controller.signal });
    await stream.next();
    await stream.next();
    controller.abort();
    await expectCode(stream.next(), 'ABORTED');
    const { result } = await collect(session.generate([1, 2, 3], { maxNewTokens: 5, temperature: 0 }));
    expect(result.ids).toEqual(referenceGreedy(ref, [1, 2, 3], 5));
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('stop strings end the text before the stop string (stories260K tokenizer)', async () => {
    const gpu = await testGpu();
    const golden = storiesGolden();
    const model = await loadModel(gpu, storiesModelDir(), { format: 'f32' });
    const session = new Session(model, { capacity: 128 });
    const { events, result } = await collect(
      session.generate(golden.prompt_ids, { maxNewTokens: 60, temperature: 0, stop: ['Lily.'] }),
    );
    expect(result.finishReason).toBe('stop');
    const full = golden.text.slice(golden.prompt.length);
    expect(result.text).toBe(full.slice(0, full.indexOf('Lily.')));
    expect(events.map((e) => e.delta).join('')).toBe(result.text);
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('dispose returns every buffer to the ledger', async () => {
    const gpu = await testGpu();
    const before = gpu.ledger.snapshot();
    const model = await gpuModel(gpu, randomModel(SMALL), 'f16p');
    const session = new Session(model, { capacity: 32 });
    await collect(session.generate([1, 2, 3], { maxNewTokens: 3 }));
    const during = gpu.ledger.snapshot();
    expect(during.byTag.weights.current).toBeGreaterThan(before.byTag.weights.current);
    expect(during.byTag.kv.current - before.byTag.kv.current).toBe(2 * 2 * 32 * 2 * 8 * 4); // 2 layers x K,V
    session.dispose();
    gpu.releaseOwner(model.owner);
    const after = gpu.ledger.snapshot();
    expect(after.byOwner[session.owner]).toBeUndefined();
    expect(after.byOwner[model.owner]).toBeUndefined();
    expect(after.byTag.kv.current).toBe(before.byTag.kv.current);
    expect(after.byTag.weights.current).toBe(before.byTag.weights.current);
  });
});
