// An adapter as the forward pass sees it: per-layer low-rank pairs on the attention projections, applied
// only to rows whose gate is 1 (CCM's conditional LoRA), and extra embedding rows for ids >= vocab
// (COMP / sentinel tokens). Built by src/model/adapter.ts from the adapter files.
import type { Tensor } from '../gpu/tensor.js';

export interface LoraPair {
  /** f32 [rank, in] */
  a: Tensor;
  /** f32 [out, rank] */
  b: Tensor;
}

export interface GpuAdapter {
  rank: number;
  /** alpha / rank */
  scale: number;
  layers: { q?: LoraPair; k?: LoraPair; v?: LoraPair; o?: LoraPair }[];
  /** f32 [rows, hidden]: the embedding of id vocab + i is row i. */
  embeddings: Tensor | undefined;
  /** The ledger owner of these tensors. */
  owner: string;
  /** Identifies the adapter's contents (e.g. a digest of its files): memory exports made with another adapter are refused. */
  fingerprint: string | undefined;
}
