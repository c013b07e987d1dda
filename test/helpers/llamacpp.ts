// The native peer: llama.cpp through node-llama-cpp, installed apart in peers/node_modules. CPU only, f32 KV
// cache, flash attention off, the whole prompt in one batch, so its numbers are as close to an exact
// forward as llama.cpp gets. Driven by token ids only.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ENTRY = 'peers/node_modules/node-llama-cpp/dist/index.js';

// The small part of node-llama-cpp's API used here (typed locally so type checking does not need peers/).
type EvalItem = number | [number, { generateNext: { logits?: boolean; token?: boolean } }];
interface EvalOutput {
  next: { token?: number | null; logits?: Map<number, number> };
}
interface Sequence {
  controlledEvaluate(input: EvalItem[]): Promise<(EvalOutput | undefined)[]>;
}
interface Context {
  getSequence(): Sequence;
  dispose(): Promise<void>;
}
interface Model {
  createContext(o: {
    contextSize: number;
    batchSize: number;
    sequences: number;
    threads: number;
    flashAttention: boolean;
    experimentalKvCacheKeyType: 'F32';
    experimentalKvCacheValueType: 'F32';
  }): Promise<Context>;
  dispose(): Promise<void>;
}
interface Llama {
  loadModel(o: { modelPath: string; gpuLayers: number }): Promise<Model>;
}
interface NodeLlamaCpp {
  getLlama(o: { gpu: false; build: 'never'; logLevel: 'error' }): Promise<Llama>;
}

let llama: Promise<Llama> | undefined;

/** The llama.cpp binding, loaded once per process (a missing peer is an error, never a skip). */
function getLlama(): Promise<Llama> {
  llama ??= (async () => {
    const entry = resolve(ENTRY);
    if (!existsSync(entry)) {
      throw new Error(`llama.cpp peer not installed: ${entry} is missing (run npm ci in peers/)`);
    }
    try {
      const mod = (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
      return await mod.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
    } catch (e) {
      throw new Error(`llama.cpp peer failed to load from ${entry}: ${e}`, { cause: e });
    }
  })();
  return llama;
}

/** Runs `fn` on a fresh CPU context of the model that holds `tokens` tokens with `batch` per decode, disposing
 *  both. The context gets one spare slot: node-llama-cpp corrupts the last token's logits when a batch fills
 *  the context exactly (seen with 3.22.1). */
async function withSequence<T>(
  ggufPath: string,
  tokens: number,
  batch: number,
  fn: (s: Sequence) => Promise<T>,
): Promise<T> {
  const model = await (await getLlama()).loadModel({ modelPath: ggufPath, gpuLayers: 0 });
  try {
    const context = await model.createContext({
      contextSize: tokens + 1,
      batchSize: batch,
      sequences: 1,
      threads: 1, // more threads spin-wait on our shared cores: 64 greedy steps took minutes, not milliseconds
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    try {
      return await fn(context.getSequence());
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** A token-id-indexed array from the peer's logits map (which must cover the whole vocabulary). */
function logitsArray(out: EvalOutput | undefined): Float32Array {
  const map = out?.next.logits;
  if (!map) throw new Error('llama.cpp returned no logits');
  const a = new Float32Array(map.size).fill(Number.NaN);
  for (const [id, v] of map) a[id] = v;
  if (a.some(Number.isNaN)) throw new Error('llama.cpp logits do not cover the vocabulary');
  return a;
}

/** llama.cpp's logits after every token of `ids`, evaluated in one batch from position 0. */
export async function llamaCppLogits(ggufPath: string, ids: number[]): Promise<Float32Array[]> {
  return withSequence(ggufPath, ids.length, ids.length, async (seq) => {
    const out = await seq.controlledEvaluate(ids.map((id) => [id, { generateNext: { logits: true } }]));
    return ids.map((_, i) => logitsArray(out[i]));
  });
}

/** `n` tokens from llama.cpp's own greedy sampler (temperature 0) after the prompt, without EOS stop. */
export async function llamaCppGreedy(ggufPath: string, promptIds: number[], n: number): Promise<number[]> {
  return withSequence(ggufPath, promptIds.length + n, promptIds.length, async (seq) => {
    const generated: number[] = [];
    let input: EvalItem[] = promptIds.map((id, i) =>
      i === promptIds.length - 1 ? [id, { generateNext: { token: true } }] : id,
    );
    while (generated.length < n) {
      const out = await seq.controlledEvaluate(input);
      const next = out[input.length - 1]?.next.token;
      if (next === undefined || next === null) throw new Error('llama.cpp sampled no token');
      generated.push(next);
      input = [[next, { generateNext: { token: true } }]];
    }
    return generated;
  });
}
