// Seeded random Llama-family models for end-to-end tests: weights scaled by 1/sqrt(fan_in) so activations
// stay O(1) and logits vary enough that greedy decoding is not constant; plus writers for a Hugging Face
// model folder (config.json + model.safetensors).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { roundToF16 } from '../../src/gpu/half.js';
import { type SafetensorsDType, writeSafetensors } from '../../src/model/safetensors.js';
import { expectedShapes, type ModelConfig, type RopeScaling } from '../../src/model/types.js';
import type { ReferenceModel } from '../../src/reference/llama.js';
import { randomArray } from './gpu.js';

export interface RandomModelOptions {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  seed: number;
  headDim?: number; // default hidden / heads
  attentionBias?: boolean; // q/k/v biases (the model is then a qwen2)
  tie?: boolean; // default false
  ropeTheta?: number; // default 10000
  ropeScaling?: RopeScaling; // default none
  maxPositions?: number; // default 256
}

export function randomModel(o: RandomModelOptions): ReferenceModel {
  const config: ModelConfig = {
    architecture: o.attentionBias ? 'qwen2' : 'llama',
    hiddenSize: o.hidden,
    intermediateSize: o.intermediate,
    numLayers: o.layers,
    numHeads: o.heads,
    numKvHeads: o.kvHeads,
    headDim: o.headDim ?? o.hidden / o.heads,
    vocabSize: o.vocab,
    rmsNormEps: 1e-5,
    ropeTheta: o.ropeTheta ?? 10000,
    ropeScaling: o.ropeScaling ?? { type: 'none' },
    maxPositions: o.maxPositions ?? 256,
    tieWordEmbeddings: o.tie ?? false,
    attentionBias: o.attentionBias ?? false,
    bosTokenId: 1,
    eosTokenIds: [2],
    torchDtype: 'F32',
  };
  const tensors = new Map<string, Float32Array>();
  let seed = o.seed * 1000;
  for (const [name, shape] of expectedShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const s = seed++;
    if (shape.length === 2) {
      // uniform(-a, a) has variance a^2/3: a = sqrt(3 / fan_in) gives outputs of unit variance. The embedding
      // (also the tied LM head) gets the same scale, so a token's own row stays small in the residual stream
      // and does not win every tied-head argmax (greedy output would repeat the input token forever).
      tensors.set(name, randomArray(n, s, Math.sqrt(3 / (shape[1] as number))));
    } else if (name.endsWith('norm.weight')) {
      tensors.set(
        name,
        randomArray(n, s, 0.25).map((v) => 1 + v),
      ); // near 1, not all equal
    } else {
      tensors.set(name, randomArray(n, s, 0.5)); // biases
    }
  }
  return { config, tensors };
}

/** Every tensor rounded to the nearest f16 (what an F16 file holds). */
export function roundModelToF16(m: ReferenceModel): ReferenceModel {
  const tensors = new Map([...m.tensors].map(([name, t]) => [name, roundToF16(t)] as const));
  return { config: { ...m.config, torchDtype: 'F16' }, tensors };
}

const TORCH_DTYPE: Record<SafetensorsDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

function hfConfig(c: ModelConfig, dtype: SafetensorsDType): Record<string, unknown> {
  const s = c.ropeScaling;
  const ropeScaling =
    s.type === 'none'
      ? null
      : s.type === 'linear'
        ? { rope_type: 'linear', factor: s.factor }
        : {
            rope_type: 'llama3',
            factor: s.factor,
            low_freq_factor: s.lowFreqFactor,
            high_freq_factor: s.highFreqFactor,
            original_max_position_embeddings: s.originalMaxPositions,
          };
  // HF llama's attention_bias also adds an o_proj bias; q/k/v-only biases are what qwen2 means.
  const qwen2 = c.attentionBias;
  return {
    architectures: [qwen2 ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: qwen2 ? 'qwen2' : 'llama',
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScaling,
    max_position_embeddings: c.maxPositions,
    tie_word_embeddings: c.tieWordEmbeddings,
    ...(qwen2 ? {} : { attention_bias: false }),
    hidden_act: 'silu',
    bos_token_id: c.bosTokenId ?? null,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    torch_dtype: TORCH_DTYPE[dtype],
  };
}

/** Writes `dir`/config.json and `dir`/model.safetensors (every tensor in `dtype`). */
export function writeModelDir(dir: string, model: ReferenceModel, dtype: SafetensorsDType): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfig(model.config, dtype), null, 2));
  const tensors = [...expectedShapes(model.config)].map(([name, shape]) => {
    const data = model.tensors.get(name);
    if (!data) throw new Error(`writeModelDir: the model has no tensor ${name}`);
    return { name, dtype, shape, data };
  });
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors, { format: 'pt' }));
}
