// A GGUF file as a model: the ModelConfig from its `llama.*` metadata, its tensors under their Hugging
// Face names checked against that config (like the safetensors path), and a reader that dequantizes a
// tensor to f32 (src/model/quant.ts) and moves the q/k rows from llama.cpp's interleaved RoPE pairs back
// to Hugging Face's rotate_half order (GGUF row 2i = HF row i, row 2i+1 = HF row i + headDim/2, per head).
import { modelFormat, unsupportedModel } from '../errors.js';
import { llama3RopeFactors } from './gguf.js';
import { type GgufFile, type GgufTensorInfo, type GgufValue, readGgufFile } from './gguf-read.js';
import { rotateHalfRows } from './llama2c.js';
import { dequantize, QUANT_TYPES } from './quant.js';
import type { FileSource } from './source.js';
import { expectedShapes, GLOBAL_TENSOR_NAMES, layerTensorNames, type ModelConfig, type RopeScaling } from './types.js';
import type { BlockReader, TensorReader } from './weights.js';

export interface GgufModel {
  gguf: GgufFile;
  config: ModelConfig;
  /** The file's tensors by Hugging Face name, with their HF shapes ([rows, cols]). */
  tensors: Map<string, GgufTensorInfo & { shape: number[] }>;
  /** One tensor as f32 in Hugging Face layout. */
  read: TensorReader;
  /** A Q8_0 or Q4_0 tensor's blocks with its rows in Hugging Face order; undefined for other types. */
  readBlocks: BlockReader;
}

/** Llama 3's rope scaling as Meta released it; a rope_freqs tensor is matched against it (see ropeScaling). */
const LLAMA3_ROPE = { lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };

/** GGUF tensor name of every Hugging Face tensor name a config can imply. */
export function ggufTensorName(hfName: string): string {
  const global: Record<string, string> = {
    [GLOBAL_TENSOR_NAMES.embed]: 'token_embd.weight',
    [GLOBAL_TENSOR_NAMES.finalNorm]: 'output_norm.weight',
    [GLOBAL_TENSOR_NAMES.lmHead]: 'output.weight',
  };
  if (global[hfName]) return global[hfName];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const n = m ? layerTensorNames(Number(m[1])) : undefined;
  const blk = `blk.${m?.[1]}`;
  const byName: Record<string, string> = n
    ? {
        [n.inputNorm]: `${blk}.attn_norm.weight`,
        [n.q]: `${blk}.attn_q.weight`,
        [n.k]: `${blk}.attn_k.weight`,
        [n.v]: `${blk}.attn_v.weight`,
        [n.o]: `${blk}.attn_output.weight`,
        [n.qBias]: `${blk}.attn_q.bias`,
        [n.kBias]: `${blk}.attn_k.bias`,
        [n.vBias]: `${blk}.attn_v.bias`,
        [n.postNorm]: `${blk}.ffn_norm.weight`,
        [n.gate]: `${blk}.ffn_gate.weight`,
        [n.up]: `${blk}.ffn_up.weight`,
        [n.down]: `${blk}.ffn_down.weight`,
      }
    : {};
  const name = byName[hfName];
  if (!name) throw modelFormat(`no GGUF name for tensor ${hfName}`);
  return name;
}

