// Puts an in-memory reference model (random or converted) on the test GPU without writing files.

import type { GpuAdapter } from '../../src/adapters/gpu.js';
import type { Gpu } from '../../src/gpu/device.js';
import { uploadTensor, type WeightFormat } from '../../src/gpu/tensor.js';
import type { LoadedModel } from '../../src/model/load.js';
import { uploadWeights } from '../../src/model/weights.js';
import type { ReferenceAdapter, ReferenceModel } from '../../src/reference/llama.js';
import { relDiff } from './checks.js';

let models = 0;

export async function gpuModel(gpu: Gpu, ref: ReferenceModel, format: WeightFormat): Promise<LoadedModel> {
  const owner = `test-model${++models}`;
  const read = async (name: string) => {
    const t = ref.tensors.get(name);
    if (!t) throw new Error(`reference model has no tensor ${name}`);
    return t;
  };
  const weights = await uploadWeights(gpu, ref.config, read, { format, owner });
  return { gpu, id: owner, config: ref.config, weights, tokenizer: undefined, owner };
}

/** Relative error of one logits row: max |a - b| / max |b|. */
export const relError = relDiff;

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}

/** Puts a CPU reference adapter on the test GPU (f32), as the forward pass consumes it. */
export function gpuAdapter(gpu: Gpu, ref: ReferenceAdapter, config: ReferenceModel['config']): GpuAdapter {
  const owner = `test-adapter${++models}`;
  const put = (label: string, shape: number[], values: Float32Array) =>
    uploadTensor(gpu, { tag: 'weights', owner, label, shape }, values);
  const layers = Array.from({ length: config.numLayers }, (_, l) => {
    const pairs: GpuAdapter['layers'][number] = {};
    for (const p of ['q', 'k', 'v', 'o'] as const) {
      const pair = ref.lora.get(`${l}.${p}`);
      if (!pair) continue;
      const inDim = pair.a.length / ref.rank;
      const outDim = pair.b.length / ref.rank;
      pairs[p] = {
        a: put(`${l}.${p}.a`, [ref.rank, inDim], pair.a),
        b: put(`${l}.${p}.b`, [outDim, ref.rank], pair.b),
      };
    }
    return pairs;
  });
  const rows = ref.embeddings.length / config.hiddenSize;
  return {
    rank: ref.rank,
    scale: ref.alpha / ref.rank,
    layers,
    embeddings: rows ? put('embeddings', [rows, config.hiddenSize], ref.embeddings) : undefined,
    owner,
    fingerprint: `random-${owner}`,
  };
}
