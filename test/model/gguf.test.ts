// The GGUF writer read back by an independent minimal reader: header, metadata, tensor table, alignment,
// tensor data, and the q/k row permutation on a matrix whose rows name themselves.
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { f16BitsToF32 } from '../../src/gpu/half.js';
import { writeGguf } from '../../src/model/gguf.js';
import { layerTensorNames } from '../../src/model/types.js';
import type { ReferenceModel } from '../../src/reference/llama.js';
import { type RandomModelOptions, randomModel, roundModelToF16 } from '../helpers/randomModel.js';

type Value = number | bigint | boolean | string | Value[];
interface TensorEntry {
  name: string;
  ne: number[];
  type: number; // 0 = F32, 1 = F16
  offset: number;
}
interface Gguf {
  version: number;
  meta: Map<string, Value>;
  tensors: TensorEntry[];
  dataStart: number;
  bytes: Uint8Array;
}

function readGguf(bytes: Uint8Array): Gguf {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  /** Advances past `n` bytes, returning where they start. */
  const take = (n: number) => {
    pos += n;
    return pos - n;
  };
  const u32 = () => view.getUint32(take(4), true);
  const u64 = () => Number(view.getBigUint64(take(8), true));
  const str = () => {
    const n = u64();
    const at = take(n);
    return new TextDecoder().decode(bytes.subarray(at, at + n));
  };
  const value = (type: number): Value => {
    switch (type) {
      case 4:
        return u32();
      case 5:
        return view.getInt32(take(4), true);
      case 6:
        return view.getFloat32(take(4), true);
      case 7:
        return view.getUint8(take(1)) === 1;
      case 8:
        return str();
      case 9: {
        const element = u32();
        return Array.from({ length: u64() }, () => value(element));
      }
      default:
        throw new Error(`unexpected metadata type ${type} at byte ${pos}`);
    }
  };
  expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('GGUF');
  pos = 4;
  const version = u32();
  const tensorCount = u64();
  const kvCount = u64();
  const meta = new Map<string, Value>();
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    meta.set(key, value(u32()));
  }
  const tensors = Array.from({ length: tensorCount }, () => {
    const name = str();
    const ne = Array.from({ length: u32() }, u64);
    return { name, ne, type: u32(), offset: u64() };
  });
  const alignment = (meta.get('general.alignment') as number | undefined) ?? 32;
  return { version, meta, tensors, dataStart: Math.ceil(pos / alignment) * alignment, bytes };
}

/** A tensor's values as f32, read from its offset. */
function tensorData(g: Gguf, name: string): Float32Array {
  const t = g.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  const n = t.ne.reduce((a, b) => a * b, 1);
  const view = new DataView(g.bytes.buffer, g.bytes.byteOffset + g.dataStart + t.offset);
  return Float32Array.from({ length: n }, (_, i) =>
    t.type === 0 ? view.getFloat32(4 * i, true) : f16BitsToF32(view.getUint16(2 * i, true)),
  );
}

const small: RandomModelOptions = {
  hidden: 16,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediate: 24,
  vocab: 300,
  seed: 9,
};

