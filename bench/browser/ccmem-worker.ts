// ccmem inside a Web Worker: loads the model over HTTP (byte ranges, tensor by tensor, no cache) and runs
// the peers plan through the Session API, on the WebGPU adapter the browser gives it.
import { loadModel } from '../../src/model/load.js';
import { serveRequests, withGpu } from '../../test/browser/worker-kit.js';
import { ccmemRuns, type Plan, withoutEos } from '../peers-runs.js';

export interface CcmemRequest {
  /** Absolute URL of the model's Hugging Face folder. */
  modelUrl: string;
  plan: Plan;
}

serveRequests<CcmemRequest>((req) =>
  withGpu(async (gpu) => {
    const t = performance.now();
    const model = withoutEos(await loadModel(gpu, req.modelUrl, { cache: { cache: 'none' } }));
    const loadMs = performance.now() - t;
    return { loadMs, ...(await ccmemRuns(gpu, model, req.plan)) };
  }),
);
