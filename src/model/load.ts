// Loads a Hugging Face layout model (local folder, URL or hub id): config, weight index checked
// against the config and the device limits, weights streamed to the GPU, tokenizer when present.
import { deviceLimit } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { storageBytes, type WeightFormat } from '../gpu/tensor.js';
import { type Adapter, checkAdapter } from './adapter.js';
import { mergeLoraReader } from './adapter-gpu.js';
import { type CacheOptions, cachedSource } from './cache.js';
import { loadConfig } from './config.js';
import { checkAgainstConfig, readTensorBytes, readWeightIndex, toF32 } from './safetensors.js';
import { type FileSource, isUrlOrHubId, openSource, type SourceOptions } from './source.js';
import { TextTokenizer } from './tokenizer.js';
import type { ModelConfig } from './types.js';
import { type ModelWeights, type TensorReader, uploadWeights, weightBytes } from './weights.js';

export interface LoadedModel {
  readonly gpu: Gpu;
  readonly id: string;
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  readonly tokenizer: TextTokenizer | undefined;
  /** The ledger owner of the weights: releasing it frees the model. */
  readonly owner: string;
}

export interface LoadOptions extends SourceOptions {
  /** 'auto': f32 files stay f32; f16/bf16 files become f16 (native when shader-f16, else packed). */
  format?: WeightFormat | 'auto';
  onTensor?: (name: string, index: number, total: number) => void;
  /** An ungated adapter (sentinel or plain LoRA) merged into the weights as they load: W += (alpha/r) B A. */
  mergeAdapter?: Adapter;
  /**
   * Where URL and hub models are kept between loads (src/model/cache.ts): default the Cache API where
   * the runtime has it; local folders are read in place.
   */
  cache?: Omit<CacheOptions, 'onProgress'>;
}

let loads = 0;

function openModelSource(spec: string, options: LoadOptions): FileSource {
  const src = openSource(spec, options);
  if (!isUrlOrHubId(spec)) return src;
  const key = `${spec}@${options.revision ?? 'main'}`; // the hub source's id leaves out the revision
  return cachedSource(src, { key, ...options.cache, onProgress: options.onProgress });
}

export async function loadModel(gpu: Gpu, spec: string | FileSource, options: LoadOptions = {}): Promise<LoadedModel> {
  const src = typeof spec === 'string' ? openModelSource(spec, options) : spec;
  const config = await loadConfig(src);
  const index = await readWeightIndex(src);
  checkAgainstConfig(index, config);
  const allF32 = [...index.values()].every((t) => t.dtype === 'F32');
  const requested = options.format ?? 'auto';
  const format: WeightFormat = requested !== 'auto' ? requested : allF32 ? 'f32' : gpu.features.f16 ? 'f16' : 'f16p';
  if (format === 'f16' && !gpu.features.f16) {
    throw deviceLimit(`f16 weights need shader-f16, which ${gpu.adapterName} lacks; use format 'f16p'`);
  }
  for (const info of index.values()) {
    if (info.shape.length > 1) gpu.checkFits(storageBytes(format, info.shape), `tensor ${info.name}`);
  }
  const owner = `model${++loads}:${src.id}`;
  const base: TensorReader = async (name) => {
    const info = index.get(name)!;
    return toF32(info, await readTensorBytes(src, info));
  };
  if (options.mergeAdapter) checkAdapter(options.mergeAdapter, config);
  const read = options.mergeAdapter ? mergeLoraReader(base, options.mergeAdapter) : base;
  gpu.device.pushErrorScope('out-of-memory');
  let weights: ModelWeights | undefined;
  let failure: unknown;
  try {
    weights = await uploadWeights(gpu, config, read, { format, owner, onTensor: options.onTensor });
  } catch (e) {
    failure = e;
  }
  const oom = await gpu.device.popErrorScope();
  if (oom && !failure) {
    failure = deviceLimit(
      `${gpu.adapterName} ran out of memory loading ${src.id}: its weights need ` +
        `${weightBytes(config, format)} bytes in ${format} (${oom.message})`,
    );
  }
  if (failure || !weights) {
    gpu.releaseOwner(owner);
    throw failure;
  }
  try {
    const tokenizer = (await src.exists('tokenizer.json')) ? await TextTokenizer.load(src) : undefined;
    return { gpu, id: src.id, config, weights, tokenizer, owner };
  } catch (e) {
    gpu.releaseOwner(owner);
    throw e;
  }
}
