// One engine's measurement of one model, run in a child process of its own (so its peak RSS is its own):
// an untimed warm-up (pipeline compilation, first-touch allocations), then N timed runs of a greedy
// generation from a fixed random prompt, and N prefill-only runs of the long prompt. EOS is ignored by
// both engines so every run decodes the same number of tokens.
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Session } from '../src/engine/session.js';
import { acquireGpu, type Gpu } from '../src/gpu/device.js';
import { nodeGpu } from '../src/gpu/node.js';
import { type LoadedModel, loadModel } from '../src/model/load.js';
import { uploadWeights } from '../src/model/weights.js';
import { mulberry32 } from '../src/util/random.js';
import type { ModelSource } from './peers-models.js';

export const ENGINES = ['ccmem', 'llama.cpp'] as const;
export type Engine = (typeof ENGINES)[number];

export interface Plan {
  runs: number;
  prompt: number;
  decode: number;
  /** Prompt of the prefill-only runs; 0 = none. */
  longPrompt: number;
  threads: number;
  seed: number;
}

/** One timed generation. Prefill tokens/s = prompt / time to first token; decode counts the tokens after it. */
export interface RunTiming {
  promptTokens: number;
  newTokens: number;
  timeToFirstTokenMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

export interface EngineResult {
  engine: Engine;
  /** How the engine ran: the adapter and weight format, or the thread count. */
  detail: string;
  adapter?: string;
  loadMs: number;
  runs: RunTiming[];
  longRuns: RunTiming[];
  /** ccmem's ledger peak (all GPU buffers); absent for the CPU peer. */
  peakGpuBytes?: number;
  /** process.memoryUsage().rss sampled every 20 ms over the whole child, load included. */
  peakRssBytes: number;
  loadAverage: { start: number[]; end: number[] };
}

/** BOS, then seeded random ids above the special ones. */
export function promptIds(n: number, vocab: number, bos: number, seed: number): number[] {
  const r = mulberry32(seed);
  return [bos, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(r() * (vocab - 3)))];
}

/** Generation runs: one per repetition, each a fresh session/context. */
type Generate = (prompt: number[], newTokens: number) => Promise<RunTiming>;

async function timedRuns(m: ModelSource, plan: Plan, generate: Generate) {
  const { vocabSize, bosTokenId } = m.config;
  const ids = (n: number, run: number) => promptIds(n, vocabSize, bosTokenId ?? 1, plan.seed + run);
  await generate(ids(16, 1000), 4); // warm-up, not recorded
  const runs: RunTiming[] = [];
  const longRuns: RunTiming[] = [];
  for (let i = 0; i < plan.runs; i++) runs.push(await generate(ids(plan.prompt, i), plan.decode));
  if (plan.longPrompt) for (let i = 0; i < plan.runs; i++) longRuns.push(await generate(ids(plan.longPrompt, i), 1));
  return { runs, longRuns };
}

async function ccmemModel(gpu: Gpu, m: ModelSource): Promise<LoadedModel> {
  const loaded = m.folder
    ? await loadModel(gpu, m.folder)
    : await (async () => {
        const format = m.dtype === 'f32' ? 'f32' : gpu.features.f16 ? 'f16' : 'f16p';
        const owner = 'bench-weights';
        const weights = await uploadWeights(gpu, m.config, m.read, { format, owner });
        return { gpu, id: m.name, config: m.config, weights, tokenizer: undefined, owner };
      })();
  return { ...loaded, config: { ...loaded.config, eosTokenIds: [] }, tokenizer: undefined };
}

async function runCcmem(m: ModelSource, plan: Plan) {
  const gpu = await acquireGpu({ gpu: await nodeGpu() });
  try {
    const t = performance.now();
    const model = await ccmemModel(gpu, m);
    const loadMs = performance.now() - t;
    const generate: Generate = async (prompt, newTokens) => {
      const session = new Session(model, { capacity: Math.min(prompt.length + newTokens, m.config.maxPositions) });
      try {
        const it = session.generate(prompt, { maxNewTokens: newTokens, temperature: 0 });
        let step = await it.next();
        while (!step.done) step = await it.next();
        const u = step.value.usage;
        return {
          promptTokens: u.promptTokens,
          newTokens: u.completionTokens,
          timeToFirstTokenMs: u.timeToFirstTokenMs,
          prefillTokensPerSecond: u.prefillTokensPerSecond,
          decodeTokensPerSecond: u.decodeTokensPerSecond,
        };
      } finally {
        session.dispose();
      }
    };
    const timings = await timedRuns(m, plan, generate);
    const format = model.weights.format;
    return {
      detail: `${gpu.adapterName}, ${format} weights`,
      adapter: gpu.adapterName,
      loadMs,
      ...timings,
      peakGpuBytes: gpu.ledger.snapshot().peak,
    };
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
async function runLlamaCpp(m: ModelSource, plan: Plan, ggufPath: string) {
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
      ...(await timedRuns(m, plan, generate)),
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
  ggufPath: string,
): Promise<EngineResult> {
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  const start = loadavg();
  try {
    const r = engine === 'ccmem' ? await runCcmem(m, plan) : await runLlamaCpp(m, plan, ggufPath);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    return { engine, ...r, peakRssBytes: peakRss, loadAverage: { start, end: loadavg() } };
  } finally {
    clearInterval(sampler);
  }
}
