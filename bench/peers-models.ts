// The two benchmark models, each as one set of weights every engine reads: ccmem in Node uploads them
// through uploadWeights (or loadModel for the converted llama2.c folder), ccmem in Chromium loads the same
// tensors from a Hugging Face folder over HTTP, llama.cpp and wllama read them from a GGUF export.
// stories260K is f32 (its checkpoint's own precision); the SmolLM2-135M shape is seeded random weights
// stored as f16 everywhere (ccmem native or packed f16, safetensors F16, GGUF F16).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/model/config.js';
import { writeGguf } from '../src/model/gguf.js';
import { convertLlama2c } from '../src/model/llama2c.js';
import { readTensorBytes, readWeightIndex, toF32, writeSafetensors } from '../src/model/safetensors.js';
import { type FileSource, memorySource } from '../src/model/source.js';
import { expectedShapes, type ModelConfig } from '../src/model/types.js';
import type { TensorReader } from '../src/model/weights.js';
import { llama32ShapeSource } from './peers-torch.js';
import { randomWeights } from './random-weights.js';

export const BENCH_MODELS = ['stories260K', 'smollm2-135m', 'llama-3.2-1b'] as const;
export type BenchModel = (typeof BENCH_MODELS)[number];
/** The 1B shape only fits a real GPU (its embedding exceeds the CPU adapters' 128 MiB bindings): bench/gpu.sh. */
export const DEFAULT_MODELS: BenchModel[] = ['stories260K', 'smollm2-135m'];

const FIXTURES = '../shared/fixtures';

export interface ModelSource {
  name: BenchModel;
  config: ModelConfig;
  /** Each tensor as f32, by Hugging Face name. */
  read: TensorReader;
  /** The precision both engines hold the matrices in. */
  dtype: 'f32' | 'f16';
  /** The converted Hugging Face folder, for ccmem's loadModel (absent for generated weights). */
  folder?: FileSource;
  /** The model as Hugging Face folder files (config.json, model.safetensors, ...), the same tensors as `read`. */
  files(): Promise<Record<string, string | Uint8Array>>;
}

export function modelSource(name: BenchModel, seed: number): ModelSource {
  if (name === 'llama-3.2-1b') return llama32ShapeSource(seed);
  if (name === 'smollm2-135m') {
    const configJson = readFileSync(`${FIXTURES}/smollm2-135m/config.json`, 'utf8');
    const config = parseConfig(JSON.parse(configJson));
    const read = randomWeights(config, seed);
    const files = async () => {
      const tensors = [];
      for (const [tensor, shape] of expectedShapes(config)) {
        tensors.push({ name: tensor, shape, dtype: 'F16' as const, data: await read(tensor) });
      }
      return { 'config.json': configJson, 'model.safetensors': writeSafetensors(tensors, { format: 'pt' }) };
    };
    return { name, config, read, dtype: 'f16', files };
  }
  const dir = `${FIXTURES}/stories260K`;
  const files = convertLlama2c(readFileSync(`${dir}/stories260K.bin`), readFileSync(`${dir}/tok512.bin`));
  const folder = memorySource(files, 'stories260K');
  const config = parseConfig(
    JSON.parse(files['config.json'] as string),
    JSON.parse(files['generation_config.json'] as string),
  );
  const index = readWeightIndex(folder);
  const read: TensorReader = async (tensor) => {
    const info = (await index).get(tensor);
    if (!info) throw new Error(`stories260K has no tensor ${tensor}`);
    return toF32(info, await readTensorBytes(folder, info));
  };
  return { name, config, read, dtype: 'f32', folder, files: async () => files };
}

/** The model as a GGUF file for llama.cpp, holding exactly the tensors `read` yields. */
export async function ggufBytes(m: ModelSource): Promise<Uint8Array> {
  const tensors = new Map<string, Float32Array>();
  for (const name of expectedShapes(m.config).keys()) tensors.set(name, await m.read(name));
  return writeGguf({ config: m.config, tensors }, { dtype: m.dtype });
}

/** Writes the model's Hugging Face folder into `dir` (served to ccmem in Chromium). */
export async function writeModelFolder(m: ModelSource, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const [file, data] of Object.entries(await m.files())) writeFileSync(join(dir, file), data);
}
