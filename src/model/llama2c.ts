// Converts a karpathy/llama2.c "v0" checkpoint (+ its tokenizer.bin) into an in-memory Hugging Face folder:
// config.json, model.safetensors (F32), generation_config.json, tokenizer.json, tokenizer_config.json.
// Format: 7 int32 header fields, then f32 arrays (see /work/shared/fixtures/README.md).

import { modelFormat, unsupportedModel } from '../errors.js';
import { type TensorToWrite, writeSafetensors } from './safetensors.js';
import { mergesFromScores } from './tokenizer.js';
import { GLOBAL_TENSOR_NAMES, layerTensorNames } from './types.js';

const HEADER_BYTES = 28;
/** llama2.c's newer exports (version 1/2) start with this magic ("ak42") instead of the v0 header. */
const EXPORT_MAGIC = 0x616b3432;
const BOS_ID = 1;
const EOS_ID = 2;
const SPECIAL_PIECES = ['<unk>', '<s>', '</s>'];
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  sharedClassifier: boolean;
  seqLen: number;
}

export function convertLlama2c(bin: Uint8Array, tokenizerBin?: Uint8Array): Record<string, string | Uint8Array> {
  const h = readHeader(bin);
  const tensors = readTensors(bin, h);
  const files: Record<string, string | Uint8Array> = {
    'config.json': JSON.stringify(hfConfig(h), null, 2),
    'generation_config.json': JSON.stringify({ bos_token_id: BOS_ID, eos_token_id: EOS_ID }, null, 2),
    'model.safetensors': writeSafetensors(tensors, { format: 'pt', source: 'llama2.c' }),
  };
  if (tokenizerBin) {
    const vocab = parseLlama2cTokenizer(tokenizerBin, h.vocabSize);
    files['tokenizer.json'] = JSON.stringify(hfTokenizer(vocab));
    files['tokenizer_config.json'] = JSON.stringify(
      {
        tokenizer_class: 'LlamaTokenizer',
        bos_token: '<s>',
        eos_token: '</s>',
        unk_token: '<unk>',
        add_bos_token: true,
        add_eos_token: false,
        clean_up_tokenization_spaces: false,
        model_max_length: h.seqLen,
      },
      null,
      2,
    );
  }
  return files;
}

