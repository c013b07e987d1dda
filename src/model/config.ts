// Hugging Face config.json (+ optional generation_config.json) -> ModelConfig. Only what the engine
// implements is accepted: anything that would silently change the model's math is rejected.

import { modelFormat, unsupportedModel } from '../errors.js';
import type { FileSource } from './source.js';
import type { Architecture, ModelConfig, RopeScaling } from './types.js';

type Json = Record<string, unknown>;

const ARCHITECTURES: readonly Architecture[] = ['llama', 'mistral', 'qwen2'];
/** transformers' class defaults for max_position_embeddings when a config omits it. */
const DEFAULT_MAX_POSITIONS: Record<Architecture, number> = { llama: 2048, mistral: 131072, qwen2: 32768 };
const TORCH_DTYPES: Record<string, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const present = (v: unknown) => v !== undefined && v !== null;

export function parseConfig(config: unknown, generationConfig?: unknown): ModelConfig {
  if (!isObject(config)) throw modelFormat('config.json: expected a JSON object');
  const c = config;
  const type = c.model_type;
  if (typeof type !== 'string') throw modelFormat(`config.json: missing "model_type" (found ${JSON.stringify(type)})`);
  if (!ARCHITECTURES.includes(type as Architecture)) {
    throw unsupportedModel(
      `config.json: model_type "${type}" is not supported (supported: ${ARCHITECTURES.join(', ')})`,
    );
  }
  const architecture = type as Architecture;
  const reject = (why: string) => unsupportedModel(`config.json (model_type "${type}"): ${why}`);

  const hiddenSize = positiveInt(c, 'hidden_size');
  const numHeads = positiveInt(c, 'num_attention_heads');
  const numKvHeads = present(c.num_key_value_heads) ? positiveInt(c, 'num_key_value_heads') : numHeads;
  if (numHeads % numKvHeads !== 0) {
    throw modelFormat(
      `config.json: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  let headDim: number;
  if (present(c.head_dim)) headDim = positiveInt(c, 'head_dim');
  else if (hiddenSize % numHeads === 0) headDim = hiddenSize / numHeads;
  else throw modelFormat(`config.json: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  if (headDim % 2 !== 0) throw modelFormat(`config.json: head dimension ${headDim} must be even for RoPE`);

  const maxPositions = present(c.max_position_embeddings)
    ? positiveInt(c, 'max_position_embeddings')
    : DEFAULT_MAX_POSITIONS[architecture];

  if (present(c.hidden_act) && c.hidden_act !== 'silu')
    throw reject(`hidden_act "${String(c.hidden_act)}" (only silu)`);
  if (c.mlp_bias === true) throw reject('mlp_bias true is not implemented');
  if (present(c.quantization_config)) throw reject('quantized checkpoints (quantization_config) are not supported');
  const slidingWindowActive = architecture === 'qwen2' ? c.use_sliding_window === true : present(c.sliding_window);
  if (slidingWindowActive && present(c.sliding_window)) {
    const window = positiveInt(c, 'sliding_window');
    if (window < maxPositions) {
      throw reject(
        `sliding_window ${window} < max_position_embeddings ${maxPositions}: sliding-window attention is not implemented`,
      );
    }
  }

  const attentionBias = architecture === 'qwen2' || optionalBool(c, 'attention_bias', false);
  if (architecture === 'mistral' && attentionBias) throw reject('attention_bias true is not a mistral layout');

  const generation = isObject(generationConfig) ? generationConfig : {};
  const eosTokenIds = [
    ...new Set([
      ...tokenIds(c, 'eos_token_id', 'config.json'),
      ...tokenIds(generation, 'eos_token_id', 'generation_config.json'),
    ]),
  ];
  const bos = [
    ...tokenIds(c, 'bos_token_id', 'config.json'),
    ...tokenIds(generation, 'bos_token_id', 'generation_config.json'),
  ];
  const dtype = c.torch_dtype ?? c.dtype;

  return {
    architecture,
    hiddenSize,
    intermediateSize: positiveInt(c, 'intermediate_size'),
    numLayers: positiveInt(c, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt(c, 'vocab_size'),
    rmsNormEps: present(c.rms_norm_eps) ? positiveNumber(c, 'rms_norm_eps') : 1e-6,
    ropeTheta: present(c.rope_theta) ? positiveNumber(c, 'rope_theta') : 10000,
    ropeScaling: ropeScaling(c.rope_scaling, reject),
    maxPositions,
    tieWordEmbeddings: optionalBool(c, 'tie_word_embeddings', false),
    attentionBias,
    bosTokenId: bos[0],
    eosTokenIds,
    torchDtype: typeof dtype === 'string' ? (TORCH_DTYPES[dtype] ?? dtype) : undefined,
  };
}

export async function loadConfig(src: FileSource): Promise<ModelConfig> {
  const config = await src.json('config.json');
  const generation = (await src.exists('generation_config.json'))
    ? await src.json('generation_config.json')
    : undefined;
  try {
    return parseConfig(config, generation);
  } catch (e) {
    if (e instanceof Error) e.message = `${src.id}/${e.message}`;
    throw e;
  }
}

function ropeScaling(raw: unknown, reject: (why: string) => Error): RopeScaling {
  if (!present(raw)) return { type: 'none' };
  if (!isObject(raw))
    throw modelFormat(`config.json: rope_scaling must be an object or null, found ${JSON.stringify(raw)}`);
  const kind = raw.rope_type ?? raw.type;
  const field = (name: string) => positiveNumber(raw, name, 'rope_scaling.');
  switch (kind) {
    case 'default':
      return { type: 'none' };
    case 'linear':
      return { type: 'linear', factor: field('factor') };
    case 'llama3':
      return {
        type: 'llama3',
        factor: field('factor'),
        lowFreqFactor: field('low_freq_factor'),
        highFreqFactor: field('high_freq_factor'),
        originalMaxPositions: field('original_max_position_embeddings'),
      };
    default:
      throw reject(`rope_scaling type ${JSON.stringify(kind)} is not supported (linear, llama3)`);
  }
}

function positiveNumber(o: Json, key: string, prefix = ''): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw modelFormat(`config.json: ${prefix}${key} must be a positive number, found ${JSON.stringify(v)}`);
  }
  return v;
}

function positiveInt(o: Json, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw modelFormat(`config.json: ${key} must be a positive integer, found ${JSON.stringify(v)}`);
  }
  return v;
}

function optionalBool(o: Json, key: string, fallback: boolean): boolean {
  const v = o[key];
  if (!present(v)) return fallback;
  if (typeof v !== 'boolean')
    throw modelFormat(`config.json: ${key} must be true or false, found ${JSON.stringify(v)}`);
  return v;
}

/** A token id field: absent/null, one id, or a list of ids. */
function tokenIds(o: Json, key: string, file: string): number[] {
  const v = o[key];
  if (!present(v)) return [];
  const ids = Array.isArray(v) ? v : [v];
  if (!ids.every((id) => Number.isSafeInteger(id) && id >= 0)) {
    throw modelFormat(`${file}: ${key} must be a token id or a list of ids, found ${JSON.stringify(v)}`);
  }
  return ids as number[];
}
