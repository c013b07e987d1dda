// Worker side of the browser-test protocol: answer the page's one request with one WorkerReply, and run
// GPU work on a fresh device whose validation errors fail the request instead of passing silently.
import { acquireGpu, type Gpu } from '../../src/gpu/device.js';
import type { WorkerReply } from './page-kit.js';

export function serveRequests<Req>(handler: (request: Req) => Promise<unknown>): void {
  self.onmessage = async (e: MessageEvent<Req>) => {
    let reply: WorkerReply;
    try {
      reply = { ok: true, result: await handler(e.data) };
    } catch (err) {
      reply = { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    }
    postMessage(reply);
  };
}

/** Acquires WebGPU through navigator.gpu (as the engine does in a worker), runs `fn`, then destroys it. */
export async function withGpu<T>(fn: (gpu: Gpu) => Promise<T>): Promise<T> {
  const gpu = await acquireGpu();
  try {
    gpu.device.pushErrorScope('validation');
    const result = await fn(gpu);
    const error = await gpu.device.popErrorScope();
    if (error) throw new Error(`WebGPU validation error: ${error.message}`);
    return result;
  } finally {
    gpu.destroy();
  }
}
