// Page side of the browser-test protocol. A test page calls exposeWorker() once; the Node side
// (runInWorker in test/helpers/browser.ts) then calls window.ccmemRun(request), which starts a fresh
// module worker, posts it the request and settles with the worker's single reply.

/** What a worker posts back (see serveRequests in worker-kit.ts). */
export type WorkerReply = { ok: true; result: unknown } | { ok: false; error: string };

export interface PageApi {
  ccmemRun(request: unknown): Promise<unknown>;
}

/** `start` must be `() => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })` written
 * in the page's own module, so that Vite (and later a production bundler) sees the worker URL. */
export function exposeWorker(start: () => Worker): void {
  const api: PageApi = {
    ccmemRun: (request) =>
      new Promise((resolve, reject) => {
        const worker = start();
        worker.onmessage = (e: MessageEvent<WorkerReply>) => {
          worker.terminate();
          if (e.data.ok) resolve(e.data.result);
          else reject(new Error(e.data.error));
        };
        // A module that fails to load or throws at top level lands here, not in onmessage.
        worker.onerror = (e) => {
          worker.terminate();
          const where = e.filename ? ` (${e.filename}:${e.lineno})` : '';
          reject(new Error(`worker error: ${e.message || 'its module failed to load (see the Vite log)'}${where}`));
        };
        worker.postMessage(request);
      }),
  };
  Object.assign(window, api);
}
