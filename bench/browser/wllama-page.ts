// The wllama benchmark page: window.wllamaRun(request) loads the GGUF export into wllama (llama.cpp in
// WebAssembly, CPU only, its own worker and threads) and runs the peers plan, greedy, EOS ignored.
// wllama is served from peers/node_modules at /wllama/ rather than bundled, so this build does not need
// peers/ installed.
import { type Generate, type Plan, type RunConfig, timedRuns } from '../peers-runs.js';

export interface WllamaRequest {
  ggufUrl: string;
  plan: Plan;
  config: RunConfig;
  /** Context length: the longest prompt plus its tokens. */
  contextSize: number;
}

/**
 * wllama 3.8 takes text prompts only (a token array fails in its glue: "type must be string, but is
 * array"), so each prompt becomes text that the export's stand-in vocabulary (writeGguf: unk, BOS, EOS, 256
 * byte fallbacks, then "<tokN>" pieces that no text reaches) turns into exactly as many tokens: llama.cpp
 * adds BOS and SentencePiece's leading "▁" (three byte tokens), then one byte token per letter. The ids
 * differ from the other engines' (byte tokens instead of random ones); the shapes, and so the work, do not,
 * and every run checks that llama.cpp saw exactly that many prompt tokens.
 */
function promptText(ids: number[]): string {
  if (ids.length < 5) throw new Error(`wllama needs prompts of at least 5 tokens here, got ${ids.length}`);
  return ids
    .slice(4)
    .map((id) => String.fromCharCode(97 + (id % 26)))
    .join('');
}

// The part of @wllama/wllama 3.8's API used here, typed locally.
interface ServerTimings {
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_ms: number;
}
interface Wllama {
  loadModel(blobs: Blob[], params: Record<string, unknown>): Promise<void>;
  createCompletion(options: Record<string, unknown>): Promise<{ timings?: ServerTimings }>;
  isMultithread(): boolean;
  getNumThreads(): number;
  exit(): Promise<void>;
}
type WllamaClass = new (paths: { default: string }, config: { suppressNativeLog: boolean }) => Wllama;

async function run(req: WllamaRequest) {
  const at = (path: string) => new URL(path, location.href).href;
  const { Wllama } = (await import(/* @vite-ignore */ at('/wllama/index.js'))) as { Wllama: WllamaClass };
  const wllama = new Wllama({ default: at('/wllama/wasm/wllama.wasm') }, { suppressNativeLog: true });
  const t = performance.now();
  const gguf = await (await fetch(req.ggufUrl)).blob();
  await wllama.loadModel([gguf], {
    n_ctx: req.contextSize,
    n_batch: req.contextSize, // the whole prompt in one batch, as the llama.cpp peer
    n_ubatch: req.contextSize,
    n_threads: req.plan.wllamaThreads,
    n_gpu_layers: 0, // CPU: wllama's WebGPU path is not what is compared here
    n_parallel: 1,
    cache_type_k: 'f32',
    cache_type_v: 'f32',
    flash_attn: false,
  });
  const loadMs = performance.now() - t;
  // llama-server's own timings (the engine runs in wllama's worker): prompt_ms ends when the first token is
  // sampled, predicted_ms spans the first to the last token, so these are the llama.cpp peer's definitions.
  const generate: Generate = async (prompt, newTokens) => {
    const { timings: s } = await wllama.createCompletion({
      prompt: promptText(prompt),
      max_tokens: newTokens,
      temperature: 0,
      top_k: 1,
      ignore_eos: true,
      cache_prompt: false,
    });
    if (!s || s.prompt_n !== prompt.length || s.predicted_n !== newTokens) {
      throw new Error(`wllama ran ${JSON.stringify(s)} for a ${prompt.length}-token prompt + ${newTokens} tokens`);
    }
    return {
      promptTokens: prompt.length,
      newTokens,
      timeToFirstTokenMs: s.prompt_ms,
      prefillTokensPerSecond: (prompt.length * 1000) / s.prompt_ms,
      decodeTokensPerSecond: ((newTokens - 1) * 1000) / Math.max(s.predicted_ms, 1e-3),
    };
  };
  try {
    const timings = await timedRuns(req.config, req.plan, generate);
    const threads = wllama.isMultithread() ? `${wllama.getNumThreads()} threads` : '1 thread (not multithreaded)';
    return { loadMs, threads, crossOriginIsolated, ...timings };
  } finally {
    await wllama.exit();
  }
}

Object.assign(window, { wllamaRun: run });
