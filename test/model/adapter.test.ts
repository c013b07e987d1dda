// Adapters on the CPU: the project format round trip, the official PEFT import (both embedding key
// names), every mismatch as a typed error, seeded random adapters, merging an ungated LoRA into W.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadAdapter, writeAdapter } from '../../src/adapters/files.js';
import { mergeLoraReader } from '../../src/adapters/gpu.js';
import { impliedByMemory, type PeftImportOptions } from '../../src/adapters/peft.js';
import { adapterFingerprint, adapterTensors, checkAdapter } from '../../src/adapters/tensors.js';
import type { AdapterMethod, CompMode } from '../../src/adapters/types.js';
import { type Adapter, LORA_TARGETS, loraKey } from '../../src/adapters/types.js';
import { isCcmemError } from '../../src/errors.js';
import { roundToF16 } from '../../src/gpu/half.js';
import { memoryForAdapter } from '../../src/memory/policy.js';
import { type TensorToWrite, writeSafetensors } from '../../src/model/safetensors.js';
import { memorySource } from '../../src/model/source.js';
import { layerTensorNames, type ModelConfig } from '../../src/model/types.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { randomArray } from '../helpers/gpu.js';
import { type RandomModelOptions, randomModel } from '../helpers/randomModel.js';

const SMALL: RandomModelOptions = { hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed: 1 };
const model = (o: Partial<RandomModelOptions> = {}): ModelConfig => randomModel({ ...SMALL, ...o }).config;

async function failure(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, none was thrown');
}

async function expectError(p: Promise<unknown> | (() => unknown), code: string, message: RegExp) {
  const e = await failure(p);
  expect(isCcmemError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).toBe(code);
  expect((e as Error).message).toMatch(message);
}

function expectSameAdapter(got: Adapter, want: Adapter) {
  expect(got.config).toEqual(want.config);
  expect([...got.lora.keys()].sort()).toEqual([...want.lora.keys()].sort());
  for (const [key, pair] of want.lora) {
    expect(got.lora.get(key)!.a, `${key} A`).toEqual(pair.a);
    expect(got.lora.get(key)!.b, `${key} B`).toEqual(pair.b);
  }
  expect(got.embeddings).toEqual(want.embeddings);
}

/** The project files of `adapter`, with the config JSON and the tensor list open to edits. */
function projectFiles(
  adapter: Adapter,
  edit: { config?: (c: Record<string, unknown>) => void; tensors?: (t: TensorToWrite[]) => TensorToWrite[] } = {},
) {
  const config = JSON.parse(writeAdapter(adapter)['adapter_config.json'] as string);
  edit.config?.(config);
  const tensors = adapterTensors(adapter).map((t) => ({
    name: t.name,
    dtype: 'F32' as const,
    shape: t.shape,
    data: t.data,
  }));
  return memorySource({
    'adapter_config.json': JSON.stringify(config),
    'adapter.safetensors': writeSafetensors(edit.tensors ? edit.tensors(tensors) : tensors),
  });
}

