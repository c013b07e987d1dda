// GGUF v3 export of a model held as Hugging Face-named f32 tensors, for llama.cpp (the native peer the
// tests compare against) and for the tests of ccmem's own GGUF reader. Follows llama.cpp's
// convert_hf_to_gguf.py for architecture `llama`: q/k rows are permuted from HF's rotate_half layout to
// llama.cpp's interleaved RoPE pairs, 1-D tensors stay F32, llama3 rope scaling becomes the
// `rope_freqs.weight` divisor tensor. Matrices are F32, F16, or quantized with llama.cpp's reference
// Q8_0 / Q4_0 quantizers (src/model/quant.ts). encodeGguf writes any header and raw tensor bytes.
import { invalidInput, unsupportedModel } from '../errors.js';
import { f32ToF16Bits } from '../gpu/half.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE } from './gguf-read.js';
import { QUANT_TYPES, type QuantType, quantizeQ4_0, quantizeQ8_0 } from './quant.js';
import { GLOBAL_TENSOR_NAMES, layerTensorNames, type ModelConfig } from './types.js';

/** A model as Hugging Face-named f32 tensors (what the reference forward and the converters hold). */
export interface ModelTensors {
  config: ModelConfig;
  tensors: Map<string, Float32Array>;
}

export type GgufDType = 'f32' | 'f16' | 'q8_0' | 'q4_0';

export interface GgufOptions {
  dtype: GgufDType; // the matrices' type; norms, biases and rope_freqs are always F32
  tokens?: string[]; // default: a dummy vocabulary (the peer is driven by ids)
  scores?: number[];
  /** 'llama' (SentencePiece, default) or 'gpt2' (byte-level BPE; needs merges). */
  tokenizerModel?: 'llama' | 'gpt2';
  merges?: string[];
  /** tokenizer.ggml.pre of a gpt2 vocabulary (the pre-tokenizer's name); default 'default'. */
  pre?: string;
  chatTemplate?: string;
  bosId?: number; // default config.bosTokenId ?? 1
  eosId?: number; // default config.eosTokenIds[0] ?? 2
}

const GGUF_VERSION = 3;
const MATRIX_TYPE: Record<GgufDType, QuantType> = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' };
/** llama.cpp's general.file_type (enum llama_ftype) of each dtype. */
const FILE_TYPE: Record<GgufDType, number> = { f32: 0, f16: 1, q8_0: 7, q4_0: 2 };
/** llama.cpp token types. */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

type Scalar = 'u32' | 'i32' | 'f32' | 'string' | 'bool' | 'u64';
export type MetaValue =
  | { type: Scalar; value: number | string | boolean }
  | { array: Scalar; value: (number | string)[] };

/** One tensor as it goes into the file: raw bytes of ggml type `type` (a code; any, for tests). */
export interface RawTensor {
  name: string;
  /** ggml order: ne[0] is the contiguous (column) dimension. */
  ne: number[];
  type: number;
  bytes: Uint8Array;
}

interface TensorOut {
  name: string;
  ne: number[];
  type: QuantType;
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
  scalar(kind: Scalar, v: number | string | boolean): void {
    if (kind === 'string') {
      this.string(v as string);
      return;
    }
    if (kind === 'u64') {
      this.u64(v as number);
      return;
    }
    if (kind === 'bool') {
      const pos = this.at(1);
      this.view.setUint8(pos, v ? 1 : 0);
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
    w.scalar('u32', GGUF_VALUE[m.type]);
    w.scalar(m.type, m.value);
    return;
  }
  w.scalar('u32', GGUF_VALUE.array);
  w.scalar('u32', GGUF_VALUE[m.array]);
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
export function llama3RopeFactors(c: ModelConfig): Float32Array | undefined {
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

function tensorsOut(model: ModelTensors, matrixType: QuantType): TensorOut[] {
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
  const vector = (name: string, data: Float32Array) => out.push({ name, ne: [data.length], type: 'F32', data });

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
  const gpt2 = o.tokenizerModel === 'gpt2';
  if (gpt2 && (!o.tokens || !o.merges)) throw invalidInput('writeGguf: a gpt2 vocabulary needs tokens and merges');
  const tokens = o.tokens ?? dummyVocabulary(c.vocabSize);
  if (tokens.length !== c.vocabSize) throw invalidInput(`writeGguf: ${tokens.length} tokens for vocab ${c.vocabSize}`);
  const scores = o.scores ?? tokens.map(() => 0);
  if (scores.length !== tokens.length)
    throw invalidInput(`writeGguf: ${scores.length} scores for ${tokens.length} tokens`);
  const types = tokens.map((t, i) =>
    i === bos || i === eos
      ? TokenType.CONTROL
      : gpt2
        ? TokenType.NORMAL
        : t === '<unk>'
          ? TokenType.UNKNOWN
          : /^<0x[0-9A-F]{2}>$/.test(t)
            ? TokenType.BYTE
            : TokenType.NORMAL,
  );
  const meta: [string, MetaValue][] = [
    ['tokenizer.ggml.model', { type: 'string', value: gpt2 ? 'gpt2' : 'llama' }],
    ['tokenizer.ggml.tokens', { array: 'string', value: tokens }],
    ['tokenizer.ggml.token_type', { array: 'i32', value: types }],
  ];
  if (gpt2) {
    meta.push(['tokenizer.ggml.pre', { type: 'string', value: o.pre ?? 'default' }]);
    meta.push(['tokenizer.ggml.merges', { array: 'string', value: o.merges! }]);
  } else meta.push(['tokenizer.ggml.scores', { array: 'f32', value: scores }]);
  if (bos < c.vocabSize) meta.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: bos }]);
  if (eos < c.vocabSize) meta.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: eos }]);
  if (o.chatTemplate !== undefined) meta.push(['tokenizer.chat_template', { type: 'string', value: o.chatTemplate }]);
  return meta;
}

