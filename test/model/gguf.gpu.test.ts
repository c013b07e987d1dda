// GGUF files loaded by ccmem (loadModel on a .gguf path, the CLI's and createEngine's path): random GQA
// models written as Q8_0 and Q4_0 (and a Q4_K/Q6_K mix) give logits within 1e-3 relative of the f64
// reference forward over the dequantized weights at every position (f32 weights; f16 within f16's
// rounding); the real stories260K written to GGUF (F32, SentencePiece vocabulary with "▁" pieces) chats
// through createEngine exactly as its Hugging Face folder does; a missing file is MODEL_FORMAT.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/client/engine.js';
import { Session } from '../../src/engine/session.js';
import { isCcmemError } from '../../src/errors.js';
import { nodeGpu } from '../../src/gpu/node.js';
import { isQuantMatrix } from '../../src/kernels/matmul_q.js';
import { type ModelTensors, writeGguf } from '../../src/model/gguf.js';
import { loadModel } from '../../src/model/load.js';
import { dequantize, quantizeQ4_0, quantizeQ8_0 } from '../../src/model/quant.js';
import { referenceLogits } from '../../src/reference/llama.js';
import { loadGpuCore } from '../../src/worker/gpu-core.js';
import { kQuantModel, storiesGguf } from '../helpers/ggufModel.js';
import { testGpu } from '../helpers/gpu.js';
import { relError } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';
import { storiesModelDir } from '../helpers/stories.js';
import { fakeWorkers } from '../worker/fake-worker.js';

const work = mkdtempSync(join(tmpdir(), 'ccmem-gguf-'));
const IDS = [1, 17, 42, 7, 99, 3, 250, 64, 12, 5, 180, 33, 2, 77, 150, 8, 260, 31, 90];

function save(name: string, bytes: Uint8Array): string {
  const path = join(work, name);
  writeFileSync(path, bytes);
  return path;
}

/** The model as the file holds it: each matrix through its quantizer and back. */
function dequantized(m: ModelTensors, type: 'Q8_0' | 'Q4_0'): ModelTensors {
  const quantize = type === 'Q8_0' ? quantizeQ8_0 : quantizeQ4_0;
  const tensors = new Map(
    [...m.tensors].map(
      ([name, t]) =>
        [name, name.endsWith('norm.weight') || /bias$/.test(name) ? t : dequantize(type, quantize(t))] as const,
    ),
  );
  return { config: m.config, tensors };
}

async function expectLogits(path: string, ref: ModelTensors, format: 'f32' | 'auto', tolerance: number) {
  const gpu = await testGpu();
  const model = await loadModel(gpu, path, { format });
  const session = new Session(model, { capacity: 32, chunk: 8, logitRows: 8 });
  const got = await session.logits(IDS, { all: true });
  const want = referenceLogits(ref, IDS);
  const V = ref.config.vocabSize;
  got.forEach((row, t) => {
    expect(relError(row, want.subarray(t * V, (t + 1) * V)), `position ${t}`).toBeLessThan(tolerance);
  });
  session.dispose();
  gpu.releaseOwner(model.owner);
  return model;
}

