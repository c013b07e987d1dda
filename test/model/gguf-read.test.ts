// The GGUF reader (src/model/gguf-read.ts, gguf-model.ts) over files the writer makes: the round trip
// gives back the config and every tensor bit for bit (F32, F16; Q8_0 / Q4_0 as their dequantized
// quantization; Q4_K / Q6_K blocks as dequantized), q/k rows back in rotate_half order, llama3 rope
// scaling from rope_freqs; and typed errors for wrong magic, versions, truncation, corrupt tables,
// unsupported types, missing metadata and tensors that disagree with the metadata.
import { describe, expect, it } from 'vitest';
import { encodeGguf, ggufMetadata, type MetaValue, type RawTensor, writeGguf } from '../../src/model/gguf.js';
import { ggufTensorName, openGgufModel } from '../../src/model/gguf-model.js';
import { readGgufFile } from '../../src/model/gguf-read.js';
import { dequantize, quantizeQ4_0, quantizeQ8_0 } from '../../src/model/quant.js';
import { memorySource } from '../../src/model/source.js';
import { expectedShapes, layerTensorNames, type ModelConfig } from '../../src/model/types.js';
import { failureOf } from '../helpers/checks.js';
import { kQuantModel } from '../helpers/ggufModel.js';
import { type RandomModelOptions, randomModel, roundModelToF16 } from '../helpers/randomModel.js';

const GQA: RandomModelOptions = { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 96, vocab: 300, seed: 3 };
const FILE = 'model.gguf';

