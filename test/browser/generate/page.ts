import { exposeWorker } from '../page-kit.js';

exposeWorker(() => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }));
