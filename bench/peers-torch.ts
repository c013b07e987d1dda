// The server-side peer: PyTorch eager Hugging Face generation (transformers' LlamaForCausalLM, eager
// attention; f16 on CUDA, f32 on the CPU) on the Hugging Face folder the parent wrote for the model, in a
// Python child (bench/torch/hf_generate.py) that answers one generation request per line, so the runs
// are peers-runs.ts's own timedRuns. Python: BENCH_PYTHON, or python3 on the PATH; device:
// BENCH_TORCH_DEVICE (auto, cuda or cpu; auto takes CUDA when torch sees it). Also the Llama-3.2-1B shape
// with seeded random f16 weights, written as per-layer safetensors shards (no buffer near Node's 4 GiB
// typed-array limit, and one layer's f32 tensors in memory at a time).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseConfig } from '../src/model/config.js';
import { writeSafetensors } from '../src/model/safetensors.js';
import { expectedShapes, type ModelConfig } from '../src/model/types.js';
import type { TensorReader } from '../src/model/weights.js';
import type { EngineRun } from './peers-engines.js';
import type { ModelSource } from './peers-models.js';
import { type Generate, type Plan, type RunTiming, timedRuns } from './peers-runs.js';
import { randomWeights } from './random-weights.js';

const SCRIPT = 'bench/torch/hf_generate.py';
const FIXTURES = '../shared/fixtures';

interface Loaded {
  loadMs: number;
  detail: string;
}
interface Finished {
  peakGpuBytes: number | null;
  peakRssBytes: number;
}

/** Greedy runs of PyTorch eager transformers on `folder` (config.json + safetensors of `m`'s tensors). */
export async function runTorch(m: ModelSource, plan: Plan, folder: string): Promise<EngineRun> {
  const python = process.env.BENCH_PYTHON ?? 'python3';
  const device = process.env.BENCH_TORCH_DEVICE ?? 'auto';
  const args = [SCRIPT, folder, '--device', device, '--threads', String(plan.threads)];
  const child = spawn(python, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<string>((resolve) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      resolve(
        e.code === 'ENOENT'
          ? `${python} not found: install Python 3 with torch and transformers, or set BENCH_PYTHON`
          : e.message,
      ),
    );
    child.on('close', (code, signal) => resolve(`exit ${signal ?? code}`));
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const answer = async <T>(): Promise<T> => {
    const line = await lines.next();
    if (line.done) throw new Error(`torch peer: ${SCRIPT} ended without answering (${await exited})`);
    const msg = JSON.parse(line.value) as T & { error?: string };
    if (msg.error) throw new Error(`torch peer: ${msg.error}`);
    return msg;
  };
  try {
    const { loadMs, detail } = await answer<Loaded>();
    const generate: Generate = async (prompt, newTokens) => {
      child.stdin.write(`${JSON.stringify({ prompt, newTokens })}\n`);
      const r = await answer<RunTiming>();
      return {
        promptTokens: r.promptTokens,
        newTokens: r.newTokens,
        timeToFirstTokenMs: r.timeToFirstTokenMs,
        prefillTokensPerSecond: r.prefillTokensPerSecond,
        decodeTokensPerSecond: r.decodeTokensPerSecond,
      };
    };
    const timings = await timedRuns(m.config, plan, generate);
    child.stdin.end();
    const end = await answer<Finished>();
    // torch.cuda.max_memory_allocated: tensors only (not the CUDA context or the allocator's reserve)
    return { detail, loadMs, ...timings, peakGpuBytes: end.peakGpuBytes ?? undefined, peakRssBytes: end.peakRssBytes };
  } finally {
    if (child.exitCode === null) child.kill();
    await exited;
  }
}

/** The model's tensors as safetensors shards, one per decoder layer plus one for the rest, and their index. */
async function shardedFiles(config: ModelConfig, read: TensorReader): Promise<Record<string, Uint8Array | string>> {
  const groups = new Map<string, [string, number[]][]>();
  for (const [name, shape] of expectedShapes(config)) {
    const group = /^model\.layers\.\d+\./.exec(name)?.[0] ?? 'other';
    groups.set(group, [...(groups.get(group) ?? []), [name, shape]]);
  }
  const files: Record<string, Uint8Array | string> = {};
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  let i = 0;
  for (const tensors of groups.values()) {
    const file = `model-${String(++i).padStart(5, '0')}-of-${String(groups.size).padStart(5, '0')}.safetensors`;
    const toWrite = [];
    for (const [name, shape] of tensors) {
      toWrite.push({ name, shape, dtype: 'F16' as const, data: await read(name) });
      weightMap[name] = file;
      totalSize += 2 * shape.reduce((a, b) => a * b, 1); // f16 bytes
    }
    files[file] = writeSafetensors(toWrite, { format: 'pt' });
  }
  files['model.safetensors.index.json'] = JSON.stringify({
    metadata: { total_size: totalSize },
    weight_map: weightMap,
  });
  return files;
}

/** A model shape from the fixtures (its config.json) with seeded random f16 weights, sharded per layer. */
export function randomShapeSource<N extends string>(shape: N, seed: number): Omit<ModelSource, 'name'> & { name: N } {
  const configJson = readFileSync(`${FIXTURES}/${shape}/config.json`, 'utf8');
  const config = parseConfig(JSON.parse(configJson));
  const read = randomWeights(config, seed);
  const files = async () => ({ 'config.json': configJson, ...(await shardedFiles(config, read)) });
  return { name: shape, config, read, dtype: 'f16', files };
}

/** The Llama-3.2-1B shape (1.24 G parameters, 2.5 GB as f16): decode reads about 2.5 GB per token. */
export const llama32ShapeSource = (seed: number) => randomShapeSource('llama-3.2-1b', seed);