describe('GGUF models on the GPU vs the f64 reference over the dequantized weights', () => {
  const opts = { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 96, vocab: 300, seed: 11 };
  for (const [dtype, type] of [
    ['q8_0', 'Q8_0'],
    ['q4_0', 'Q4_0'],
  ] as const) {
    for (const tie of [false, true]) {
      it(`${type}, GQA 4:2${tie ? ', tied' : ''}: f32 weights to 1e-3 at every position`, async () => {
        const m = randomModel({ ...opts, tie, seed: opts.seed + (tie ? 1 : 0) });
        const model = await expectLogits(
          save(`${dtype}-${tie}.gguf`, writeGguf(m, { dtype })),
          dequantized(m, type),
          'f32',
          1e-3,
        );
        expect(model.config.tieWordEmbeddings).toBe(tie);
        expect(model.tokenizer?.vocabSize).toBe(300);
      });
    }
  }

  for (const [dtype, type] of [
    ['q8_0', 'Q8_0'],
    ['q4_0', 'Q4_0'],
  ] as const) {
    it(`${type}, the default format: layer matrices stay in their blocks, the embedding becomes f16`, async () => {
      const m = randomModel({ ...opts, seed: 13 });
      const path = save(`${dtype}-auto.gguf`, writeGguf(m, { dtype }));
      const model = await expectLogits(path, dequantized(m, type), 'auto', 1e-3);
      const layer = model.weights.layers[0]!;
      for (const w of [layer.q, layer.k, layer.v, layer.o, layer.gateUp, layer.down])
        expect(isQuantMatrix(w)).toBe(true);
      expect(model.weights.embed.format).not.toBe('f32');
    });
  }

  it('the ledger counts the blocks: layer matrices of a Q4_0 file take 4.5 bits a weight, Q8_0 8.5', async () => {
    const gpu = await testGpu();
    const m = randomModel({ ...opts, hidden: 128, intermediate: 256, heads: 4, kvHeads: 2, seed: 16 });
    const { hiddenSize: d, intermediateSize: f, numLayers, headDim } = m.config;
    const weights = numLayers * (2 * d * 4 * headDim + 2 * d * 2 * headDim + 3 * d * f); // q, o; k, v; gate, up, down
    const bytes = async (dtype: 'q8_0' | 'q4_0', format: 'auto' | 'f16p') => {
      const model = await loadModel(gpu, save(`ledger-${dtype}.gguf`, writeGguf(m, { dtype })), { format });
      const owned = gpu.ledger.snapshot().byOwner[model.owner]!;
      gpu.releaseOwner(model.owner);
      return owned;
    };
    for (const [dtype, bits] of [
      ['q8_0', 8.5],
      ['q4_0', 4.5],
    ] as const) {
      // all else (embedding, norms, rope table) is the same in both loads
      expect((await bytes(dtype, 'f16p')) - (await bytes(dtype, 'auto'))).toBe((weights * (16 - bits)) / 8);
    }
  });

  it('Q4_K and Q6_K (a Q4_K_M-like mix), GQA, head dim 64: f32 weights to 1e-3', async () => {
    const { bytes, config, want } = kQuantModel({ ...opts, hidden: 256, intermediate: 512, headDim: 64, seed: 14 });
    await expectLogits(
      save('k-quants.gguf', bytes),
      { config: { ...config, architecture: 'llama' }, tensors: want },
      'f32',
      1e-3,
    );
  });

  it('a hub file org/name/FILE.gguf is read with Range requests from the hub host', async () => {
    const bytes = writeGguf(randomModel({ ...opts, seed: 15 }), { dtype: 'q8_0' });
    const urls = new Set<string>();
    const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = String(input);
      urls.add(`${init?.method ?? 'GET'} ${url}`);
      if (url !== 'https://hub.test/org/name/resolve/main/m.gguf') return new Response('', { status: 404 });
      if (init?.method === 'HEAD') return new Response(null, { headers: { 'content-length': String(bytes.length) } });
      const [, a, b] = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get('range') ?? '')!;
      const body = bytes.slice(Number(a), Number(b) + 1);
      const range = `bytes ${a}-${b}/${bytes.length}`;
      return new Response(body, { status: 206, headers: { 'content-range': range } });
    };
    const gpu = await testGpu();
    const model = await loadModel(gpu, 'org/name/m.gguf', { remoteHost: 'https://hub.test', fetch, format: 'f32' });
    expect(model.id).toBe('org/name/m.gguf');
    expect(model.config.numKvHeads).toBe(2);
    expect([...urls].every((u) => u.endsWith('https://hub.test/org/name/resolve/main/m.gguf'))).toBe(true);
    gpu.releaseOwner(model.owner);
  });

  it('a missing file is MODEL_FORMAT', async () => {
    const gpu = await testGpu();
    const e = await loadModel(gpu, join(work, 'absent.gguf')).catch((x: unknown) => x);
    expect(isCcmemError(e, 'MODEL_FORMAT')).toBe(true);
  });
});

describe('stories260K as a GGUF file through createEngine', () => {
  const engines: Engine[] = [];
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.dispose()));
  });
  const open = async (model: string) => {
    const gpu = await nodeGpu();
    const worker = fakeWorkers((init, onProgress) => loadGpuCore(init, onProgress, { gpu }));
    const engine = await createEngine({ model, capacity: 128, worker });
    engines.push(engine);
    return engine;
  };

  it('replies exactly as the Hugging Face folder of the same model', async () => {
    const [fromGguf, fromFolder] = [
      await open(save('stories260K.gguf', await storiesGguf())),
      await open(storiesModelDir()),
    ];
    const replies = [];
    for (const engine of [fromGguf, fromFolder]) {
      const chat = engine.chat();
      let text = '';
      for await (const delta of chat.send('Once upon a time', { maxNewTokens: 12, temperature: 0 })) text += delta;
      replies.push(text);
    }
    expect(replies[0]!.length).toBeGreaterThan(10);
    expect(replies[0]).toBe(replies[1]);
  });
});