const open = (bytes: Uint8Array) => openGgufModel(memorySource({ [FILE]: bytes }, 'mem'), FILE);
/** Where `got` first differs from `want` bit for bit (-1: nowhere); deep-equal of large arrays is slow. */
function firstBitDifference(got: Float32Array, want: Float32Array): number {
  if (got.length !== want.length) return Math.min(got.length, want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  return a.findIndex((v, i) => v !== b[i]);
}

/** The config the reader should give back: GGUF stores eps as f32 and knows only the llama architecture. */
function expectedConfig(c: ModelConfig, dtype: string): ModelConfig {
  return { ...c, architecture: 'llama', rmsNormEps: Math.fround(c.rmsNormEps), torchDtype: dtype };
}

describe('GGUF reader: round trip with the writer', () => {
  for (const [name, opts, dtype] of [
    ['GQA, F32', GQA, 'f32'],
    ['tied, biases, F16', { ...GQA, tie: true, attentionBias: true, seed: 4 }, 'f16'],
    ['MQA, head dim 32, F32', { ...GQA, heads: 2, kvHeads: 1, headDim: 32, seed: 5 }, 'f32'],
  ] as const) {
    it(name, async () => {
      const m = dtype === 'f16' ? roundModelToF16(randomModel(opts)) : randomModel(opts);
      const g = await open(writeGguf(m, { dtype }));
      expect(g.config).toEqual(expectedConfig(m.config, dtype.toUpperCase()));
      expect(g.gguf.version).toBe(3);
      for (const [hfName, want] of m.tensors) expect(firstBitDifference(await g.read(hfName), want), hfName).toBe(-1);
    });
  }

  for (const [dtype, type, quantize] of [
    ['q8_0', 'Q8_0', quantizeQ8_0],
    ['q4_0', 'Q4_0', quantizeQ4_0],
  ] as const) {
    it(`${type}: matrices read back as their dequantized quantization, norms exact`, async () => {
      const m = randomModel(GQA);
      const g = await open(writeGguf(m, { dtype }));
      expect(g.config.torchDtype).toBe(type);
      expect(g.tensors.get('model.layers.0.self_attn.q_proj.weight')!.type).toBe(type);
      for (const [hfName, values] of m.tensors) {
        const shape = expectedShapes(m.config).get(hfName)!;
        // blocks lie within rows and the q/k permutation moves whole rows: quantizing commutes with it
        const want = shape.length > 1 ? dequantize(type, quantize(values)) : values;
        expect(firstBitDifference(await g.read(hfName), want), hfName).toBe(-1);
        // the blocks the GPU keeps: the same rows, q/k un-permuted whole
        const blocks = await g.readBlocks(hfName);
        if (shape.length > 1) expect(firstBitDifference(dequantize(type, blocks!.blocks), want), hfName).toBe(-1);
        else expect(blocks).toBeUndefined();
      }
    });
  }

  it('llama3 rope scaling comes back from rope_freqs.weight', async () => {
    const ropeScaling = {
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: 8192,
    } as const;
    const m = randomModel({ ...GQA, ropeTheta: 500000, ropeScaling });
    const g = await open(writeGguf(m, { dtype: 'f32' }));
    expect(g.config.ropeScaling).toEqual(ropeScaling);
    expect(g.config.ropeTheta).toBe(500000);
  });

  it('linear rope scaling and the token ids', async () => {
    const m = randomModel({ ...GQA, ropeScaling: { type: 'linear', factor: 4 } });
    const g = await open(writeGguf(m, { dtype: 'f32', bosId: 5, eosId: 7 }));
    expect(g.config.ropeScaling).toEqual({ type: 'linear', factor: 4 });
    expect([g.config.bosTokenId, g.config.eosTokenIds]).toEqual([5, [7]]);
  });

  it('un-permutes q/k rows: GGUF row 2i is HF row i, row 2i+1 is HF row i + headDim/2', async () => {
    const m = randomModel({ ...GQA, layers: 1 });
    const { config } = m;
    const names = layerTensorNames(0);
    // rows whose values name them: HF row r of q holds r everywhere
    const cols = config.hiddenSize;
    const qRows = config.numHeads * config.headDim;
    m.tensors.set(
      names.q,
      Float32Array.from({ length: qRows * cols }, (_, i) => Math.floor(i / cols)),
    );
    const bytes = writeGguf(m, { dtype: 'f32' });
    const file = await readGgufFile(memorySource({ [FILE]: bytes }), FILE);
    const info = file.tensors.get('blk.0.attn_q.weight')!;
    const raw = dequantize('F32', bytes.subarray(info.offset, info.offset + info.byteLength));
    const half = config.headDim / 2;
    const rowOf = (r: number) => raw[r * cols]!;
    expect([rowOf(0), rowOf(1), rowOf(2), rowOf(3)]).toEqual([0, half, 1, half + 1]);
    expect(rowOf(config.headDim + 1)).toBe(config.headDim + half); // second head
    expect(Array.from((await (await open(bytes)).read(names.q)).filter((_, i) => i % cols === 0))).toEqual(
      Array.from({ length: qRows }, (_, r) => r),
    );
  });
});

describe('GGUF reader: K-quants', () => {
  it('Q4_K and Q6_K tensors (a Q4_K_M-like mix) read as their dequantized blocks, q/k un-permuted', async () => {
    const { bytes, want } = kQuantModel({ ...GQA, hidden: 256, intermediate: 512, headDim: 64, seed: 7 });
    const g = await open(bytes);
    expect(g.config.torchDtype).toBe('Q4_K');
    for (const [hfName, values] of want) expect(firstBitDifference(await g.read(hfName), values), hfName).toBe(-1);
  });
});

describe('GGUF reader: errors', () => {
  const good = writeGguf(randomModel(GQA), { dtype: 'f32' });
  const config = randomModel(GQA).config;

  /** A file with the writer's metadata edited and the model's tensors. */
  const withMeta = (edit: (meta: [string, MetaValue][]) => [string, MetaValue][], tensors?: RawTensor[]) =>
    encodeGguf(edit(ggufMetadata(config, { dtype: 'f32' })), tensors ?? rawTensors());
  const rawTensors = (): RawTensor[] =>
    [...expectedShapes(config)].map(([hfName, shape]) => ({
      name: ggufTensorName(hfName),
      ne: [...shape].reverse(),
      type: 0,
      bytes: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 4),
    }));

  it('wrong magic, version 1, unknown and big-endian versions', async () => {
    const edit = (at: number, value: number) => {
      const b = good.slice();
      new DataView(b.buffer).setUint32(at, value, true);
      return b;
    };
    expect(await failureOf(open(edit(0, 0x12345678)))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/magic/),
    });
    expect(await failureOf(open(edit(4, 1)))).toMatchObject({
      code: 'UNSUPPORTED_MODEL',
      message: expect.stringMatching(/version 1/),
    });
    expect(await failureOf(open(edit(4, 9)))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/version 9/),
    });
    expect(await failureOf(open(edit(4, 0x03000000)))).toMatchObject({
      code: 'UNSUPPORTED_MODEL',
      message: expect.stringMatching(/big-endian/),
    });
    expect(await failureOf(open(new Uint8Array(2)))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/magic/),
    });
  });

  it('a file truncated anywhere is MODEL_FORMAT "truncated"', async () => {
    for (const cut of [10, 30, 200, 5000, good.length - 40]) {
      expect(await failureOf(open(good.subarray(0, cut))), `cut at ${cut}`).toMatchObject({
        code: 'MODEL_FORMAT',
        message: expect.stringMatching(/truncated/),
      });
    }
  });

  it('corrupt counts and unknown value types', async () => {
    const b = good.slice();
    new DataView(b.buffer).setBigUint64(8, 1n << 40n, true); // tensor count
    expect(await failureOf(open(b))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/corrupt header/),
    });
    const bad = withMeta((meta) => meta);
    // the first key/value's type code follows magic, version, counts and the key string
    const keyLength = Number(new DataView(bad.buffer).getBigUint64(24, true));
    new DataView(bad.buffer).setUint32(32 + keyLength, 99, true);
    expect(await failureOf(open(bad))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/unknown value type 99/),
    });
  });

  it('an unsupported tensor type is MODEL_FORMAT naming the type', async () => {
    const tensors = rawTensors();
    tensors[1] = { ...tensors[1]!, type: 13 }; // Q5_K
    expect(await failureOf(open(withMeta((m) => m, tensors)))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/type Q5_K \(13\), which ccmem does not read/),
    });
    tensors[1] = { ...tensors[1]!, type: 77 };
    expect(await failureOf(open(withMeta((m) => m, tensors)))).toMatchObject({
      message: expect.stringMatching(/unknown type 77/),
    });
  });

  it('rows that are not whole blocks, misaligned and overlapping tensors', async () => {
    const tensors = rawTensors();
    const q = tensors.findIndex((t) => t.name === 'blk.0.attn_q.weight');
    tensors[q] = { ...tensors[q]!, ne: [48, 64], type: 8, bytes: new Uint8Array(64 * 2 * 34) };
    expect(await failureOf(open(withMeta((m) => m, tensors)))).toMatchObject({
      message: expect.stringMatching(/not whole Q8_0 blocks of 32/),
    });
    const misaligned = withMeta((m) => m);
    const file = await readGgufFile(memorySource({ [FILE]: good }), FILE);
    const second = [...file.tensors.values()][1]!;
    // the offset field of the second tensor's info: its name (u64 length, bytes), n_dims (u32), ne (u64 each),
    // type (u32), then the u64 offset relative to the data section
    const view = new DataView(misaligned.buffer, misaligned.byteOffset, misaligned.byteLength);
    const name = new TextEncoder().encode(second.name);
    const nameAt = misaligned.findIndex(
      (_, i) =>
        i >= 8 &&
        view.getBigUint64(i - 8, true) === BigInt(name.length) &&
        name.every((byte, j) => misaligned[i + j] === byte),
    );
    expect(nameAt).toBeGreaterThan(0);
    const at = nameAt + name.length + 4 + 8 * second.ne.length + 4;
    const rel = BigInt(second.offset - file.dataOffset);
    expect(view.getBigUint64(at, true)).toBe(rel);
    view.setBigUint64(at, rel + 4n, true);
    expect(await failureOf(open(misaligned))).toMatchObject({
      message: expect.stringMatching(/not a multiple of 32/),
    });
    view.setBigUint64(at, 0n, true);
    expect(await failureOf(open(misaligned))).toMatchObject({ message: expect.stringMatching(/overlap/) });
  });

  it('missing or invalid metadata, other architectures, missing and misshapen tensors', async () => {
    const drop = (key: string) => withMeta((m) => m.filter(([k]) => k !== key));
    expect(await failureOf(open(drop('llama.block_count')))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/llama.block_count must be a positive integer/),
    });
    expect(await failureOf(open(drop('llama.attention.layer_norm_rms_epsilon')))).toMatchObject({
      code: 'MODEL_FORMAT',
    });
    const set = (key: string, value: MetaValue) => withMeta((m) => m.map(([k, v]) => [k, k === key ? value : v]));
    expect(await failureOf(open(set('general.architecture', { type: 'string', value: 'gemma' })))).toMatchObject({
      code: 'UNSUPPORTED_MODEL',
      message: expect.stringMatching(/architecture "gemma"/),
    });
    expect(await failureOf(open(set('llama.attention.head_count_kv', { type: 'u32', value: 3 })))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/multiple of head_count_kv 3/),
    });
    expect(await failureOf(open(set('llama.rope.dimension_count', { type: 'u32', value: 8 })))).toMatchObject({
      code: 'UNSUPPORTED_MODEL',
      message: expect.stringMatching(/partial rotary/),
    });
    const tensors = rawTensors().filter((t) => t.name !== 'blk.1.ffn_up.weight');
    expect(await failureOf(open(withMeta((m) => m, tensors)))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/blk.1.ffn_up.weight is missing/),
    });
    const wider = set('llama.feed_forward_length', { type: 'u32', value: 128 });
    expect(await failureOf(open(wider))).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/expected ne \[64,128\]/),
    });
  });
});
