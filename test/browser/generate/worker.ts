// Loads a model over HTTP (byte-range reads, tensor by tensor) on WebGPU inside a module worker and
// generates greedily with a Session, reporting the streamed deltas, the result and the ledger.

import { Session } from '../../../src/engine/session.js';
import type { LedgerSnapshot } from '../../../src/gpu/ledger.js';
import type { WeightFormat } from '../../../src/gpu/tensor.js';
import { loadModel } from '../../../src/model/load.js';
import { serveRequests, withGpu } from '../worker-kit.js';

export interface GenerateRequest {
  /** Absolute URL of a Hugging Face model folder. */
  modelUrl: string;
  prompt: string;
  promptIds: number[];
  maxNewTokens: number;
  capacity: number;
}

export interface GenerateReport {
  adapter: string;
  f16: boolean;
  weightFormat: WeightFormat;
  /** The Range header (null when none) of every GET of model.safetensors. */
  weightRanges: (string | null)[];
  /** `prompt` encoded with BOS by the model's tokenizer. */
  encodedPrompt: number[];
  deltas: string[];
  ids: number[];
  text: string;
  finishReason: string;
  owners: { model: string; session: string };
  /** Ledger with the model and session alive, then after session.dispose() and releasing the model. */
  ledgerDuring: LedgerSnapshot;
  ledgerAfter: LedgerSnapshot;
  seconds: { load: number; generate: number };
}

serveRequests<GenerateRequest>((req) =>
  withGpu(async (gpu): Promise<GenerateReport> => {
    const weightRanges: (string | null)[] = [];
    const recordingFetch: typeof fetch = (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if ((init?.method ?? 'GET') === 'GET' && url.endsWith('/model.safetensors')) {
        weightRanges.push(new Headers(init?.headers).get('range'));
      }
      return fetch(input, init);
    };
    const t0 = performance.now();
    // no cache: the weights must stream tensor by tensor with Range requests (caching has its own tests)
    const model = await loadModel(gpu, req.modelUrl, {
      format: 'f32',
      fetch: recordingFetch,
      cache: { cache: 'none' },
    });
    const t1 = performance.now();
    const encodedPrompt = model.tokenizer?.encode(req.prompt, { addSpecialTokens: true }) ?? [];
    const session = new Session(model, { capacity: req.capacity });
    const deltas: string[] = [];
    const stream = session.generate(req.promptIds, { maxNewTokens: req.maxNewTokens, temperature: 0 });
    let next = await stream.next();
    while (!next.done) {
      deltas.push(next.value.delta);
      next = await stream.next();
    }
    const t2 = performance.now();
    const ledgerDuring = gpu.ledger.snapshot();
    session.dispose();
    gpu.releaseOwner(model.owner);
    const { ids, text, finishReason } = next.value;
    return {
      adapter: gpu.adapterName,
      f16: gpu.features.f16,
      weightFormat: model.weights.format,
      weightRanges,
      encodedPrompt,
      deltas,
      ids,
      text,
      finishReason,
      owners: { model: model.owner, session: session.owner },
      ledgerDuring,
      ledgerAfter: gpu.ledger.snapshot(),
      seconds: { load: (t1 - t0) / 1000, generate: (t2 - t1) / 1000 },
    };
  }),
);
