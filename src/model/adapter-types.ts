// The words of the adapter format that adapter.ts (the project format) and adapter-peft.ts (the PEFT
// import) share: methods, COMP modes, LoRA targets, the base-model record and how tensors are named.
// Apart from both so that neither imports the other.

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