function modelMeta(c: ModelConfig, o: GgufOptions): [string, MetaValue][] {
  const u32 = (value: number) => ({ type: 'u32', value }) as const;
  const f32 = (value: number) => ({ type: 'f32', value }) as const;
  const meta: [string, MetaValue][] = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.alignment', u32(GGUF_DEFAULT_ALIGNMENT)],
    ['general.file_type', u32(FILE_TYPE[o.dtype])],
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

/** The bytes of `t` in its type: F32, F16, or quantized blocks of 32 along each row. */
function tensorBytes(t: TensorOut): Uint8Array {
  const d = t.data;
  if (t.type === 'Q8_0' || t.type === 'Q4_0') {
    if (t.ne[0]! % 32)
      throw unsupportedModel(`writeGguf: ${t.name} has rows of ${t.ne[0]}, not whole ${t.type} blocks`);
    return t.type === 'Q8_0' ? quantizeQ8_0(d) : quantizeQ4_0(d);
  }
  const out = new Uint8Array(d.length * QUANT_TYPES[t.type].blockBytes);
  const view = new DataView(out.buffer);
  if (t.type === 'F16') for (let j = 0; j < d.length; j++) view.setUint16(2 * j, f32ToF16Bits(d[j]!), true);
  else for (let j = 0; j < d.length; j++) view.setFloat32(4 * j, d[j]!, true);
  return out;
}

/** Serializes `model` as a GGUF v3 file for llama.cpp's `llama` architecture. */
export function writeGguf(model: ModelTensors, options: GgufOptions): Uint8Array {
  const c = model.config;
  if (c.headDim % 2) throw unsupportedModel(`writeGguf: odd head_dim ${c.headDim}`);
  const tensors = tensorsOut(model, MATRIX_TYPE[options.dtype]).map((t) => ({
    name: t.name,
    ne: t.ne,
    type: QUANT_TYPES[t.type].code,
    bytes: tensorBytes(t),
  }));
  return encodeGguf(ggufMetadata(c, options), tensors);
}

/** The key/values writeGguf writes for `config` (tests pair them with tensors of their own). */
export function ggufMetadata(config: ModelConfig, options: GgufOptions): [string, MetaValue][] {
  return [...modelMeta(config, options), ...tokenizerMeta(config, options)];
}

/** A GGUF v3 file of these key/values and tensors (data aligned to general.alignment, default 32). */
export function encodeGguf(meta: [string, MetaValue][], tensors: RawTensor[]): Uint8Array {
  const given = meta.find(([key]) => key === 'general.alignment')?.[1].value;
  const alignment = typeof given === 'number' ? given : GGUF_DEFAULT_ALIGNMENT;
  const alignUp = (n: number) => Math.ceil(n / alignment) * alignment;
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
    dataSize = alignUp(dataSize + t.bytes.byteLength);
  }
  const dataStart = alignUp(w.length);
  const out = new Uint8Array(dataStart + dataSize); // zero padding everywhere
  out.set(w.bytes());
  tensors.forEach((t, i) => {
    out.set(t.bytes, dataStart + offsets[i]!);
  });
  return out;
}
