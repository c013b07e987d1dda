// The engines of the peers benchmark and one engine's measurement of one model, run in a child process of
// its own (so its peak RSS is its own): ccmem in Node (Dawn), ccmem in headless Chromium (a Web Worker,
// WebGPU on SwiftShader, or lavapipe through ANGLE), llama.cpp in Node (node-llama-cpp, CPU) and wllama in
// the same Chromium (llama.cpp in WebAssembly, CPU). The runs themselves are in peers-runs.ts.

import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { acquireGpu, type Gpu } from '../src/gpu/device.js';
import { nodeGpu } from '../src/gpu/node.js';
import { type LoadedModel, loadModel } from '../src/model/load.js';
import { uploadWeights } from '../src/model/weights.js';
import { runCcmemChromium, runWllama } from './peers-browser.js';
import { LAVAPIPE_GLES, SWIFTSHADER } from './peers-chromium.js';
import type { ModelSource } from './peers-models.js';
import { ccmemRuns, type Generate, type Plan, type Timings, timedRuns, withoutEos } from './peers-runs.js';
import { runTorch } from './peers-torch.js';

/** Where the parent wrote the model for the engines that read files: the GGUF export, the Hugging Face folder. */
export interface EngineFiles {
  gguf: string;
  folder: string;
}

/** One engine's measurement as its runner returns it. */
export interface EngineRun extends Timings {
  /** How the engine ran: the adapter and weight format, or the thread count. */
  detail: string;
  /** The WebGPU adapter of ccmem in Node (the report's machine line). */
  adapter?: string;
  loadMs: number;
  /** ccmem's ledger peak (all GPU buffers); absent for the CPU peers. */
  peakGpuBytes?: number;
  /** Browser engines: the summed RSS of the Chromium process tree (others: measureEngine samples its process). */
  peakRssBytes?: number;
}

interface EngineSpec {
  /** The file the parent must write before the run. */
  needs?: keyof EngineFiles;
  /** Runs in a browser: the parent builds bench/browser/ first. */
  browser?: boolean;
  run(m: ModelSource, plan: Plan, files: EngineFiles): Promise<EngineRun>;
}

const ENGINE_SPECS = {
  'ccmem-node': { run: (m, plan) => runCcmemNode(m, plan) },
  'ccmem-chromium': {
    needs: 'folder',
    browser: true,
    run: (_m, plan, f) => runCcmemChromium(plan, f.folder, SWIFTSHADER),
  },
  'ccmem-chromium-lavapipe': {
    needs: 'folder',
    browser: true,
    run: (_m, plan, f) => runCcmemChromium(plan, f.folder, LAVAPIPE_GLES),
  },
  'llama.cpp': { needs: 'gguf', run: (m, plan, f) => runLlamaCpp(m, plan, f.gguf) },
  wllama: { needs: 'gguf', browser: true, run: (m, plan, f) => runWllama(m, plan, f.gguf) },
  // PyTorch eager Hugging Face generation: the server-side peer on a machine with a GPU (bench/gpu.sh)
  torch: { needs: 'folder', run: (m, plan, f) => runTorch(m, plan, f.folder) },
} satisfies Record<string, EngineSpec>;

export type Engine = keyof typeof ENGINE_SPECS;
export const ENGINES = Object.keys(ENGINE_SPECS) as Engine[];
/** What `npm run bench` runs by default: everything that runs on this kind of machine (no torch here). */
export const DEFAULT_ENGINES = ENGINES.filter((e) => e !== 'torch');
export const engineSpec = (engine: Engine): EngineSpec => ENGINE_SPECS[engine];

export interface EngineResult extends EngineRun {
  engine: Engine;
  /** process.memoryUsage().rss sampled every 20 ms over the whole child, load included, or the runner's own. */
  peakRssBytes: number;
  loadAverage: { start: number[]; end: number[] };
}

async function ccmemModel(gpu: Gpu, m: ModelSource): Promise<LoadedModel> {
  if (m.folder) return withoutEos(await loadModel(gpu, m.folder));
  const format = m.dtype === 'f32' ? 'f32' : gpu.features.f16 ? 'f16' : 'f16p';
  const owner = 'bench-weights';
  const weights = await uploadWeights(gpu, m.config, m.read, { format, owner });
  return withoutEos({ gpu, id: m.name, config: m.config, weights, tokenizer: undefined, owner });
}

