// Loads a model: a Hugging Face layout folder (local folder, URL or hub id) or one GGUF file (a local
// path, URL or hub file ending in .gguf): config, weight index checked against the config and the device
// limits, weights streamed to the GPU, tokenizer when present. GGUF Q8_0/Q4_0 layer matrices stay in
// their blocks; other GGUF tensors are dequantized into the f32/f16 weights (src/model/gguf-model.ts).
import { mergeLoraReader } from '../adapters/gpu.js';
import { checkAdapter } from '../adapters/tensors.js';
import type { Adapter } from '../adapters/types.js';
import { deviceLimit } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { storageBytes, type WeightFormat } from '../gpu/tensor.js';
import { type CacheOptions, cachedSource } from './cache.js';
import { loadConfig } from './config.js';
import { openGgufModel } from './gguf-model.js';
import { ggufTokenizer } from './gguf-tokenizer.js';
import { checkAgainstConfig, readTensorBytes, readWeightIndex, toF32 } from './safetensors.js';
import { type FileSource, isUrlOrHubId, openSource, type SourceOptions } from './source.js';
import { TextTokenizer } from './tokenizer.js';
import type { ModelConfig } from './types.js';
import { type BlockReader, type ModelWeights, type TensorReader, uploadWeights, weightBytes } from './weights.js';

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
  /**
   * 'auto': f32 files stay f32; f16/bf16 files become f16 (native when shader-f16, else packed). In a GGUF
   * file, Q8_0/Q4_0 layer matrices stay in their blocks (read by kernels/matmul_q.ts) and every other
   * non-F32 tensor becomes f16. 'f32', 'f16', 'f16p': every matrix dequantized into that format.
   */
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

/** What the loader needs from a model's files, whatever their format. */
interface ModelFiles {
  id: string;
  config: ModelConfig;
  /** The tensors by Hugging Face name, with their shapes. */
  shapes: Map<string, number[]>;
  allF32: boolean;
  read: TensorReader;
  /** Q8_0/Q4_0 blocks of a matrix (GGUF), kept as blocks under format 'auto'. */
  readBlocks?: BlockReader;
  tokenizer(): Promise<TextTokenizer | undefined>;
}

/** A spec that names one .gguf file: the folder (path, URL or hub id) it is in, and its name. */
export function ggufSpec(spec: string): { folder: string; file: string } | undefined {
  if (!/\.gguf$/i.test(spec)) return undefined;
  const cut = spec.lastIndexOf('/');
  if (cut < 0) return { folder: '.', file: spec };
  return { folder: spec.slice(0, cut) || '/', file: spec.slice(cut + 1) };
}

async function safetensorsFiles(src: FileSource): Promise<ModelFiles> {
  const config = await loadConfig(src);
  const index = await readWeightIndex(src);
  checkAgainstConfig(index, config);
  return {
    id: src.id,
    config,
    shapes: new Map([...index.values()].map((t) => [t.name, t.shape])),
    allF32: [...index.values()].every((t) => t.dtype === 'F32'),
    read: async (name) => {
      const info = index.get(name)!;
      return toF32(info, await readTensorBytes(src, info));
    },
    tokenizer: async () => ((await src.exists('tokenizer.json')) ? TextTokenizer.load(src) : undefined),
  };
}

async function ggufFiles(src: FileSource, file: string): Promise<ModelFiles> {
  const g = await openGgufModel(src, file);
  const id = `${src.id}/${file}`;
  return {
    id,
    config: g.config,
    shapes: new Map([...g.tensors].map(([name, t]) => [name, t.shape])),
    allF32: [...g.tensors.values()].every((t) => t.type === 'F32'),
    read: g.read,
    readBlocks: g.readBlocks,
    tokenizer: async () => ggufTokenizer(g.gguf.meta, id),
  };
}

export async function loadModel(gpu: Gpu, spec: string | FileSource, options: LoadOptions = {}): Promise<LoadedModel> {
  const gguf = typeof spec === 'string' ? ggufSpec(spec) : undefined;
  const src = typeof spec !== 'string' ? spec : openModelSource(gguf ? gguf.folder : spec, options);
  const files = gguf ? await ggufFiles(src, gguf.file) : await safetensorsFiles(src);
  const { config } = files;
  const requested = options.format ?? 'auto';
  const format: WeightFormat =
    requested !== 'auto' ? requested : files.allF32 ? 'f32' : gpu.features.f16 ? 'f16' : 'f16p';
  if (format === 'f16' && !gpu.features.f16) {
    throw deviceLimit(`f16 weights need shader-f16, which ${gpu.adapterName} lacks; use format 'f16p'`);
  }
  for (const [name, shape] of files.shapes) {
    if (shape.length > 1) gpu.checkFits(storageBytes(format, shape), `tensor ${name}`);
  }
  const owner = `model${++loads}:${src.id}`;
  if (options.mergeAdapter) checkAdapter(options.mergeAdapter, config);
  const read = options.mergeAdapter ? mergeLoraReader(files.read, options.mergeAdapter) : files.read;
  gpu.device.pushErrorScope('out-of-memory');
  let weights: ModelWeights | undefined;
  let failure: unknown;
  try {
    // blocks stay blocks under 'auto' unless an adapter is merged into the weights (a float operation)
    const readBlocks = requested === 'auto' && !options.mergeAdapter ? files.readBlocks : undefined;
    weights = await uploadWeights(gpu, config, read, { format, owner, onTensor: options.onTensor, readBlocks });
  } catch (e) {
    failure = e;
  }
  const oom = await gpu.device.popErrorScope();
  if (oom && !failure) {
    failure = deviceLimit(
      `${gpu.adapterName} ran out of memory loading ${files.id}: its weights need ` +
        `${weightBytes(config, format)} bytes in ${format} (${oom.message})`,
    );
  }
  if (failure || !weights) {
    gpu.releaseOwner(owner);
    throw failure;
  }
  try {
    const tokenizer = await files.tokenizer();
    return { gpu, id: files.id, config, weights, tokenizer, owner };
  } catch (e) {
    gpu.releaseOwner(owner);
    throw e;
  }
}
