// GGUF v3 export of a model held as Hugging Face-named f32 tensors, for llama.cpp (the native peer the
// tests compare against). Follows llama.cpp's convert_hf_to_gguf.py for architecture `llama`: q/k rows are
// permuted from HF's rotate_half layout to llama.cpp's interleaved RoPE pairs, 1-D tensors stay F32,
// llama3 rope scaling becomes the `rope_freqs.weight` divisor tensor.
import { invalidInput, unsupportedModel } from '../errors.js';
import { f32ToF16Bits } from '../gpu/half.js';
import type { ReferenceModel } from '../reference/llama.js';
import { GLOBAL_TENSOR_NAMES, layerTensorNames, type ModelConfig } from './types.js';

export interface GgufOptions {
  dtype: 'f32' | 'f16'; // the matrices' type; norms, biases and rope_freqs are always F32
  tokens?: string[]; // default: a dummy vocabulary (the peer is driven by ids)
  scores?: number[];
  bosId?: number; // default config.bosTokenId ?? 1
  eosId?: number; // default config.eosTokenIds[0] ?? 2
}

const GGUF_ALIGNMENT = 32;
const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const GGML_F32 = 0;
const GGML_F16 = 1;
/** llama.cpp token types. */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;
/** GGUF metadata value type codes of the scalar kinds used here; arrays are type 9. */
const SCALAR = { u32: 4, i32: 5, f32: 6, string: 8 } as const;
const GGUF_ARRAY = 9;

type Scalar = keyof typeof SCALAR;
type MetaValue = { type: Scalar; value: number | string } | { array: Scalar; value: (number | string)[] };

interface TensorOut {
  name: string;
  /** ggml order: ne[0] is the contiguous (column) dimension. */
  ne: number[];
  type: typeof GGML_F32 | typeof GGML_F16;
  data: Float32Array;
}