function readHeader(bin: Uint8Array): Llama2cHeader {
  if (bin.byteLength < HEADER_BYTES) {
    throw modelFormat(`llama2.c checkpoint truncated: ${bin.byteLength} bytes, the header alone needs ${HEADER_BYTES}`);
  }
  const v = new DataView(bin.buffer, bin.byteOffset, HEADER_BYTES);
  if (v.getUint32(0, true) === EXPORT_MAGIC) {
    throw unsupportedModel(
      `llama2.c checkpoint: version ${v.getInt32(4, true)} export; only the legacy v0 format is supported`,
    );
  }
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  const f = names.map((_, i) => v.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = f as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  f.forEach((x, i) => {
    if (x === 0 || (x < 0 && names[i] !== 'vocab_size')) {
      throw modelFormat(`llama2.c checkpoint: invalid header, ${names[i]} = ${x} (header: ${f.join(', ')})`);
    }
  });
  if (dim % nHeads !== 0 || (dim / nHeads) % 2 !== 0) {
    throw modelFormat(`llama2.c checkpoint: dim ${dim} must split into ${nHeads} heads of even size`);
  }
  if (nHeads % nKvHeads !== 0)
    throw modelFormat(`llama2.c checkpoint: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), sharedClassifier: vocab > 0, seqLen };
}

function readTensors(bin: Uint8Array, h: Llama2cHeader): TensorToWrite[] {
  const { dim, hiddenDim: hid, nLayers: L, vocabSize: V } = h;
  const headDim = dim / h.nHeads;
  const kvDim = h.nKvHeads * headDim;
  const ropeTable = h.seqLen * headDim; // legacy freq_cis real + imag halves, skipped
  const floats =
    V * dim +
    L * (2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * hid * dim) +
    dim +
    ropeTable +
    (h.sharedClassifier ? 0 : V * dim);
  const expected = HEADER_BYTES + floats * 4;
  if (bin.byteLength < expected) {
    throw modelFormat(`llama2.c checkpoint truncated: ${bin.byteLength} bytes, the header implies ${expected}`);
  }
  if (bin.byteLength > expected) {
    throw modelFormat(
      `llama2.c checkpoint: ${bin.byteLength} bytes, the header implies ${expected} (not a v0 checkpoint?)`,
    );
  }
  const data = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  let pos = HEADER_BYTES;
  const take = (count: number) => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++, pos += 4) out[i] = data.getFloat32(pos, true);
    return out;
  };
  const perLayer = (rows: number, cols: number) => Array.from({ length: L }, () => take(rows * cols));

  const embed = take(V * dim);
  const rmsAtt = perLayer(1, dim);
  const wq = perLayer(dim, dim);
  const wk = perLayer(kvDim, dim);
  const wv = perLayer(kvDim, dim);
  const wo = perLayer(dim, dim);
  const rmsFfn = perLayer(1, dim);
  const w1 = perLayer(hid, dim);
  const w2 = perLayer(dim, hid);
  const w3 = perLayer(hid, dim);
  const rmsFinal = take(dim);
  pos += ropeTable * 4;
  const wcls = h.sharedClassifier ? undefined : take(V * dim);

  const t = (name: string, shape: number[], values: Float32Array): TensorToWrite => ({
    name,
    dtype: 'F32',
    shape,
    data: values,
  });
  const out = [t(GLOBAL_TENSOR_NAMES.embed, [V, dim], embed)];
  for (let i = 0; i < L; i++) {
    const n = layerTensorNames(i);
    out.push(
      t(n.inputNorm, [dim], rmsAtt[i]!),
      t(n.q, [dim, dim], rotateHalfRows(wq[i]!, h.nHeads, headDim, dim)),
      t(n.k, [kvDim, dim], rotateHalfRows(wk[i]!, h.nKvHeads, headDim, dim)),
      t(n.v, [kvDim, dim], wv[i]!),
      t(n.o, [dim, dim], wo[i]!),
      t(n.postNorm, [dim], rmsFfn[i]!),
      t(n.gate, [hid, dim], w1[i]!),
      t(n.up, [hid, dim], w3[i]!),
      t(n.down, [dim, hid], w2[i]!),
    );
  }
  out.push(t(GLOBAL_TENSOR_NAMES.finalNorm, [dim], rmsFinal));
  if (wcls) out.push(t(GLOBAL_TENSOR_NAMES.lmHead, [V, dim], wcls));
  return out;
}

/**
 * llama2.c rotates interleaved pairs (2i, 2i+1) of each head; HF Llama rotates (i, i + headDim/2). Moving row
 * 2i + t of every head to row t * headDim/2 + i (HF's convert script `permute`) makes both compute the same.
 */
export function rotateHalfRows(w: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let t = 0; t < 2; t++) {
        const from = (h * headDim + 2 * i + t) * cols;
        const to = (h * headDim + t * half + i) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

function hfConfig(h: Llama2cHeader) {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: h.dim,
    intermediate_size: h.hiddenDim,
    num_hidden_layers: h.nLayers,
    num_attention_heads: h.nHeads,
    num_key_value_heads: h.nKvHeads,
    vocab_size: h.vocabSize,
    max_position_embeddings: h.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    hidden_act: 'silu',
    tie_word_embeddings: h.sharedClassifier,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_ID,
    torch_dtype: 'float32',
  };
}

export interface Llama2cVocab {
  /** Token strings by id, as stored (UTF-8 decoded; spaces are plain spaces). */
  pieces: string[];
  scores: number[];
}

/** Parses llama2.c's tokenizer.bin: int32 max_token_length, then per token f32 score, int32 length, bytes. */
export function parseLlama2cTokenizer(bin: Uint8Array, vocabSize: number): Llama2cVocab {
  const v = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const truncated = (id: number) =>
    modelFormat(`llama2.c tokenizer truncated at token ${id} of ${vocabSize} (${bin.byteLength} bytes)`);
  if (bin.byteLength < 4) throw truncated(0);
  const maxLen = v.getInt32(0, true);
  const pieces: string[] = [];
  const scores: number[] = [];
  let pos = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (pos + 8 > bin.byteLength) throw truncated(id);
    const score = v.getFloat32(pos, true);
    const len = v.getInt32(pos + 4, true);
    pos += 8;
    if (len <= 0 || len > maxLen)
      throw modelFormat(`llama2.c tokenizer: token ${id} has length ${len} (max_token_length ${maxLen})`);
    if (pos + len > bin.byteLength) throw truncated(id);
    try {
      pieces.push(utf8.decode(bin.subarray(pos, pos + len)));
    } catch {
      throw modelFormat(`llama2.c tokenizer: token ${id} is not valid UTF-8`);
    }
    scores.push(score);
    pos += len;
  }
  if (pos !== bin.byteLength) {
    throw modelFormat(
      `llama2.c tokenizer: ${bin.byteLength - pos} bytes left after ${vocabSize} tokens (vocab size mismatch?)`,
    );
  }
  return { pieces, scores };
}

/**
 * A tokenizer.json that reproduces llama2.c's encoder: a dummy leading space, code points looked up in the vocab
 * (byte fallback otherwise), then repeatedly merging the adjacent pair whose concatenation is the highest-scoring
 * token. As BPE merges: one rule per way of splitting a token into two tokens, ranked by the token's score.
 * Spaces stay plain spaces (not "▁") so a literal "▁" in text is byte-encoded as llama2.c does.
 */
function hfTokenizer({ pieces, scores }: Llama2cVocab) {
  if (pieces.length < 3 + 256) throw modelFormat(`llama2.c tokenizer: ${pieces.length} tokens, expected at least 259`);
  const vocab: Record<string, number> = {};
  pieces.forEach((p, id) => {
    const piece = SPECIAL_PIECES[id] ?? p;
    if (id >= 3 && id < 259 && piece !== `<0x${(id - 3).toString(16).toUpperCase().padStart(2, '0')}>`) {
      throw modelFormat(
        `llama2.c tokenizer: token ${id} is ${JSON.stringify(piece)}, expected the byte token for ${id - 3}`,
      );
    }
    if (Object.hasOwn(vocab, piece))
      throw modelFormat(`llama2.c tokenizer: token ${id} duplicates token ${vocab[piece]}`);
    vocab[piece] = id;
  });
  const mergeable = (id: number | undefined): id is number =>
    id !== undefined && id >= 3 && !BYTE_PIECE.test(pieces[id]!);
  const merges = mergesFromScores(pieces, vocab, scores, mergeable);
  const special = (id: number) => ({
    id,
    content: SPECIAL_PIECES[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0), special(BOS_ID), special(EOS_ID)],
    normalizer: { type: 'Prepend', prepend: ' ' },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [BOS_ID], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