async function runCcmemNode(m: ModelSource, plan: Plan): Promise<EngineRun> {
  const gpu = await acquireGpu({ gpu: await nodeGpu() });
  try {
    const t = performance.now();
    const model = await ccmemModel(gpu, m);
    const loadMs = performance.now() - t;
    return { loadMs, ...(await ccmemRuns(gpu, model, plan)) };
  } finally {
    gpu.destroy();
  }
}

// The part of node-llama-cpp's API used here, typed locally so type checking does not need peers/.
type EvalItem = number | [number, { generateNext: { token: true } }];
interface LlamaSequence {
  controlledEvaluate(input: EvalItem[]): Promise<({ next: { token?: number | null } } | undefined)[]>;
}
interface LlamaContext {
  getSequence(): LlamaSequence;
  dispose(): Promise<void>;
}
interface LlamaModel {
  createContext(o: Record<string, unknown>): Promise<LlamaContext>;
  dispose(): Promise<void>;
}
interface NodeLlamaCpp {
  getLlama(o: { gpu: false; build: 'never'; logLevel: 'error' }): Promise<{
    loadModel(o: { modelPath: string; gpuLayers: number }): Promise<LlamaModel>;
  }>;
}

const LLAMA_ENTRY = 'peers/node_modules/node-llama-cpp/dist/index.js';

/** Greedy generation with llama.cpp's own sampler (CPU, f32 KV cache, flash attention off, whole prompt in one batch). */
async function runLlamaCpp(m: ModelSource, plan: Plan, ggufPath: string): Promise<EngineRun> {
  const entry = resolve(LLAMA_ENTRY);
  if (!existsSync(entry)) throw new Error(`llama.cpp peer not installed: ${entry} is missing (run npm ci in peers/)`);
  const { getLlama } = (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
  const t = performance.now();
  const model = await (await getLlama({ gpu: false, build: 'never', logLevel: 'error' })).loadModel({
    modelPath: ggufPath,
    gpuLayers: 0,
  });
  const loadMs = performance.now() - t;
  const generate: Generate = async (prompt, newTokens) => {
    const context = await model.createContext({
      contextSize: prompt.length + newTokens + 1, // one spare slot: a batch that fills the context corrupts its last logits
      batchSize: prompt.length,
      sequences: 1,
      threads: plan.threads,
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    try {
      const seq = context.getSequence();
      const t0 = performance.now();
      let input: EvalItem[] = prompt.map((id, i) =>
        i === prompt.length - 1 ? [id, { generateNext: { token: true } }] : id,
      );
      let tFirst = 0;
      for (let n = 0; n < newTokens; n++) {
        const next = (await seq.controlledEvaluate(input))[input.length - 1]?.next.token;
        if (next === undefined || next === null) throw new Error('llama.cpp sampled no token');
        if (n === 0) tFirst = performance.now();
        input = [[next, { generateNext: { token: true } }]];
      }
      const tEnd = performance.now();
      return {
        promptTokens: prompt.length,
        newTokens,
        timeToFirstTokenMs: tFirst - t0,
        prefillTokensPerSecond: (prompt.length * 1000) / (tFirst - t0),
        decodeTokensPerSecond: ((newTokens - 1) * 1000) / Math.max(tEnd - tFirst, 1e-3),
      };
    } finally {
      await context.dispose();
    }
  };
  try {
    return {
      detail: `CPU, ${plan.threads} of ${cpus().length} threads, ${m.dtype} weights`,
      loadMs,
      ...(await timedRuns(m.config, plan, generate)),
    };
  } finally {
    await model.dispose();
  }
}

/** Measures one engine on one model in this process, sampling its RSS throughout. */
export async function measureEngine(
  engine: Engine,
  m: ModelSource,
  plan: Plan,
  files: EngineFiles,
): Promise<EngineResult> {
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  const start = loadavg();
  try {
    const r = await ENGINE_SPECS[engine].run(m, plan, files);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    return { engine, ...r, peakRssBytes: r.peakRssBytes ?? peakRss, loadAverage: { start, end: loadavg() } };
  } finally {
    clearInterval(sampler);
  }
}