/** Growable little-endian byte buffer for the header (the tensor data goes straight to the output). */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private at(n: number): number {
    if (this.length + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.length + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const pos = this.length;
    this.length += n;
    return pos;
  }
  // at() may replace buf and view when it grows them: call it before touching either
  scalar(kind: Scalar, v: number | string): void {
    if (kind === 'string') {
      this.string(v as string);
      return;
    }
    const pos = this.at(4);
    if (kind === 'u32') this.view.setUint32(pos, v as number, true);
    else if (kind === 'i32') this.view.setInt32(pos, v as number, true);
    else this.view.setFloat32(pos, v as number, true);
  }
  u64(v: number): void {
    const pos = this.at(8);
    this.view.setBigUint64(pos, BigInt(v), true);
  }
  string(s: string): void {
    const bytes = new TextEncoder().encode(s);
    this.u64(bytes.length);
    const pos = this.at(bytes.length);
    this.buf.set(bytes, pos);
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeMeta(w: ByteWriter, key: string, m: MetaValue): void {
  w.string(key);
  if ('type' in m) {
    w.scalar('u32', SCALAR[m.type]);
    w.scalar(m.type, m.value);
    return;
  }
  w.scalar('u32', GGUF_ARRAY);
  w.scalar('u32', SCALAR[m.array]);
  w.u64(m.value.length);
  for (const v of m.value) w.scalar(m.array, v);
}

/** HF rotate_half rows -> llama.cpp interleaved rows, per head: out row 2i = in row i, 2i+1 = in row i + hd/2.
 *  Works on matrices ([heads * headDim, cols]) and biases (cols = 1). */
function permuteRopeRows(t: Float32Array, heads: number, headDim: number): Float32Array {
  const cols = t.length / (heads * headDim);
  const half = headDim / 2;
  const out = new Float32Array(t.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (const [dst, src] of [
        [2 * i, i],
        [2 * i + 1, i + half],
      ] as const) {
        const from = (h * headDim + src) * cols;
        out.set(t.subarray(from, from + cols), (h * headDim + dst) * cols);
      }
    }
  }
  return out;
}

/** llama.cpp's rope_freqs for llama3 scaling: per frequency, the divisor HF applies to it. */
function llama3RopeFactors(c: ModelConfig): Float32Array | undefined {
  const s = c.ropeScaling;
  if (s.type !== 'llama3') return undefined;
  const half = c.headDim / 2;
  return Float32Array.from({ length: half }, (_, i) => {
    const wavelen = 2 * Math.PI * c.ropeTheta ** ((2 * i) / c.headDim);
    if (wavelen < s.originalMaxPositions / s.highFreqFactor) return 1;
    if (wavelen > s.originalMaxPositions / s.lowFreqFactor) return s.factor;
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return 1 / ((1 - smooth) / s.factor + smooth);
  });
}

function tensorsOut(model: ReferenceModel, matrixType: TensorOut['type']): TensorOut[] {
  const c = model.config;
  const get = (name: string) => {
    const t = model.tensors.get(name);
    if (!t) throw invalidInput(`writeGguf: the model has no tensor ${name}`);
    return t;
  };
  const out: TensorOut[] = [];
  // HF [rows, cols] is ggml ne [cols, rows]; 1-D tensors are F32 like convert_hf_to_gguf writes them.
  const matrix = (name: string, data: Float32Array, rows: number, cols: number) =>
    out.push({ name, ne: [cols, rows], type: matrixType, data });
  const vector = (name: string, data: Float32Array) => out.push({ name, ne: [data.length], type: GGML_F32, data });

  const D = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  matrix('token_embd.weight', get(GLOBAL_TENSOR_NAMES.embed), c.vocabSize, D);
  vector('output_norm.weight', get(GLOBAL_TENSOR_NAMES.finalNorm));
  if (!c.tieWordEmbeddings) matrix('output.weight', get(GLOBAL_TENSOR_NAMES.lmHead), c.vocabSize, D);
  const factors = llama3RopeFactors(c);
  if (factors) vector('rope_freqs.weight', factors);
  for (let l = 0; l < c.numLayers; l++) {
    const n = layerTensorNames(l);
    const b = `blk.${l}`;
    vector(`${b}.attn_norm.weight`, get(n.inputNorm));
    matrix(`${b}.attn_q.weight`, permuteRopeRows(get(n.q), c.numHeads, c.headDim), qDim, D);
    matrix(`${b}.attn_k.weight`, permuteRopeRows(get(n.k), c.numKvHeads, c.headDim), kvDim, D);
    matrix(`${b}.attn_v.weight`, get(n.v), kvDim, D);
    if (c.attentionBias) {
      vector(`${b}.attn_q.bias`, permuteRopeRows(get(n.qBias), c.numHeads, c.headDim));
      vector(`${b}.attn_k.bias`, permuteRopeRows(get(n.kBias), c.numKvHeads, c.headDim));
      vector(`${b}.attn_v.bias`, get(n.vBias));
    }
    matrix(`${b}.attn_output.weight`, get(n.o), D, qDim);
    vector(`${b}.ffn_norm.weight`, get(n.postNorm));
    matrix(`${b}.ffn_gate.weight`, get(n.gate), c.intermediateSize, D);
    matrix(`${b}.ffn_up.weight`, get(n.up), c.intermediateSize, D);
    matrix(`${b}.ffn_down.weight`, get(n.down), D, c.intermediateSize);
  }
  for (const t of out) {
    const size = t.ne.reduce((a, b) => a * b, 1);
    if (t.data.length !== size)
      throw invalidInput(`writeGguf: ${t.name} has ${t.data.length} values, expected ${size}`);
  }
  return out;
}

/** A stand-in SentencePiece vocabulary laid out like Llama 2's: unk, bos, eos, the 256 byte fallbacks, then
 *  placeholders. The byte fallbacks are required: node-llama-cpp tokenizes a probe text while loading and
 *  llama.cpp's SPM tokenizer aborts the process (std::out_of_range) on a character it cannot encode. */
function dummyVocabulary(size: number): string[] {
  const firstPlaceholder = 3 + 256;
  if (size < firstPlaceholder) {
    throw invalidInput(`writeGguf: a dummy vocabulary needs at least ${firstPlaceholder} tokens; pass tokens`);
  }
  const special = ['<unk>', '<s>', '</s>'];
  return Array.from({ length: size }, (_, i) =>
    i < 3
      ? (special[i] as string)
      : i < firstPlaceholder
        ? `<0x${(i - 3).toString(16).toUpperCase().padStart(2, '0')}>`
        : `<tok${i}>`,
  );
}

function tokenizerMeta(c: ModelConfig, o: GgufOptions): [string, MetaValue][] {
  const bos = o.bosId ?? c.bosTokenId ?? 1;
  const eos = o.eosId ?? c.eosTokenIds[0] ?? 2;
  const tokens = o.tokens ?? dummyVocabulary(c.vocabSize);
  if (tokens.length !== c.vocabSize) throw invalidInput(`writeGguf: ${tokens.length} tokens for vocab ${c.vocabSize}`);
  const scores = o.scores ?? tokens.map(() => 0);
  if (scores.length !== tokens.length)
    throw invalidInput(`writeGguf: ${scores.length} scores for ${tokens.length} tokens`);
  const types = tokens.map((t, i) =>
    i === bos || i === eos
      ? TokenType.CONTROL
      : t === '<unk>'
        ? TokenType.UNKNOWN
        : /^<0x[0-9A-F]{2}>$/.test(t)
          ? TokenType.BYTE
          : TokenType.NORMAL,
  );
  const meta: [string, MetaValue][] = [
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { array: 'string', value: tokens }],
    ['tokenizer.ggml.scores', { array: 'f32', value: scores }],
    ['tokenizer.ggml.token_type', { array: 'i32', value: types }],
  ];
  if (bos < c.vocabSize) meta.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: bos }]);
  if (eos < c.vocabSize) meta.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: eos }]);
  return meta;
}

