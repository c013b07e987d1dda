// The GPU side of adapters. uploadAdapter builds what the forward pass consumes (GpuAdapter): a ccm
// adapter's row-gated LoRA pairs and any adapter's extra embedding rows. An ungated LoRA (sentinel, lora)
// is not uploaded: mergeLoraReader folds it into the base weights as they stream to the GPU.
import { deviceLimit, invalidInput, shapeError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { type Tensor, uploadTensor } from '../gpu/tensor.js';
import { type Adapter, adapterFingerprint, adapterTensors, loraKey } from './adapter.js';
import type { GpuAdapter } from './gpu-adapter.js';
import { layerTensorNames } from './types.js';
import type { TensorReader } from './weights.js';

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