describe('writeGguf', () => {
  it('writes a v3 header with every llama.* key and the tokenizer', () => {
    const m = randomModel({ ...small, headDim: 8 });
    const g = readGguf(writeGguf(m, { dtype: 'f32' }));
    expect(g.version).toBe(3);
    const meta = Object.fromEntries(g.meta);
    expect(meta).toMatchObject({
      'general.architecture': 'llama',
      'general.alignment': 32,
      'general.file_type': 0,
      'llama.context_length': 256,
      'llama.embedding_length': 16,
      'llama.block_count': 2,
      'llama.feed_forward_length': 24,
      'llama.attention.head_count': 4,
      'llama.attention.head_count_kv': 2,
      'llama.attention.key_length': 8,
      'llama.attention.value_length': 8,
      'llama.rope.freq_base': 10000,
      'llama.rope.dimension_count': 8,
      'llama.vocab_size': 300,
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.bos_token_id': 1,
      'tokenizer.ggml.eos_token_id': 2,
    });
    expect(meta['llama.attention.layer_norm_rms_epsilon']).toBeCloseTo(1e-5, 10);
    expect(meta['llama.rope.scaling.type']).toBeUndefined();
    const tokens = meta['tokenizer.ggml.tokens'] as string[];
    expect(tokens).toHaveLength(300);
    expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(tokens[3 + 0x0a]).toBe('<0x0A>');
    expect(new Set(tokens).size).toBe(300); // llama.cpp needs unique pieces
    expect((meta['tokenizer.ggml.token_type'] as number[]).slice(0, 5)).toEqual([2, 3, 3, 6, 6]);
    expect(meta['tokenizer.ggml.scores']).toEqual(new Array(300).fill(0));
  });

  it('lays out an aligned tensor table: F32 vectors, dtype matrices, ggml dimension order', () => {
    for (const [dtype, tie] of [
      ['f32', false],
      ['f16', true],
    ] as const) {
      const m = randomModel({ ...small, tie, attentionBias: true });
      const bytes = writeGguf(dtype === 'f16' ? roundModelToF16(m) : m, { dtype });
      const g = readGguf(bytes);
      const names = g.tensors.map((t) => t.name);
      const layer = (l: number) =>
        ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_q.bias', 'attn_k.bias', 'attn_v.bias', 'attn_output']
          .concat(['ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'])
          .map((s) => `blk.${l}.${s.includes('.') ? s : `${s}.weight`}`);
      const expected = ['token_embd.weight', 'output_norm.weight', ...(tie ? [] : ['output.weight'])];
      expect(new Set(names)).toEqual(new Set([...expected, ...layer(0), ...layer(1)]));

      const byName = new Map(g.tensors.map((t) => [t.name, t]));
      expect(byName.get('token_embd.weight')?.ne).toEqual([16, 300]);
      expect(byName.get('blk.1.attn_k.weight')?.ne).toEqual([16, 8]); // kvHeads 2 * headDim 4 rows
      expect(byName.get('blk.0.ffn_down.weight')?.ne).toEqual([24, 16]);
      expect(byName.get('blk.0.attn_q.bias')?.ne).toEqual([16]);
      const matrixType = dtype === 'f16' ? 1 : 0;
      for (const t of g.tensors) expect([t.name, t.type]).toEqual([t.name, t.ne.length === 1 ? 0 : matrixType]);

      expect(g.dataStart % 32).toBe(0);
      let end = 0;
      for (const t of g.tensors) {
        expect(t.offset % 32).toBe(0);
        expect(t.offset).toBeGreaterThanOrEqual(end); // no overlap, in order
        end = t.offset + t.ne.reduce((a, b) => a * b, 1) * (t.type === 1 ? 2 : 4);
      }
      expect(bytes.length).toBe(g.dataStart + Math.ceil(end / 32) * 32);

      // unpermuted tensors come back exactly (f16: the model was rounded first)
      const src = dtype === 'f16' ? roundModelToF16(m) : m;
      const n = layerTensorNames(1);
      expect(tensorData(g, 'blk.1.ffn_up.weight')).toEqual(src.tensors.get(n.up));
      expect(tensorData(g, 'blk.1.attn_v.bias')).toEqual(src.tensors.get(n.vBias));
      expect(tensorData(g, 'output_norm.weight')).toEqual(src.tensors.get('model.norm.weight'));
    }
  });

  it('permutes q/k rows (and biases) per head: row 2i = HF row i, row 2i+1 = HF row i + head_dim/2', () => {
    // 2 query heads and 1 kv head of head_dim 4; every HF row r holds r*10 + column
    const m = randomModel({
      hidden: 8,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      intermediate: 8,
      vocab: 260,
      seed: 1,
      attentionBias: true,
    });
    const n = layerTensorNames(0);
    const rowsNamed = (rows: number, cols: number) =>
      Float32Array.from({ length: rows * cols }, (_, i) => Math.floor(i / cols) * 10 + (i % cols));
    m.tensors.set(n.q, rowsNamed(8, 8));
    m.tensors.set(n.k, rowsNamed(4, 8));
    m.tensors.set(n.qBias, rowsNamed(8, 1));
    m.tensors.set(n.kBias, rowsNamed(4, 1));
    const g = readGguf(writeGguf(m, { dtype: 'f32' }));
    const rowOrder = (t: Float32Array, cols: number) =>
      Array.from({ length: t.length / cols }, (_, r) => {
        const row = Array.from(t.subarray(r * cols, (r + 1) * cols));
        expect(row).toEqual(row.map((_, c) => (row[0] as number) + c)); // rows move whole
        return (row[0] as number) / 10;
      });
    expect(rowOrder(tensorData(g, 'blk.0.attn_q.weight'), 8)).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(rowOrder(tensorData(g, 'blk.0.attn_k.weight'), 8)).toEqual([0, 2, 1, 3]);
    expect(rowOrder(tensorData(g, 'blk.0.attn_q.bias'), 1)).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(rowOrder(tensorData(g, 'blk.0.attn_k.bias'), 1)).toEqual([0, 2, 1, 3]);
    expect(tensorData(g, 'blk.0.attn_v.weight')).toEqual(m.tensors.get(n.v)); // v is not rotated
  });

  it('writes rope scaling: llama3 as the rope_freqs divisors, linear as keys', () => {
    // head_dim 4, theta 10000: wavelengths 2*pi (< 64/4, kept) and 200*pi (> 64/1, divided by 8)
    const llama3 = randomModel({
      ...small,
      heads: 4,
      kvHeads: 4,
      ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 },
    });
    const g = readGguf(writeGguf(llama3, { dtype: 'f32' }));
    expect(g.tensors.find((t) => t.name === 'rope_freqs.weight')?.ne).toEqual([2]);
    expect(Array.from(tensorData(g, 'rope_freqs.weight'))).toEqual([1, 8]);

    const linear = readGguf(
      writeGguf(randomModel({ ...small, ropeScaling: { type: 'linear', factor: 4 } }), { dtype: 'f32' }),
    );
    expect(linear.meta.get('llama.rope.scaling.type')).toBe('linear');
    expect(linear.meta.get('llama.rope.scaling.factor')).toBe(4);
    expect(linear.tensors.some((t) => t.name === 'rope_freqs.weight')).toBe(false);
  });

  it('writes a given vocabulary with scores and token types', () => {
    const m: ReferenceModel = randomModel({ ...small, vocab: 6 });
    const tokens = ['<unk>', '<s>', '</s>', '<0x0A>', '▁héllo', 'x'];
    const g = readGguf(writeGguf(m, { dtype: 'f32', tokens, scores: [0, 0, 0, 0, -1.5, -2], bosId: 1, eosId: 2 }));
    expect(g.meta.get('tokenizer.ggml.tokens')).toEqual(tokens);
    expect(g.meta.get('tokenizer.ggml.scores')).toEqual([0, 0, 0, 0, -1.5, -2]);
    expect(g.meta.get('tokenizer.ggml.token_type')).toEqual([2, 3, 3, 6, 1, 1]);
  });

  it('refuses a vocabulary of the wrong size and a dummy vocabulary without room for byte fallbacks', () => {
    const m = randomModel({ ...small, vocab: 100 });
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isCcmemError(e) ? e.code : String(e);
      }
      return 'no error';
    };
    expect(code(() => writeGguf(m, { dtype: 'f32' }))).toBe('INVALID_INPUT');
    expect(code(() => writeGguf(m, { dtype: 'f32', tokens: ['a', 'b'] }))).toBe('INVALID_INPUT');
  });
});

describe('large headers', () => {
  it('writes a vocabulary whose metadata outgrows the initial buffer (regression)', () => {
    const model = randomModel({ hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 16, vocab: 20000, seed: 3 });
    const bytes = writeGguf(model, { dtype: 'f16' });
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('GGUF');
    expect(bytes.length).toBeGreaterThan(20000 * 16 * 2);
  });
});