function modelMeta(c: ModelConfig, o: GgufOptions): [string, MetaValue][] {
  const u32 = (value: number) => ({ type: 'u32', value }) as const;
  const f32 = (value: number) => ({ type: 'f32', value }) as const;
  const meta: [string, MetaValue][] = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.alignment', u32(GGUF_ALIGNMENT)],
    ['general.file_type', u32(o.dtype === 'f16' ? 1 : 0)], // LLAMA_FTYPE_MOSTLY_F16 / ALL_F32
    ['llama.context_length', u32(c.maxPositions)],
    ['llama.embedding_length', u32(c.hiddenSize)],
    ['llama.block_count', u32(c.numLayers)],
    ['llama.feed_forward_length', u32(c.intermediateSize)],
    ['llama.attention.head_count', u32(c.numHeads)],
    ['llama.attention.head_count_kv', u32(c.numKvHeads)],
    ['llama.attention.key_length', u32(c.headDim)], // llama.cpp assumes hidden/heads without these
    ['llama.attention.value_length', u32(c.headDim)],
    ['llama.attention.layer_norm_rms_epsilon', f32(c.rmsNormEps)],
    ['llama.rope.freq_base', f32(c.ropeTheta)],
    ['llama.rope.dimension_count', u32(c.headDim)],
    ['llama.vocab_size', u32(c.vocabSize)],
  ];
  if (c.ropeScaling.type === 'linear') {
    meta.push(['llama.rope.scaling.type', { type: 'string', value: 'linear' }]);
    meta.push(['llama.rope.scaling.factor', f32(c.ropeScaling.factor)]);
  }
  return meta;
}

const alignUp = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;

/** Serializes `model` as a GGUF v3 file for llama.cpp's `llama` architecture. */
export function writeGguf(model: ReferenceModel, options: GgufOptions): Uint8Array {
  const c = model.config;
  if (c.headDim % 2) throw unsupportedModel(`writeGguf: odd head_dim ${c.headDim}`);
  const tensors = tensorsOut(model, options.dtype === 'f16' ? GGML_F16 : GGML_F32);
  const meta = [...modelMeta(c, options), ...tokenizerMeta(c, options)];

  const w = new ByteWriter();
  w.scalar('u32', GGUF_MAGIC);
  w.scalar('u32', GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const [key, value] of meta) writeMeta(w, key, value);
  const offsets: number[] = []; // relative to the aligned start of the data section
  let dataSize = 0;
  for (const t of tensors) {
    w.string(t.name);
    w.scalar('u32', t.ne.length);
    for (const d of t.ne) w.u64(d);
    w.scalar('u32', t.type);
    w.u64(dataSize);
    offsets.push(dataSize);
    dataSize = alignUp(dataSize + t.data.length * (t.type === GGML_F16 ? 2 : 4));
  }
  const dataStart = alignUp(w.length);
  const out = new Uint8Array(dataStart + dataSize); // zero padding everywhere
  out.set(w.bytes());
  const view = new DataView(out.buffer);
  tensors.forEach((t, i) => {
    const pos = dataStart + (offsets[i] as number);
    const d = t.data;
    if (t.type === GGML_F16) for (let j = 0; j < d.length; j++) view.setUint16(pos + 2 * j, f32ToF16Bits(d[j]!), true);
    else for (let j = 0; j < d.length; j++) view.setFloat32(pos + 4 * j, d[j]!, true);
  });
  return out;
}
