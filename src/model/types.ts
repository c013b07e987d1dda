// The normalized model description every layer below the loader works from. Parsed from a Hugging Face
// config.json by src/model/config.ts; produced directly by the llama2.c converter.

export type Architecture = 'llama' | 'mistral' | 'qwen2';

export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number; // D
  intermediateSize: number; // F
  numLayers: number;
  numHeads: number; // Hq
  numKvHeads: number; // Hkv (GQA when < numHeads, MQA when 1)
  headDim: number; // usually hiddenSize / numHeads; config.head_dim when given
  vocabSize: number; // V
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositions: number; // max_position_embeddings
  tieWordEmbeddings: boolean; // LM head reads embed_tokens
  attentionBias: boolean; // q/k/v biases (qwen2)
  bosTokenId: number | undefined;
  eosTokenIds: number[]; // config.json eos ids, extended by generation_config.json
  /** Weight dtype on disk ('F32' | 'F16' | 'BF16'), informational. */
  torchDtype: string | undefined;
}

/** Hugging Face tensor names of one decoder layer. */
export const layerTensorNames = (i: number) => ({
  inputNorm: `model.layers.${i}.input_layernorm.weight`,
  q: `model.layers.${i}.self_attn.q_proj.weight`,
  k: `model.layers.${i}.self_attn.k_proj.weight`,
  v: `model.layers.${i}.self_attn.v_proj.weight`,
  o: `model.layers.${i}.self_attn.o_proj.weight`,
  qBias: `model.layers.${i}.self_attn.q_proj.bias`,
  kBias: `model.layers.${i}.self_attn.k_proj.bias`,
  vBias: `model.layers.${i}.self_attn.v_proj.bias`,
  postNorm: `model.layers.${i}.post_attention_layernorm.weight`,
  gate: `model.layers.${i}.mlp.gate_proj.weight`,
  up: `model.layers.${i}.mlp.up_proj.weight`,
  down: `model.layers.${i}.mlp.down_proj.weight`,
});

export const GLOBAL_TENSOR_NAMES = {
  embed: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
} as const;

/** The shape every tensor must have under `config` (used to check files against config.json). */
export function expectedShapes(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  m.set(GLOBAL_TENSOR_NAMES.embed, [c.vocabSize, c.hiddenSize]);
  m.set(GLOBAL_TENSOR_NAMES.finalNorm, [c.hiddenSize]);
  if (!c.tieWordEmbeddings) m.set(GLOBAL_TENSOR_NAMES.lmHead, [c.vocabSize, c.hiddenSize]);
  for (let i = 0; i < c.numLayers; i++) {
    const n = layerTensorNames(i);
    m.set(n.inputNorm, [c.hiddenSize]);
    m.set(n.q, [qDim, c.hiddenSize]);
    m.set(n.k, [kvDim, c.hiddenSize]);
    m.set(n.v, [kvDim, c.hiddenSize]);
    m.set(n.o, [c.hiddenSize, qDim]);
    if (c.attentionBias) {
      m.set(n.qBias, [qDim]);
      m.set(n.kBias, [kvDim]);
      m.set(n.vBias, [kvDim]);
    }
    m.set(n.postNorm, [c.hiddenSize]);
    m.set(n.gate, [c.intermediateSize, c.hiddenSize]);
    m.set(n.up, [c.intermediateSize, c.hiddenSize]);
    m.set(n.down, [c.hiddenSize, c.intermediateSize]);
  }
  return m;
}
