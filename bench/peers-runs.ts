// What every peers engine shares, in Node and in a browser worker alike (no Node imports here): the plan,
// the timed runs (an untimed warm-up, N generations of a fixed random prompt, N prefill-only runs of the
// long prompt) and ccmem's measurement through the Session API. EOS is ignored by every engine so every
// run decodes the same number of tokens.
import { Session } from '../src/engine/session.js';
import type { Gpu } from '../src/gpu/device.js';
import type { LoadedModel } from '../src/model/load.js';
import type { ModelConfig } from '../src/model/types.js';
import { mulberry32 } from '../src/util/random.js';

export interface Plan {
  runs: number;
  prompt: number;
  decode: number;
  /** Prompt of the prefill-only runs; 0 = none. */
  longPrompt: number;
  /** CPU threads of llama.cpp (and of the torch peer on a CPU). */
  threads: number;
  /** wllama's threads (WebAssembly threads need the page cross-origin isolated). */
  wllamaThreads: number;
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

export interface Timings {
  runs: RunTiming[];
  longRuns: RunTiming[];
}

/** BOS, then seeded random ids above the special ones. */
export function promptIds(n: number, vocab: number, bos: number, seed: number): number[] {
  const r = mulberry32(seed);
  return [bos, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(r() * (vocab - 3)))];
}

/** Every context an engine needs: the longest prompt plus its tokens, and one spare slot. */
export const contextSize = (plan: Plan) => Math.max(plan.prompt + plan.decode, plan.longPrompt + 1) + 1;

/** Generation runs: one per repetition, each a fresh session/context. */
export type Generate = (prompt: number[], newTokens: number) => Promise<RunTiming>;

/** The model facts the runs need. */
export type RunConfig = Pick<ModelConfig, 'vocabSize' | 'bosTokenId' | 'maxPositions'>;

/**
 * The long prompt of a model: at most its positions minus one (stories260K has 512 positions, and wllama's
 * llama-server refuses a prompt that fills the context), the same for every engine.
 */
export const longPromptOf = (plan: Plan, config: RunConfig) => Math.min(plan.longPrompt, config.maxPositions - 1);

export async function timedRuns(config: RunConfig, plan: Plan, generate: Generate): Promise<Timings> {
  const { vocabSize, bosTokenId } = config;
  const ids = (n: number, run: number) => promptIds(n, vocabSize, bosTokenId ?? 1, plan.seed + run);
  await generate(ids(16, 1000), 4); // warm-up, not recorded
  const runs: RunTiming[] = [];
  const longRuns: RunTiming[] = [];
  for (let i = 0; i < plan.runs; i++) runs.push(await generate(ids(plan.prompt, i), plan.decode));
  const long = longPromptOf(plan, config);
  if (long) for (let i = 0; i < plan.runs; i++) longRuns.push(await generate(ids(long, i), 1));
  return { runs, longRuns };
}

/** The model as the benchmark runs it: no EOS (every run decodes its full length), no tokenizer needed. */
export const withoutEos = (m: LoadedModel): LoadedModel => ({
  ...m,
  config: { ...m.config, eosTokenIds: [] },
  tokenizer: undefined,
});

export type CcmemRuns = Awaited<ReturnType<typeof ccmemRuns>>;

/** ccmem's runs on a loaded model: greedy `Session.generate`, timings from its `usage`, the ledger's peak. */
export async function ccmemRuns(gpu: Gpu, model: LoadedModel, plan: Plan) {
  const generate: Generate = async (prompt, newTokens) => {
    const session = new Session(model, { capacity: Math.min(prompt.length + newTokens, model.config.maxPositions) });
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
  const timings = await timedRuns(model.config, plan, generate);
  return {
    detail: `${gpu.adapterName}, ${model.weights.format} weights`,
    adapter: gpu.adapterName,
    ...timings,
    peakGpuBytes: gpu.ledger.snapshot().peak,
  };
}