describe('project format: writeAdapter -> loadAdapter', () => {
  it('round-trips every method and mode exactly, and the result fits its model', async () => {
    const variants: { method: AdapterMethod; mode?: CompMode; compTokens: number; sink?: boolean }[] = [
      { method: 'ccm', mode: 'concat', compTokens: 2 },
      { method: 'ccm', mode: 'merge', compTokens: 3, sink: true },
      { method: 'sentinel', compTokens: 1 },
      { method: 'lora', compTokens: 0 },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...variants),
        fc.record({
          kvHeads: fc.constantFrom(1, 2, 4),
          groups: fc.integer({ min: 1, max: 3 }),
          headDim: fc.constantFrom(4, 8),
          layers: fc.integer({ min: 1, max: 3 }),
          rank: fc.integer({ min: 1, max: 5 }),
          alpha: fc.constantFrom(8, 16, 32),
          seed: fc.nat(1000),
        }),
        async (variant, o) => {
          const heads = o.kvHeads * o.groups;
          const m = model({ hidden: 24, heads, kvHeads: o.kvHeads, headDim: o.headDim, layers: o.layers });
          const adapter = randomAdapter(m, { ...variant, rank: o.rank, alpha: o.alpha, seed: o.seed });
          const loaded = await loadAdapter(memorySource(writeAdapter(adapter)));
          expectSameAdapter(loaded, adapter);
          checkAdapter(loaded, m);
          expect(adapterFingerprint(loaded)).toBe(adapterFingerprint(adapter));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('reads F16 files and records separators', async () => {
    const m = model();
    const adapter = randomAdapter(m, { rank: 4, compTokens: 2, seed: 3 });
    adapter.config.separators = { user: [5, 6], assistant: [7] };
    const src = projectFiles(adapter, { tensors: (ts) => ts.map((t) => ({ ...t, dtype: 'F16' })) });
    const loaded = await loadAdapter(src);
    expect(loaded.config.separators).toEqual({ user: [5, 6], assistant: [7] });
    expect(loaded.lora.get('1.o')!.b).toEqual(roundToF16(adapter.lora.get('1.o')!.b));
    expect(loaded.embeddings).toEqual(roundToF16(adapter.embeddings));
  });
});

/** An official-style PEFT folder: adapter_config.json with PEFT keys and a state dict with PEFT names. */
function peftFolder(
  m: ModelConfig,
  o: { rank: number; rows: number; seed: number; embedKey?: string; file?: string; extra?: Record<string, unknown> },
) {
  const lora = new Map<string, { a: Float32Array; b: Float32Array }>();
  const tensors: TensorToWrite[] = [];
  const q = m.numHeads * m.headDim;
  const kv = m.numKvHeads * m.headDim;
  const io = { q: [q, m.hiddenSize], k: [kv, m.hiddenSize], v: [kv, m.hiddenSize], o: [m.hiddenSize, q] } as const;
  let seed = o.seed * 100;
  for (let i = 0; i < m.numLayers; i++) {
    for (const t of LORA_TARGETS) {
      const [out, inDim] = io[t];
      const a = roundToF16(randomArray(o.rank * inDim, seed++));
      const b = roundToF16(randomArray(out * o.rank, seed++));
      lora.set(loraKey(i, t), { a, b });
      const prefix = `base_model.model.model.layers.${i}.self_attn.${t}_proj`;
      tensors.push({ name: `${prefix}.lora_A.weight`, dtype: 'F16', shape: [o.rank, inDim], data: a });
      tensors.push({ name: `${prefix}.lora_B.weight`, dtype: 'F16', shape: [out, o.rank], data: b });
    }
  }
  const embeddings = randomArray(o.rows * m.hiddenSize, seed);
  if (o.rows > 0) {
    const name = `base_model.model.model.embed_tokens.${o.embedKey ?? 'comp_embeddings'}.weight`;
    tensors.push({ name, dtype: 'F32', shape: [o.rows, m.hiddenSize], data: embeddings });
  }
  const config = {
    base_model_name_or_path: 'llama-tiny',
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: o.rank,
    lora_alpha: 16,
    lora_dropout: 0.05,
    target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    ...o.extra,
  };
  const files: Record<string, string | Uint8Array> = {
    'adapter_config.json': JSON.stringify(config),
    [o.file ?? 'model.safetensors']: writeSafetensors(tensors, { format: 'pt' }),
  };
  return { files, lora, embeddings };
}

describe('official PEFT import', () => {
  const m = model({ layers: 3 });

  it('comp_embeddings (concat, options) maps every key and infers hidden size and layers', async () => {
    const { files, lora, embeddings } = peftFolder(m, { rank: 4, rows: 2, seed: 1 });
    const a = await loadAdapter(memorySource(files), { mode: 'concat', separators: { turn: [3] } });
    expect(a.config).toMatchObject({
      method: 'ccm',
      rank: 4,
      alpha: 16,
      targets: ['q', 'k', 'v', 'o'],
      compTokens: 2,
      mode: 'concat',
      sink: false,
      separators: { turn: [3] },
      embeddingRows: 2,
      baseModel: { hiddenSize: 32, numLayers: 3, name: 'llama-tiny' },
    });
    for (const [key, pair] of lora) {
      expect(a.lora.get(key)!.a).toEqual(pair.a);
      expect(a.lora.get(key)!.b).toEqual(pair.b);
    }
    expect(a.embeddings).toEqual(embeddings);
    checkAdapter(a, m);
    // and it converts to the project format unchanged
    expectSameAdapter(await loadAdapter(memorySource(writeAdapter(a))), a);
  });

  it('gist_embeddings (merge, sink, from a "ccmem" section) in adapter_model.safetensors', async () => {
    const { files, embeddings } = peftFolder(m, {
      rank: 2,
      rows: 4,
      seed: 2,
      embedKey: 'gist_embeddings',
      file: 'adapter_model.safetensors',
      extra: { ccmem: { mode: 'merge', sink: true, baseModel: { vocabSize: 40 } } },
    });
    const a = await loadAdapter(memorySource(files));
    expect(a.config).toMatchObject({ method: 'ccm', mode: 'merge', compTokens: 2, sink: true, embeddingRows: 4 });
    expect(a.config.baseModel.vocabSize).toBe(40);
    expect(a.embeddings).toEqual(embeddings);
    checkAdapter(a, m);
  });

  it('options override the "ccmem" section', async () => {
    const { files } = peftFolder(m, { rank: 2, rows: 4, seed: 3, extra: { ccmem: { mode: 'merge' } } });
    const a = await loadAdapter(memorySource(files), { mode: 'concat' });
    expect(a.config).toMatchObject({ mode: 'concat', compTokens: 4 });
  });

  it('without COMP rows it is a plain LoRA (merged at load)', async () => {
    const { files } = peftFolder(m, { rank: 2, rows: 0, seed: 4 });
    const a = await loadAdapter(memorySource(files));
    expect(a.config).toMatchObject({ method: 'lora', compTokens: 0, embeddingRows: 0 });
    expect(a.config.mode).toBeUndefined();
    expect(a.embeddings.length).toBe(0);
  });

  describe('mode and COMP count from the memory policy it is loaded for (issue 11, item 2)', () => {
    const released = (rows: number, extra?: Record<string, unknown>) =>
      memorySource(peftFolder(m, { rank: 2, rows, seed: 8, extra }).files);

    it('ccm-concat, ccm-merge and ccm-stream say the mode; a given COMP count and sink are taken too', async () => {
      const concat = await loadAdapter(released(2), {}, impliedByMemory({ policy: 'ccm-concat', compTokens: 2 }));
      expect(concat.config).toMatchObject({ method: 'ccm', mode: 'concat', compTokens: 2, sink: false });
      const merge = await loadAdapter(released(4), {}, impliedByMemory({ policy: 'ccm-merge', sink: true }));
      expect(merge.config).toMatchObject({ mode: 'merge', compTokens: 2, sink: true, embeddingRows: 4 });
      const stream = await loadAdapter(released(3), {}, impliedByMemory({ policy: 'ccm-stream' }));
      expect(stream.config).toMatchObject({ mode: 'concat', compTokens: 3 });
      checkAdapter(concat, m);
      // what the policy implies is then what memoryForAdapter checks the policy against
      expect(memoryForAdapter({ policy: 'ccm-concat' }, concat.config)).toMatchObject({ compTokens: 2 });
    });

    it('a COMP count the rows contradict is refused', async () => {
      const implied = impliedByMemory({ policy: 'ccm-concat', compTokens: 3 });
      await expectError(loadAdapter(released(2), {}, implied), 'MODEL_FORMAT', /embeddingRows/);
    });

    it('what the options or the "ccmem" section say wins, so a mismatch with the policy is reported', async () => {
      const implied = impliedByMemory({ policy: 'ccm-concat' });
      const section = await loadAdapter(released(4, { ccmem: { mode: 'merge' } }), {}, implied);
      expect(section.config.mode).toBe('merge');
      expect(() => memoryForAdapter({ policy: 'ccm-concat' }, section.config)).toThrow(/trained for ccm-merge/);
      const options = await loadAdapter(released(4), { mode: 'merge' }, implied);
      expect(options.config.mode).toBe('merge');
    });

    it('other policies say nothing: the error stays where nothing records the mode', async () => {
      for (const policy of ['full', 'window', 'sentinel']) expect(impliedByMemory({ policy })).toEqual({});
      expect(impliedByMemory(undefined)).toEqual({});
      const implied = impliedByMemory({ policy: 'window' });
      await expectError(loadAdapter(released(2), {}, implied), 'MODEL_FORMAT', /does not record its mode/);
    });

    it('a plain LoRA stays a LoRA, and a project-format adapter ignores the policy', async () => {
      const implied = impliedByMemory({ policy: 'ccm-concat', compTokens: 2 });
      const lora = await loadAdapter(released(0), {}, implied);
      expect(lora.config).toMatchObject({ method: 'lora', compTokens: 0 });
      expect(lora.config.mode).toBeUndefined();
      const project = randomAdapter(m, { rank: 2, compTokens: 2, mode: 'merge', seed: 9 });
      const loaded = await loadAdapter(memorySource(writeAdapter(project)), {}, implied);
      expect(loaded.config.mode).toBe('merge');
    });
  });

  const peftErrors: [string, Parameters<typeof peftFolder>[1], PeftImportOptions, string, RegExp][] = [
    ['no mode for a CCM adapter', { rank: 2, rows: 2, seed: 5 }, {}, 'MODEL_FORMAT', /does not record its mode/],
    [
      'fan_in_fan_out',
      { rank: 2, rows: 2, seed: 5, extra: { fan_in_fan_out: true } },
      { mode: 'concat' },
      'UNSUPPORTED_MODEL',
      /fan_in_fan_out/,
    ],
    [
      'an MLP target',
      { rank: 2, rows: 2, seed: 5, extra: { target_modules: ['q_proj', 'gate_proj'] } },
      { mode: 'concat' },
      'UNSUPPORTED_MODEL',
      /"gate_proj" is not supported/,
    ],
    [
      'a non-LoRA PEFT type',
      { rank: 2, rows: 2, seed: 5, extra: { peft_type: 'PREFIX_TUNING' } },
      {},
      'UNSUPPORTED_MODEL',
      /peft_type "PREFIX_TUNING"/,
    ],
    [
      'a base model hidden size the tensors contradict',
      { rank: 2, rows: 2, seed: 5 },
      { mode: 'concat', baseModel: { hiddenSize: 64 } },
      'MODEL_FORMAT',
      /lora_A\.weight: shape \[2, 32\], expected \[2 \(rank\), 64 \(hidden size\)\]/,
    ],
    [
      'merge with an odd number of rows',
      { rank: 2, rows: 3, seed: 5 },
      { mode: 'merge' },
      'MODEL_FORMAT',
      /"compTokens" must be a non-negative integer, found 1.5/,
    ],
  ];
  for (const [name, folder, options, code, message] of peftErrors) {
    it(`refuses ${name}`, async () => {
      await expectError(loadAdapter(memorySource(peftFolder(m, folder).files), options), code, message);
    });
  }

  it('refuses a file with both comp_embeddings and gist_embeddings', async () => {
    const { files } = peftFolder(m, { rank: 2, rows: 2, seed: 6 });
    const both = writeSafetensors([
      {
        name: 'base_model.model.model.embed_tokens.comp_embeddings.weight',
        dtype: 'F32',
        shape: [1, 32],
        data: new Float32Array(32),
      },
      {
        name: 'base_model.model.model.embed_tokens.gist_embeddings.weight',
        dtype: 'F32',
        shape: [1, 32],
        data: new Float32Array(32),
      },
    ]);
    await expectError(
      loadAdapter(memorySource({ ...files, 'model.safetensors': both }), { mode: 'concat' }),
      'MODEL_FORMAT',
      /holds both .*comp_embeddings.* and .*gist_embeddings/,
    );
  });

  it('names the conversion for a pickle-only folder', async () => {
    const { files } = peftFolder(m, { rank: 2, rows: 2, seed: 7 });
    const pickle = { 'adapter_config.json': files['adapter_config.json']!, 'pytorch_model.bin': new Uint8Array(8) };
    await expectError(
      loadAdapter(memorySource(pickle)),
      'UNSUPPORTED_MODEL',
      /pytorch_model\.bin.*convert it to safetensors/,
    );
  });
});

describe('mismatches are typed errors naming what differs', () => {
  const m = model();
  const adapter = () => randomAdapter(m, { rank: 4, compTokens: 2, seed: 9 });

  const wrongModels: [string, Partial<RandomModelOptions>, RegExp][] = [
    ['hidden size', { hidden: 48 }, /was made for hidden 32, model has 48/],
    ['layer count', { layers: 3 }, /was made for layers 2, model has 3/],
    ['KV heads', { kvHeads: 4 }, /was made for KV heads 2, model has 4/],
    ['vocabulary', { vocab: 50 }, /was made for vocab 40, model has 50/],
    ['architecture', { attentionBias: true }, /was made for architecture llama, model has qwen2/],
  ];
  for (const [name, o, message] of wrongModels) {
    it(`checkAdapter: another ${name}`, async () => {
      await expectError(() => checkAdapter(adapter(), model(o)), 'MODEL_FORMAT', message);
    });
  }

  it('checkAdapter: several differences at once, with the base model name', async () => {
    const a = adapter();
    a.config.baseModel.name = 'tiny';
    await expectError(
      () => checkAdapter(a, model({ hidden: 48, layers: 3 })),
      'MODEL_FORMAT',
      /adapter for tiny was made for hidden 32, model has 48; layers 2, model has 3/,
    );
  });

  it('checkAdapter: tensors that disagree with the model when the base model records no head counts', async () => {
    const a = adapter();
    a.config.baseModel = { hiddenSize: 32, numLayers: 2 }; // as a PEFT import without options records it
    await expectError(
      () => checkAdapter(a, model({ kvHeads: 1 })),
      'MODEL_FORMAT',
      /adapter layers\.0\.k\.lora_B: shape \[16, 4\], expected \[8 \(KV heads × head dim\), 4 \(rank\)\]/,
    );
  });

  it('checkAdapter: a separator outside the vocabulary', async () => {
    const a = adapter();
    a.config.separators = { turn: [3, 40] };
    await expectError(() => checkAdapter(a, m), 'MODEL_FORMAT', /separator "turn" has token id 40/);
  });

  it('checkAdapter: a LoRA pair whose length disagrees with the rank', async () => {
    const a = adapter();
    a.lora.get('1.v')!.a = new Float32Array(4 * 32 + 1);
    await expectError(
      () => checkAdapter(a, m),
      'MODEL_FORMAT',
      /layers\.1\.v\.lora_A: 129 values do not split into 4 \(rank\)/,
    );
  });

  const fileErrors: [string, Parameters<typeof projectFiles>[1], string, RegExp][] = [
    [
      'rank disagreeing with a tensor',
      { config: (c) => (c.rank = 5) },
      'MODEL_FORMAT',
      /layers\.0\.q\.lora_A: shape \[4, 32\], expected \[5 \(rank\), 32 \(hidden size\)\]/,
    ],
    [
      'a missing tensor',
      { tensors: (ts) => ts.filter((t) => t.name !== 'layers.1.v.lora_B') },
      'MODEL_FORMAT',
      /missing tensor layers\.1\.v\.lora_B/,
    ],
    [
      'missing embedding rows',
      { tensors: (ts) => ts.filter((t) => t.name !== 'embeddings') },
      'MODEL_FORMAT',
      /missing tensor embeddings/,
    ],
    [
      'an extra layer',
      { config: (c) => ((c.baseModel as { numLayers: number }).numLayers = 1) },
      'MODEL_FORMAT',
      /unexpected tensor layers\.1\.q\.lora_A/,
    ],
    [
      'embedding rows of the wrong width',
      {
        tensors: (ts) =>
          ts.map((t) => (t.name === 'embeddings' ? { ...t, shape: [2, 30], data: new Float32Array(60) } : t)),
      },
      'MODEL_FORMAT',
      /embeddings: shape \[2, 30\], expected \[2 \(embedding rows\), 32 \(hidden size\)\]/,
    ],
    ['an unknown method', { config: (c) => (c.method = 'gist') }, 'UNSUPPORTED_MODEL', /unknown adapter method "gist"/],
    [
      'a newer version',
      { config: (c) => (c.version = 2) },
      'UNSUPPORTED_MODEL',
      /version 2; this engine reads version 1/,
    ],
    [
      'embeddingRows that disagree with the mode',
      { config: (c) => (c.mode = 'merge') },
      'MODEL_FORMAT',
      /"embeddingRows" is 2, but a ccm merge adapter with compTokens 2 has 4/,
    ],
    [
      'a mode on a sentinel adapter',
      { config: (c) => Object.assign(c, { method: 'sentinel', compTokens: 1 }) },
      'MODEL_FORMAT',
      /"mode" must be absent for a sentinel adapter/,
    ],
    [
      'a missing hidden size',
      { config: (c) => delete (c.baseModel as { hiddenSize?: number }).hiddenSize },
      'MODEL_FORMAT',
      /"baseModel\.hiddenSize" is missing/,
    ],
  ];
  for (const [name, edit, code, message] of fileErrors) {
    it(`loadAdapter: ${name}`, async () => {
      await expectError(loadAdapter(projectFiles(adapter(), edit)), code, message);
    });
  }

  it('loadAdapter: neither format, and options on a project adapter', async () => {
    await expectError(
      loadAdapter(memorySource({ 'adapter_config.json': '{"hello": 1}' })),
      'MODEL_FORMAT',
      /neither a ccmem adapter .* nor a PEFT LoRA config/,
    );
    await expectError(
      loadAdapter(projectFiles(adapter()), { mode: 'merge' }),
      'INVALID_INPUT',
      /apply to PEFT adapters/,
    );
  });
});

describe('randomAdapter', () => {
  const m = model({ hidden: 64, heads: 8, kvHeads: 2 });

  it('is deterministic per seed and differs across seeds', () => {
    const o = { rank: 4, compTokens: 2, seed: 5 };
    expectSameAdapter(randomAdapter(m, o), randomAdapter(m, o));
    const other = randomAdapter(m, { ...o, seed: 6 });
    expect(other.lora.get('0.q')!.a).not.toEqual(randomAdapter(m, o).lora.get('0.q')!.a);
    expect(adapterFingerprint(other)).not.toBe(adapterFingerprint(randomAdapter(m, o)));
  });

  it('has a LoRA term of RMS about `scale` for unit-RMS inputs (B is not zero) and rows of norm about 1', () => {
    for (const scale of [0.5, 2]) {
      const a = randomAdapter(m, { rank: 8, alpha: 16, compTokens: 3, mode: 'merge', seed: 1, scale });
      const s = 16 / 8;
      const D = 64;
      const x = randomArray(D, 77, Math.sqrt(3)); // unit RMS
      let sumSq = 0;
      let n = 0;
      for (const [key, { a: A, b: B }] of a.lora) {
        if (key.endsWith('.o')) continue; // its input width differs; same construction
        const u = Array.from({ length: 8 }, (_, j) => x.reduce((acc, xi, i) => acc + A[j * D + i]! * xi, 0));
        const rows = B.length / 8;
        for (let r = 0; r < rows; r++) {
          const y = s * u.reduce((acc, uj, j) => acc + B[r * 8 + j]! * uj, 0);
          sumSq += y * y;
          n++;
        }
      }
      const rms = Math.sqrt(sumSq / n);
      expect(rms).toBeGreaterThan(scale * 0.6);
      expect(rms).toBeLessThan(scale * 1.4);
    }
    const a = randomAdapter(m, { rank: 8, compTokens: 3, mode: 'merge', seed: 1 });
    expect(a.embeddings.length).toBe(6 * 64);
    for (let r = 0; r < 6; r++) {
      const norm = Math.hypot(...a.embeddings.subarray(r * 64, (r + 1) * 64));
      expect(norm).toBeGreaterThan(0.6);
      expect(norm).toBeLessThan(1.4);
    }
  });

  it('refuses inconsistent options', async () => {
    await expectError(
      () => randomAdapter(m, { method: 'sentinel', rank: 2, compTokens: 2, seed: 1 }),
      'MODEL_FORMAT',
      /sentinel adapter cannot have compTokens 2/,
    );
    await expectError(
      () => randomAdapter(m, { rank: 0, compTokens: 2, seed: 1 }),
      'MODEL_FORMAT',
      /"rank" must be a positive integer/,
    );
  });
});

describe('mergeLoraReader', () => {
  it('returns W + (alpha / r) B A for every targeted projection and leaves the rest alone', async () => {
    const ref = randomModel({ ...SMALL, hidden: 24, heads: 6, kvHeads: 3, headDim: 8 }); // q width 48 != hidden 24
    const adapter = randomAdapter(ref.config, { method: 'sentinel', rank: 3, alpha: 12, compTokens: 1, seed: 4 });
    const originals = new Map([...ref.tensors].map(([k, v]) => [k, v.slice()]));
    const read = mergeLoraReader(async (name) => ref.tensors.get(name)!, adapter);
    for (const [name, w] of ref.tensors) {
      const merged = await read(name);
      const target = LORA_TARGETS.find((t) =>
        [...Array(ref.config.numLayers).keys()].some((l) => layerTensorNames(l)[t] === name),
      );
      if (!target) {
        expect(merged, name).toBe(w);
        continue;
      }
      const layer = Number(/layers\.(\d+)\./.exec(name)![1]);
      const { a, b } = adapter.lora.get(loraKey(layer, target))!;
      const cols = a.length / 3;
      const rows = b.length / 3;
      expect(w.length).toBe(rows * cols);
      let worst = 0;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          let ba = 0;
          for (let j = 0; j < 3; j++) ba += b[r * 3 + j]! * a[j * cols + c]!;
          const want = w[r * cols + c]! + (12 / 3) * ba;
          worst = Math.max(worst, Math.abs(merged[r * cols + c]! - want) / Math.max(1, Math.abs(want)));
        }
      }
      expect(worst, name).toBeLessThan(1e-6);
      expect(merged).not.toEqual(w);
    }
    for (const [name, w] of originals) expect(ref.tensors.get(name), `${name} untouched`).toEqual(w);
  });

  it('refuses a ccm adapter: its LoRA is row-gated', async () => {
    const m = model();
    const adapter = randomAdapter(m, { rank: 2, compTokens: 2, seed: 1 });
    await expectError(() => mergeLoraReader(async () => new Float32Array(0), adapter), 'INVALID_INPUT', /row-gated/);
  });

  it('refuses a weight whose size disagrees with its LoRA pair', async () => {
    const adapter = randomAdapter(model(), { method: 'lora', rank: 2, compTokens: 0, seed: 1 });
    const read = mergeLoraReader(async () => new Float32Array(10), adapter);
    await expectError(read('model.layers.0.self_attn.q_proj.weight'), 'SHAPE', /has 10 values/);
  });
});
