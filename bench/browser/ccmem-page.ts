// The ccmem benchmark page: each window.ccmemRun(request) runs in a fresh module worker (ccmem-worker.ts),
// as an app runs the engine.
import { exposeWorker } from '../../test/browser/page-kit.js';

exposeWorker(() => new Worker(new URL('./ccmem-worker.ts', import.meta.url), { type: 'module' }));