/** Reads the GGUF file `file` of `src` as a model: config, checked tensor index, tensor reader. */
export async function openGgufModel(src: FileSource, file: string): Promise<GgufModel> {
  const gguf = await readGgufFile(src, file);
  const where = `${src.id}/${file}`;
  const readRaw = async (info: GgufTensorInfo) =>
    dequantize(info.type, await src.read(file, info.offset, info.byteLength));
  const ropeFreqs = gguf.tensors.get('rope_freqs.weight');
  const config = ggufConfig(gguf, where, ropeFreqs ? await readRaw(ropeFreqs) : undefined);
  const tensors = new Map<string, GgufTensorInfo & { shape: number[] }>();
  for (const [hfName, shape] of expectedShapes(config)) {
    const name = ggufTensorName(hfName);
    const info = gguf.tensors.get(name);
    if (!info) throw modelFormat(`${where}: tensor ${name} is missing; expected shape [${[...shape].reverse()}]`);
    const hfShape = [...info.ne].reverse();
    if (hfShape.length !== shape.length || hfShape.some((d, i) => d !== shape[i])) {
      throw modelFormat(`${where}: tensor ${name}: expected ne [${[...shape].reverse()}], found [${info.ne}]`);
    }
    tensors.set(hfName, { ...info, shape });
  }
  const { numHeads, numKvHeads, headDim } = config;
  const ropeRows = new Map<string, number>();
  for (let l = 0; l < config.numLayers; l++) {
    const n = layerTensorNames(l);
    for (const [name, heads] of [
      [n.q, numHeads],
      [n.k, numKvHeads],
      [n.qBias, numHeads],
      [n.kBias, numKvHeads],
    ] as const) {
      ropeRows.set(name, heads);
    }
  }
  const read: TensorReader = async (hfName) => {
    const info = tensors.get(hfName);
    if (!info) throw modelFormat(`${where}: no tensor ${hfName}`);
    const values = await readRaw(info);
    const heads = ropeRows.get(hfName);
    if (heads === undefined) return values;
    return rotateHalfRows(values, heads, headDim, info.shape.length > 1 ? info.shape[1]! : 1);
  };
  const readBlocks: BlockReader = async (hfName) => {
    const info = tensors.get(hfName);
    if (!info || (info.type !== 'Q8_0' && info.type !== 'Q4_0')) return undefined;
    const bytes = await src.read(file, info.offset, info.byteLength);
    const heads = ropeRows.get(hfName);
    const format = info.type === 'Q8_0' ? 'q8_0' : 'q4_0';
    if (heads === undefined) return { format, blocks: bytes };
    const rowBytes = (info.ne[0]! / 32) * QUANT_TYPES[info.type].blockBytes;
    return { format, blocks: rotateHalfByteRows(bytes, heads, headDim, rowBytes) };
  };
  return { gguf, config, tensors, read, readBlocks };
}

/** rotateHalfRows over rows of `rowBytes` bytes (quantized blocks move with their row). */
function rotateHalfByteRows(bytes: Uint8Array, heads: number, headDim: number, rowBytes: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let t = 0; t < 2; t++) {
        const from = (h * headDim + 2 * i + t) * rowBytes;
        out.set(bytes.subarray(from, from + rowBytes), (h * headDim + t * half + i) * rowBytes);
      }
    }
  }
  return out;
}

