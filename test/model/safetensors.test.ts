import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { roundToF16 } from '../../src/gpu/half.js';
import {
  checkAgainstConfig,
  readTensorBytes,
  readWeightIndex,
  type SafetensorsDType,
  type TensorInfo,
  toF32,
  writeSafetensors,
} from '../../src/model/safetensors.js';
import { memorySource } from '../../src/model/source.js';
import { expectedShapes, type ModelConfig } from '../../src/model/types.js';

/** A safetensors file with a hand-written header (for corruption cases). */
function rawFile(header: unknown, dataBytes: number, lengthField?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthField ?? json.length), true);
  out.set(json, 8);
  return out;
}

async function rejects(files: Record<string, Uint8Array | string>, code: string, message: RegExp) {
  const err = await readWeightIndex(memorySource(files, 'm')).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isCcmemError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  expect((err as Error).message).toMatch(message);
}

const tensor = (dtype: string, shape: number[], offsets: [number, number]) => ({ dtype, shape, data_offsets: offsets });

describe('writeSafetensors / readWeightIndex round trip', () => {
  it('preserves names, shapes and values for F32, F16 and BF16', async () => {
    const dims = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 3 });
    const dtype = fc.constantFrom<SafetensorsDType>('F32', 'F16', 'BF16');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(dtype, dims), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        async (specs, seed) => {
          const tensors = specs.map(([dt, shape], i) => ({
            name: `t${i}.weight`,
            dtype: dt,
            shape,
            data: Float32Array.from(
              { length: shape.reduce((a, b) => a * b, 1) },
              (_, j) => Math.sin(seed + i * 31 + j) * 3,
            ),
          }));
          const src = memorySource({ 'model.safetensors': writeSafetensors(tensors, { format: 'pt' }) });
          const index = await readWeightIndex(src);
          expect([...index.keys()]).toEqual(tensors.map((t) => t.name));
          expect(index.get('t0.weight')!.offset % 8).toBe(0); // the header is space-padded: data starts 8-byte aligned
          for (const t of tensors) {
            const info = index.get(t.name)!;
            expect(info).toMatchObject({ dtype: t.dtype, shape: t.shape, file: 'model.safetensors' });
            const got = toF32(info, await readTensorBytes(src, info));
            if (t.dtype === 'F32') expect(got).toEqual(t.data);
            else if (t.dtype === 'F16') expect(got).toEqual(roundToF16(t.data));
            else {
              const err = got.map((v, j) => Math.abs(v - t.data[j]!) / Math.abs(t.data[j]!));
              expect(Math.max(0, ...err.filter(Number.isFinite))).toBeLessThanOrEqual(2 ** -8); // half an ulp
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('rounds BF16 to nearest even and keeps specials', async () => {
    const values = [
      1,
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      1 + 2 ** -8 + 2 ** -20,
      -2.5,
      0,
      Number.POSITIVE_INFINITY,
      Number.NaN,
    ];
    const bytes = writeSafetensors([
      { name: 'x', dtype: 'BF16', shape: [values.length], data: Float32Array.from(values) },
    ]);
    const src = memorySource({ 'model.safetensors': bytes });
    const info = (await readWeightIndex(src)).get('x')!;
    const got = [...toF32(info, await readTensorBytes(src, info))];
    expect(got).toEqual([1, 1, 1 + 2 ** -6, 1 + 2 ** -7, -2.5, 0, Number.POSITIVE_INFINITY, Number.NaN]);
  });

  it('reads a sharded checkpoint through model.safetensors.index.json', async () => {
    const a = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }]);
    const b = writeSafetensors([
      { name: 'b', dtype: 'F16', shape: [1], data: Float32Array.of(3) },
      { name: 'c', dtype: 'F32', shape: [3], data: Float32Array.of(4, 5, 6) },
    ]);
    const index = {
      metadata: {},
      weight_map: {
        a: 'model-00001-of-00002.safetensors',
        b: 'model-00002-of-00002.safetensors',
        c: 'model-00002-of-00002.safetensors',
      },
    };
    const src = memorySource({
      'model.safetensors.index.json': JSON.stringify(index),
      'model-00001-of-00002.safetensors': a,
      'model-00002-of-00002.safetensors': b,
    });
    const infos = await readWeightIndex(src);
    expect(infos.get('c')!.file).toBe('model-00002-of-00002.safetensors');
    expect([...toF32(infos.get('c')!, await readTensorBytes(src, infos.get('c')!))]).toEqual([4, 5, 6]);
    expect([...toF32(infos.get('a')!, await readTensorBytes(src, infos.get('a')!))]).toEqual([1, 2]);
  });

  it('rejects values that do not fill the shape', () => {
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }])).toThrow(
      /x has 3 values for shape \[2,2\]/,
    );
  });
});

