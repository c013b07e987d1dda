// Adapters on the GPU: uploadAdapter's tensors read back equal to the CPU form and are accounted in the
// ledger; an ungated adapter merged at load (mergeLoraReader) gives the reference's ungated-LoRA logits.
import { describe, expect, it } from 'vitest';
import { mergeLoraReader, uploadAdapter } from '../../src/adapters/gpu.js';
import { adapterFingerprint } from '../../src/adapters/tensors.js';
import type { Adapter } from '../../src/adapters/types.js';
import { Session } from '../../src/engine/session.js';
import { isCcmemError } from '../../src/errors.js';
import { readF32, type Tensor } from '../../src/gpu/tensor.js';
import { uploadWeights } from '../../src/model/weights.js';
import { referenceForward } from '../../src/reference/llama.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { rng, testGpu } from '../helpers/gpu.js';
import { relError } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';

const ref = randomModel({
  hidden: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 12,
  intermediate: 40,
  vocab: 50,
  seed: 3,
});
let owners = 0;

async function expectReadBack(t: Tensor | undefined, shape: number[], values: Float32Array) {
  expect(t?.shape).toEqual(shape);
  expect(t?.format).toBe('f32');
  expect(await readF32(await testGpu(), t!)).toEqual(values);
}

describe('uploadAdapter', () => {
  it('a ccm adapter: every LoRA pair and the COMP rows read back exactly, tagged weights under the owner', async () => {
    const gpu = await testGpu();
    const adapter = randomAdapter(ref.config, { rank: 3, alpha: 12, compTokens: 2, mode: 'merge', seed: 1 });
    const owner = `adapter-test${++owners}`;
    const before = gpu.ledger.snapshot().current;
    const g = await uploadAdapter(gpu, adapter, owner);
    expect(g).toMatchObject({ rank: 3, scale: 4, owner, fingerprint: adapterFingerprint(adapter) });
    expect(g.layers.length).toBe(2);
    const width = { q: 48, k: 24, v: 24, o: 32 }; // heads × head dim, KV heads × head dim, hidden
    const input = { q: 32, k: 32, v: 32, o: 48 };
    for (let l = 0; l < 2; l++) {
      for (const t of ['q', 'k', 'v', 'o'] as const) {
        const cpu = adapter.lora.get(`${l}.${t}`)!;
        await expectReadBack(g.layers[l]![t]?.a, [3, input[t]], cpu.a);
        await expectReadBack(g.layers[l]![t]?.b, [width[t], 3], cpu.b);
      }
    }
    await expectReadBack(g.embeddings, [4, 32], adapter.embeddings);
    const mine = gpu.ledger.entries().filter((e) => e.owner === owner);
    expect(mine.length).toBe(2 * 4 * 2 + 1);
    expect(mine.every((e) => e.tag === 'weights')).toBe(true);
    const values = [...adapter.lora.values()].reduce((n, p) => n + p.a.length + p.b.length, adapter.embeddings.length);
    expect(gpu.ledger.snapshot().current - before).toBe(values * 4);
    gpu.releaseOwner(owner);
    expect(gpu.ledger.snapshot().current).toBe(before);
  });

  it('a sentinel adapter uploads only its CL/CR rows: its LoRA is merged into the weights instead', async () => {
    const gpu = await testGpu();
    const adapter = randomAdapter(ref.config, { method: 'sentinel', rank: 2, compTokens: 1, seed: 2 });
    const owner = `adapter-test${++owners}`;
    const g = await uploadAdapter(gpu, adapter, owner);
    expect(g).toMatchObject({ rank: 0, scale: 0, layers: [] });
    await expectReadBack(g.embeddings, [2, 32], adapter.embeddings);
    expect(gpu.ledger.entries().filter((e) => e.owner === owner).length).toBe(1);
    gpu.releaseOwner(owner);
  });

  it('an inconsistent adapter is refused before anything is allocated', async () => {
    const gpu = await testGpu();
    const adapter: Adapter = randomAdapter(ref.config, { rank: 2, compTokens: 2, seed: 3 });
    adapter.embeddings = new Float32Array(3 * 32);
    const before = gpu.ledger.snapshot().current;
    const e = await uploadAdapter(gpu, adapter, 'never').catch((err: unknown) => err);
    expect(isCcmemError(e, 'MODEL_FORMAT'), String(e)).toBe(true);
    expect(gpu.ledger.snapshot().current).toBe(before);
  });
});

describe('mergeLoraReader at load', () => {
  it('the GPU forward of the merged model equals the reference with the LoRA open on every row', async () => {
    const gpu = await testGpu();
    const adapter = randomAdapter(ref.config, { method: 'sentinel', rank: 4, alpha: 8, compTokens: 1, seed: 4 });
    const owner = `adapter-test${++owners}`;
    const read = mergeLoraReader(async (name) => ref.tensors.get(name)!, adapter);
    const weights = await uploadWeights(gpu, ref.config, read, { format: 'f32', owner });
    const model = { gpu, id: owner, config: ref.config, weights, tokenizer: undefined, owner };
    const r = rng(5);
    const ids = Array.from({ length: 9 }, () => Math.floor(r() * 50));
    const session = new Session(model, { capacity: 16, chunk: 16, logitRows: 9 });
    const got = await session.logits(ids, { all: true });
    const { config, lora, embeddings } = adapter;
    const want = referenceForward(ref, ids, {
      adapter: { rank: config.rank, alpha: config.alpha, lora, embeddings },
      gates: ids.map(() => 1),
    });
    got.forEach((row, t) => {
      expect(relError(row, want.subarray(t * 50, (t + 1) * 50)), `position ${t}`).toBeLessThan(1e-4);
    });
    // and the LoRA matters: without it the logits differ clearly
    const base = referenceForward(ref, ids);
    expect(relError(base.subarray(8 * 50), want.subarray(8 * 50))).toBeGreaterThan(1e-2);
    session.dispose();
    gpu.releaseOwner(owner);
  });
});
