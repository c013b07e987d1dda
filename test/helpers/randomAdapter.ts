// Seeded random CPU adapters for reference tests: LoRA pairs on every q/k/v/o projection with B != 0 (a
// trained adapter, not the no-op initialisation) and `rows` extra embedding rows.
import type { ModelConfig } from '../../src/model/types.js';
import type { ReferenceAdapter } from '../../src/reference/llama.js';
import { randomArray } from './gpu.js';

export interface RandomAdapterOptions {
  rank: number;
  alpha: number;
  /** Extra embedding rows (ids vocab .. vocab + rows - 1). */
  rows: number;
  seed: number;
}

export function randomAdapter(c: ModelConfig, o: RandomAdapterOptions): ReferenceAdapter {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const D = c.hiddenSize;
  const dims = { q: [D, qDim], k: [D, kvDim], v: [D, kvDim], o: [qDim, D] } as const;
  const lora = new Map<string, { a: Float32Array; b: Float32Array }>();
  let seed = o.seed * 1000;
  for (let l = 0; l < c.numLayers; l++) {
    for (const [p, [inDim, outDim]] of Object.entries(dims)) {
      // A x has unit-variance entries; B scaled so the scaled update (alpha / rank) B A x is about half
      // the size of W x: visible in every output, without swamping the base model.
      const a = randomArray(o.rank * inDim, seed++, Math.sqrt(3 / inDim));
      const b = randomArray(outDim * o.rank, seed++, (0.5 * Math.sqrt(3 / o.rank)) / (o.alpha / o.rank));
      lora.set(`${l}.${p}`, { a, b });
    }
  }
  return { rank: o.rank, alpha: o.alpha, lora, embeddings: randomArray(o.rows * D, seed, Math.sqrt(3 / D)) };
}
