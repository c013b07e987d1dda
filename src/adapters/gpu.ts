// The GPU side of adapters. GpuAdapter is an adapter as the forward pass sees it: per-layer low-rank
// pairs on the attention projections, applied only to rows whose gate is 1 (CCM's conditional LoRA), and
// extra embedding rows for ids >= vocab (COMP / sentinel tokens). uploadAdapter builds it from a ccm
// adapter's row-gated LoRA pairs and any adapter's extra rows. An ungated LoRA (sentinel, lora) is not
// uploaded: mergeLoraReader folds it into the base weights as they stream to the GPU.
import { deviceLimit, invalidInput, shapeError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { type Tensor, uploadTensor } from '../gpu/tensor.js';
import { layerTensorNames } from '../model/types.js';
import type { TensorReader } from '../model/weights.js';
import { adapterFingerprint, adapterTensors } from './tensors.js';
import { type Adapter, loraKey } from './types.js';

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

/**
 * Uploads `adapter` as f32 tensors tagged 'weights' under `owner` (released with the owner). For a
 * sentinel or lora adapter only the embedding rows are uploaded and rank and scale are 0: its LoRA
 * must go through mergeLoraReader when the model loads. On failure nothing made here stays allocated.
 */
export async function uploadAdapter(gpu: Gpu, adapter: Adapter, owner: string): Promise<GpuAdapter> {
  const tensors = adapterTensors(adapter);
  const { config } = adapter;
  const gated = config.method === 'ccm';
  const layers: GpuAdapter['layers'] = gated ? Array.from({ length: config.baseModel.numLayers }, () => ({})) : [];
  let embeddings: Tensor | undefined;
  const made: Tensor[] = [];
  const pendingA = new Map<string, Tensor>();
  let failure: unknown;
  gpu.device.pushErrorScope('out-of-memory');
  try {
    for (const t of tensors) {
      if (t.lora && !gated) continue;
      const tensor = uploadTensor(gpu, { tag: 'weights', owner, label: `adapter.${t.name}`, shape: t.shape }, t.data);
      made.push(tensor);
      if (!t.lora) embeddings = tensor;
      else if (t.lora.matrix === 'A') pendingA.set(loraKey(t.lora.layer, t.lora.target), tensor);
      else layers[t.lora.layer]![t.lora.target] = { a: pendingA.get(loraKey(t.lora.layer, t.lora.target))!, b: tensor };
    }
  } catch (e) {
    failure = e;
  }
  const oom = await gpu.device.popErrorScope();
  if (oom && !failure)
    failure = deviceLimit(`${gpu.adapterName} ran out of memory uploading an adapter (${oom.message})`);
  if (failure) {
    for (const t of made) gpu.destroyBuffer(t.buffer);
    throw failure;
  }
  const rank = gated ? config.rank : 0;
  const scale = gated ? config.alpha / config.rank : 0;
  return { rank, scale, layers, embeddings, owner, fingerprint: adapterFingerprint(adapter) };
}

/**
 * A reader that returns each targeted projection W [out, in] as W + (alpha / r) B A, for an ungated
 * adapter (sentinel, lora); other tensors pass through. A ccm adapter's LoRA is row-gated and can
 * never be merged (ccm.md section 3), so it is refused.
 */
export function mergeLoraReader(read: TensorReader, adapter: Adapter): TensorReader {
  const { config } = adapter;
  if (config.method === 'ccm') {
    throw invalidInput(
      "a ccm adapter's LoRA is row-gated: the forward pass applies it (uploadAdapter), it is never merged",
    );
  }
  adapterTensors(adapter); // validates every pair's shape against the config
  const scale = config.alpha / config.rank;
  const byWeight = new Map<string, { a: Float32Array; b: Float32Array }>();
  for (let layer = 0; layer < config.baseModel.numLayers; layer++) {
    for (const target of config.targets) {
      byWeight.set(layerTensorNames(layer)[target], adapter.lora.get(loraKey(layer, target))!);
    }
  }
  return async (name) => {
    const w = await read(name);
    const pair = byWeight.get(name);
    return pair ? addLowRank(name, w, pair.a, pair.b, config.rank, scale) : w;
  };
}

/** W + scale B A as a new array (W [out, in], A [rank, in], B [out, rank]), accumulated in f64. */
function addLowRank(
  name: string,
  w: Float32Array,
  a: Float32Array,
  b: Float32Array,
  rank: number,
  scale: number,
): Float32Array {
  const cols = a.length / rank;
  const rows = b.length / rank;
  if (w.length !== rows * cols) {
    throw shapeError(`mergeLoraReader: ${name} has ${w.length} values, its LoRA pair makes [${rows}, ${cols}]`);
  }
  const out = new Float32Array(w.length);
  const acc = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    acc.fill(0);
    for (let j = 0; j < rank; j++) {
      const bj = b[r * rank + j] as number;
      const aRow = j * cols;
      for (let c = 0; c < cols; c++) acc[c] = (acc[c] as number) + bj * (a[aRow + c] as number);
    }
    const wRow = r * cols;
    for (let c = 0; c < cols; c++) out[wRow + c] = (w[wRow + c] as number) + scale * (acc[c] as number);
  }
  return out;
}