/** ModelConfig of a GGUF file's metadata; `ropeFreqs`, the rope_freqs.weight tensor when there is one. */
export function ggufConfig(g: GgufFile, where: string, ropeFreqs?: Float32Array): ModelConfig {
  const meta = g.meta;
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') throw modelFormat(`${where}: general.architecture is missing`);
  if (arch !== 'llama') {
    throw unsupportedModel(`${where}: GGUF architecture "${arch}" is not supported (supported: llama)`);
  }
  const get = (key: string) => meta.get(`${arch}.${key}`);
  const int = (key: string, fallback?: number): number => {
    const v = get(key) ?? fallback;
    if (Array.isArray(v)) throw unsupportedModel(`${where}: ${arch}.${key} varies per layer, which is not implemented`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw modelFormat(`${where}: ${arch}.${key} must be a positive integer, found ${JSON.stringify(v)}`);
    }
    return v;
  };
  const positive = (key: string, fallback?: number): number => {
    const v = get(key) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw modelFormat(`${where}: ${arch}.${key} must be a positive number, found ${JSON.stringify(v)}`);
    }
    return v;
  };
  if (((get('expert_count') as number | undefined) ?? 0) > 0) {
    throw unsupportedModel(`${where}: a mixture of experts (${arch}.expert_count) is not implemented`);
  }
  const hiddenSize = int('embedding_length');
  const numHeads = int('attention.head_count');
  const numKvHeads = int('attention.head_count_kv', numHeads);
  if (numHeads % numKvHeads) {
    throw modelFormat(`${where}: head_count ${numHeads} is not a multiple of head_count_kv ${numKvHeads}`);
  }
  if (get('attention.key_length') === undefined && hiddenSize % numHeads) {
    throw modelFormat(`${where}: embedding_length ${hiddenSize} does not split into ${numHeads} heads`);
  }
  const headDim = int('attention.key_length', hiddenSize / numHeads);
  if (headDim % 2) throw modelFormat(`${where}: head dimension ${headDim} must be even for RoPE`);
  if (int('attention.value_length', headDim) !== headDim) {
    throw unsupportedModel(
      `${where}: value_length ${get('attention.value_length')} differs from key_length ${headDim}`,
    );
  }
  if (int('rope.dimension_count', headDim) !== headDim) {
    throw unsupportedModel(
      `${where}: rope over ${get('rope.dimension_count')} of ${headDim} head dimensions (partial rotary)`,
    );
  }
  const tokens = meta.get('tokenizer.ggml.tokens');
  const embed = g.tensors.get('token_embd.weight');
  const vocabSize = int('vocab_size', Array.isArray(tokens) ? tokens.length : embed?.ne[1]);
  const config: ModelConfig = {
    architecture: 'llama',
    hiddenSize,
    intermediateSize: int('feed_forward_length'),
    numLayers: int('block_count'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps: positive('attention.layer_norm_rms_epsilon'),
    ropeTheta: positive('rope.freq_base', 10000),
    ropeScaling: { type: 'none' },
    maxPositions: int('context_length'),
    tieWordEmbeddings: !g.tensors.has('output.weight'),
    attentionBias: g.tensors.has('blk.0.attn_q.bias'),
    bosTokenId: tokenId(meta, 'tokenizer.ggml.bos_token_id', where),
    eosTokenIds: [
      ...new Set(
        ['eos', 'eot', 'eom']
          .map((k) => tokenId(meta, `tokenizer.ggml.${k}_token_id`, where))
          .filter((id) => id !== undefined),
      ),
    ],
    torchDtype: g.tensors.get('blk.0.attn_q.weight')?.type,
  };
  config.ropeScaling = ropeScaling(config, get, where, ropeFreqs);
  return config;
}

function tokenId(meta: Map<string, GgufValue>, key: string, where: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw modelFormat(`${where}: ${key} must be a token id, found ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * rope.scaling.type none or linear (rope.scaling.factor); a rope_freqs.weight tensor (llama.cpp's per-frequency
 * divisors) is taken as Llama 3 scaling when it equals LLAMA3_ROPE's divisors for its largest factor.
 */
function ropeScaling(
  c: ModelConfig,
  get: (key: string) => GgufValue | undefined,
  where: string,
  ropeFreqs: Float32Array | undefined,
): RopeScaling {
  const type = get('rope.scaling.type') ?? 'none';
  let scaling: RopeScaling;
  if (type === 'none') scaling = { type: 'none' };
  else if (type === 'linear') {
    const factor = get('rope.scaling.factor');
    if (typeof factor !== 'number' || !(factor > 0)) {
      throw modelFormat(`${where}: rope.scaling.factor must be a positive number, found ${JSON.stringify(factor)}`);
    }
    scaling = factor === 1 ? { type: 'none' } : { type: 'linear', factor };
  } else throw unsupportedModel(`${where}: rope scaling ${JSON.stringify(type)} is not supported (none, linear)`);
  if (!ropeFreqs) return scaling;
  if (ropeFreqs.length !== c.headDim / 2) {
    throw modelFormat(`${where}: rope_freqs.weight has ${ropeFreqs.length} values for head dimension ${c.headDim}`);
  }
  if (ropeFreqs.every((v) => v === 1)) return scaling;
  const factor = Math.max(...ropeFreqs);
  const llama3: RopeScaling = { type: 'llama3', factor, ...LLAMA3_ROPE };
  const want = llama3RopeFactors({ ...c, ropeScaling: llama3 })!;
  if (scaling.type !== 'none' || want.some((v, i) => Math.abs(v - ropeFreqs[i]!) > 1e-6 * v)) {
    throw unsupportedModel(
      `${where}: rope_freqs.weight is not Llama 3's rope scaling; other per-frequency factors are not implemented`,
    );
  }
  return llama3;
}
