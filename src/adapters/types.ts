// The adapter format's vocabulary: the types every adapter file here shares (the config, the LoRA
// pairs, the rows), its constants, and the project format on disk. Adapters are the LoRA pairs and
// extra embedding rows that turn a base model into a context compressor (ccm.md: a row-gated LoRA + COMP
// rows; sentinel.md: a merged LoRA + CL/CR rows). docs/adapters.md describes the format for users.
//
// Project format, version 1: a folder holding adapter_config.json and adapter.safetensors.
//   adapter_config.json (camelCase):
//   { "format": "ccmem-adapter", "version": 1,
//     "method": "ccm" | "sentinel" | "lora",
//         ccm: LoRA applied only to COMP rows (never merged), plus COMP rows;
//         sentinel: ungated LoRA merged into W at load, plus the CL and CR rows;
//         lora: ungated LoRA merged into W at load, no rows (the base correction LLaMA-1 CCM adapters need);
//     "rank": r, "alpha": a,                the LoRA term is (a / r) B (A x)
//     "targets": ["q", "k", "v", "o"],      attention projections with a LoRA pair (a non-empty subset)
//     "compTokens": n,                      ccm: COMP tokens per step; sentinel: 1 (one CR slot per span); lora: 0
//     "mode": "concat" | "merge",           ccm only
//     "sink": false,                        ccm: the memory keeps the BOS slot as slot 0
//     "separators": { "user": [ids], ... }, named token sequences (tokenized without BOS) that join chunks or
//                                           turns, e.g. "turn", "user", "assistant"; {} when none is needed
//     "embeddingRows": m,                   ccm: n (concat) or 2n (merge: n COMP rows, then n SUM rows);
//                                           sentinel: 2 (CL, CR); lora: 0. Token id vocabSize + k reads row k.
//     "baseModel": { "hiddenSize", "numLayers" (required), "architecture", "numHeads", "numKvHeads",
//                    "headDim", "vocabSize", "name" (written when known, checked when present) } }
//   adapter.safetensors (F32, F16 or BF16; writeAdapter writes F32), for every layer i and target t:
//     layers.{i}.{t}.lora_A [r, in]   layers.{i}.{t}.lora_B [out, r]   embeddings [m, hiddenSize] (when m > 0)
//   and no other tensor. in/out are the projection's: q [H*hd <- D], k, v [Hkv*hd <- D], o [D <- H*hd].

export type AdapterMethod = 'ccm' | 'sentinel' | 'lora';
export type CompMode = 'concat' | 'merge';
export type LoraTarget = 'q' | 'k' | 'v' | 'o';

export interface BaseModelInfo {
  architecture?: string;
  hiddenSize: number;
  numLayers: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  vocabSize?: number;
  name?: string;
}

export interface TensorNaming {
  lora(layer: number, target: LoraTarget, matrix: 'A' | 'B'): string;
  /** Accepted names of the embedding rows (at most one may be present). */
  embeddings: readonly string[];
}

export const ADAPTER_FORMAT = 'ccmem-adapter';
export const ADAPTER_VERSION = 1;
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter.safetensors';
export const LORA_TARGETS: readonly LoraTarget[] = ['q', 'k', 'v', 'o'];

export interface AdapterConfig {
  format: typeof ADAPTER_FORMAT;
  version: typeof ADAPTER_VERSION;
  method: AdapterMethod;
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  compTokens: number;
  /** ccm only. */
  mode?: CompMode;
  sink: boolean;
  separators: Record<string, number[]>;
  embeddingRows: number;
  baseModel: BaseModelInfo;
}

export interface LoraMatrices {
  /** [rank, in], row-major */
  a: Float32Array;
  /** [out, rank], row-major */
  b: Float32Array;
}

export interface Adapter {
  config: AdapterConfig;
  /** Keyed by loraKey(layer, target): every layer of the base model, every target. */
  lora: Map<string, LoraMatrices>;
  /** [embeddingRows, hiddenSize], row-major; empty when there are no rows. */
  embeddings: Float32Array;
}

export const loraKey = (layer: number, target: LoraTarget) => `${layer}.${target}`;

/** The embedding rows a method needs: COMP rows (then SUM rows for merge), CL and CR, or none. */
export function embeddingRowsFor(method: AdapterMethod, compTokens: number, mode: CompMode | undefined): number {
  if (method === 'ccm') return mode === 'merge' ? 2 * compTokens : compTokens;
  return method === 'sentinel' ? 2 : 0;
}
