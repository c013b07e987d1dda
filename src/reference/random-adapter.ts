// Seeded random adapters for tests and benchmarks (no trained adapter is needed to prove the GPU engine
// exact against the oracle), in the project format, and the oracle's view of any adapter.

import { parseAdapterConfig } from '../adapters/config.js';
import type { AdapterMethod, CompMode } from '../adapters/types.js';
import {
  ADAPTER_FORMAT,
  ADAPTER_VERSION,
  type Adapter,
  embeddingRowsFor,
  LORA_TARGETS,
  type LoraMatrices,
  loraKey,
} from '../adapters/types.js';
import type { ModelConfig } from '../model/types.js';
import { mulberry32 } from '../util/random.js';
import { projectionDims, type ReferenceAdapter } from './llama.js';

export interface RandomAdapterOptions {
  method?: AdapterMethod;
  rank: number;
  alpha?: number;
  compTokens: number;
  mode?: CompMode;
  sink?: boolean;
  seed: number;
  /** RMS of the LoRA term (alpha / r) B A x for an input x of unit RMS; default 0.5. */
  scale?: number;
}

/**
 * A seeded random adapter for `model` (every target, no separators). A is uniform with unit-variance
 * outputs and B is scaled so the LoRA term has RMS `scale`: gated rows differ clearly from ungated ones
 * and stay O(1). Embedding rows are uniform(±sqrt(3 / hidden)), rows of norm about 1.
 */
export function randomAdapter(model: ModelConfig, o: RandomAdapterOptions): Adapter {
  const method = o.method ?? 'ccm';
  const mode = method === 'ccm' ? (o.mode ?? 'concat') : undefined;
  const config = parseAdapterConfig(
    {
      format: ADAPTER_FORMAT,
      version: ADAPTER_VERSION,
      method,
      rank: o.rank,
      alpha: o.alpha ?? 16,
      targets: [...LORA_TARGETS],
      compTokens: o.compTokens,
      ...(mode ? { mode } : {}),
      sink: o.sink ?? false,
      separators: {},
      embeddingRows: embeddingRowsFor(method, o.compTokens, mode),
      baseModel: {
        architecture: model.architecture,
        hiddenSize: model.hiddenSize,
        numLayers: model.numLayers,
        numHeads: model.numHeads,
        numKvHeads: model.numKvHeads,
        headDim: model.headDim,
        vocabSize: model.vocabSize,
      },
    },
    'randomAdapter',
  );
  const next = mulberry32(o.seed);
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (next() * 2 - 1) * bound);
  const dims = projectionDims(model);
  const { rank } = config;
  const bBound = ((o.scale ?? 0.5) / (config.alpha / rank)) * Math.sqrt(3 / rank);
  const lora = new Map<string, LoraMatrices>();
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const target of config.targets) {
      const [inDim, outDim] = dims[target];
      const a = uniform(rank * inDim, Math.sqrt(3 / inDim));
      const b = uniform(outDim * rank, bBound);
      lora.set(loraKey(layer, target), { a, b });
    }
  }
  const embeddings = uniform(config.embeddingRows * model.hiddenSize, Math.sqrt(3 / model.hiddenSize));
  return { config, lora, embeddings };
}

/** What referenceForward reads of an adapter: its rank, alpha, LoRA pairs and extra rows. */
export function referenceAdapter({ config, lora, embeddings }: Adapter): ReferenceAdapter {
  return { rank: config.rank, alpha: config.alpha, lora, embeddings };
}
