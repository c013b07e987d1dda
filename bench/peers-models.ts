// The two benchmark models, each as one set of weights both engines read: ccmem uploads them through
// uploadWeights (or loadModel for the converted llama2.c folder), llama.cpp reads the same tensors from a
// GGUF export. stories260K is f32 (its checkpoint's own precision); the SmolLM2-135M shape is seeded random
// weights stored as f16 on both sides (ccmem native or packed f16, GGUF F16).
import { readFileSync } from 'node:fs';
import { parseConfig } from '../src/model/config.js';
import { writeGguf } from '../src/model/gguf.js';
import { convertLlama2c } from '../src/model/llama2c.js';
import { readTensorBytes, readWeightIndex, toF32 } from '../src/model/safetensors.js';
import { type FileSource, memorySource } from '../src/model/source.js';
import { expectedShapes, type ModelConfig } from '../src/model/types.js';
import type { TensorReader } from '../src/model/weights.js';
import { randomWeights } from './random-weights.js';

export const BENCH_MODELS = ['stories260K', 'smollm2-135m'] as const;
export type BenchModel = (typeof BENCH_MODELS)[number];

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
}

export function modelSource(name: BenchModel, seed: number): ModelSource {
  if (name === 'smollm2-135m') {
    const config = parseConfig(JSON.parse(readFileSync(`${FIXTURES}/smollm2-135m/config.json`, 'utf8')));
    return { name, config, read: randomWeights(config, seed), dtype: 'f16' };
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
  return { name, config, read, dtype: 'f32', folder };
}

/** The model as a GGUF file for llama.cpp, holding exactly the tensors `read` yields. */
export async function ggufBytes(m: ModelSource): Promise<Uint8Array> {
  const tensors = new Map<string, Float32Array>();
  for (const name of expectedShapes(m.config).keys()) tensors.set(name, await m.read(name));
  return writeGguf({ config: m.config, tensors }, { dtype: m.dtype });
}