describe('readWeightIndex rejects corrupt files', () => {
  const ok = { x: tensor('F32', [2, 2], [0, 16]) };

  it('a header length that does not fit the file', async () => {
    await rejects(
      { 'model.safetensors': rawFile(ok, 16, 10_000) },
      'MODEL_FORMAT',
      /m\/model.safetensors: header length 10000 does not fit/,
    );
    await rejects({ 'model.safetensors': new Uint8Array(5) }, 'MODEL_FORMAT', /truncated, 5 bytes/);
  });

  it('a header that is not JSON', async () => {
    await rejects({ 'model.safetensors': rawFile('{"x": {', 0) }, 'MODEL_FORMAT', /header is not valid JSON/);
  });

  it('data offsets out of bounds, or a file cut short', async () => {
    await rejects(
      { 'model.safetensors': rawFile({ x: tensor('F32', [2, 2], [16, 32]) }, 16) },
      'MODEL_FORMAT',
      /tensor x has data_offsets \[16, 32\] but the data region holds 16/,
    );
    const full = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [4, 4], data: new Float32Array(16) }]);
    await rejects(
      { 'model.safetensors': full.slice(0, full.length - 1) },
      'MODEL_FORMAT',
      /truncated or corrupt: tensor w/,
    );
  });

  it('overlapping tensors', async () => {
    const header = { a: tensor('F32', [2], [0, 8]), b: tensor('F32', [2], [4, 12]) };
    await rejects({ 'model.safetensors': rawFile(header, 12) }, 'MODEL_FORMAT', /tensors a and b overlap/);
  });

  it('a byte size that disagrees with shape and dtype', async () => {
    await rejects(
      { 'model.safetensors': rawFile({ x: tensor('F16', [2, 2], [0, 16]) }, 16) },
      'MODEL_FORMAT',
      /tensor x: F16 \[2,2\] needs 8 bytes, data_offsets span 16/,
    );
  });

  it('an unknown dtype', async () => {
    await rejects(
      { 'model.safetensors': rawFile({ x: tensor('I8', [4], [0, 4]) }, 4) },
      'UNSUPPORTED_MODEL',
      /tensor x has dtype "I8"/,
    );
  });

  it('malformed entries', async () => {
    await rejects(
      { 'model.safetensors': rawFile({ x: tensor('F32', [-1], [0, 4]) }, 4) },
      'MODEL_FORMAT',
      /invalid shape \[-1\]/,
    );
    await rejects(
      { 'model.safetensors': rawFile({ x: { dtype: 'F32', shape: [1] } }, 4) },
      'MODEL_FORMAT',
      /invalid data_offsets/,
    );
  });

  it('a sharded index with a missing shard or a misplaced tensor', async () => {
    const shard = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    const index = (map: Record<string, string>) => JSON.stringify({ weight_map: map });
    await rejects(
      { 'model.safetensors.index.json': index({ a: 's1.safetensors', b: 's2.safetensors' }), 's1.safetensors': shard },
      'MODEL_FORMAT',
      /shard s2.safetensors named in model.safetensors.index.json is missing/,
    );
    await rejects(
      { 'model.safetensors.index.json': index({ a: 's1.safetensors', b: 's1.safetensors' }), 's1.safetensors': shard },
      'MODEL_FORMAT',
      /puts b in s1.safetensors but it is not there/,
    );
    await rejects(
      { 'model.safetensors.index.json': '{"weight_map": 3}' },
      'MODEL_FORMAT',
      /expected an object "weight_map"/,
    );
  });

  it('no weights at all', async () => {
    await rejects(
      { 'config.json': '{}' },
      'MODEL_FORMAT',
      /neither model.safetensors nor model.safetensors.index.json/,
    );
  });
});

describe('checkAgainstConfig', () => {
  const config: ModelConfig = {
    architecture: 'qwen2',
    hiddenSize: 4,
    intermediateSize: 6,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 2,
    vocabSize: 10,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    ropeScaling: { type: 'none' },
    maxPositions: 32,
    tieWordEmbeddings: false,
    attentionBias: true,
    bosTokenId: undefined,
    eosTokenIds: [],
    torchDtype: 'F32',
  };
  const indexFor = (c: ModelConfig) => {
    const m = new Map<string, TensorInfo>();
    for (const [name, shape] of expectedShapes(c))
      m.set(name, { name, dtype: 'F32', shape, file: 'f', offset: 0, byteLength: 0 });
    return m;
  };

  it('accepts a complete index with extra tensors', () => {
    const index = indexFor(config);
    index.set('model.layers.0.self_attn.rotary_emb.inv_freq', {
      name: 'x',
      dtype: 'F32',
      shape: [1],
      file: 'f',
      offset: 0,
      byteLength: 4,
    });
    expect(() => checkAgainstConfig(index, config)).not.toThrow();
    expect(index.has('model.layers.0.self_attn.k_proj.bias')).toBe(true);
  });

  it('names a missing tensor, a missing untied lm_head and a wrong shape', () => {
    const missing = indexFor(config);
    missing.delete('model.layers.0.self_attn.v_proj.bias');
    expect(() => checkAgainstConfig(missing, config)).toThrow(
      /model.layers.0.self_attn.v_proj.bias is missing; expected shape \[2\]/,
    );
    const noHead = indexFor(config);
    noHead.delete('lm_head.weight');
    expect(() => checkAgainstConfig(noHead, config)).toThrow(
      /lm_head.weight is missing \(tie_word_embeddings is false\)/,
    );
    const wrong = indexFor(config);
    wrong.get('model.layers.0.mlp.down_proj.weight')!.shape = [6, 4];
    expect(() => checkAgainstConfig(wrong, config)).toThrow(
      /down_proj.weight in f: expected shape \[4,6\], found \[6,4\]/,
    );
  });
});
