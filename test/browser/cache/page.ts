// Test page for cachedSource: runs it here or in a module worker, reports what the origin's storage holds,
// and simulates a full disk (a stubbed navigator.storage.estimate and storage writes that fail with
// QuotaExceededError).
import { CACHE_NAME } from '../../../src/model/cache-stores.js';
import { exposeWorker } from '../page-kit.js';
import { type CacheRequest, runCache } from './run.js';

exposeWorker(() => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }));

export interface CachePage {
  ccmemCacheRun(r: CacheRequest): ReturnType<typeof runCache>;
  /** Entries of the Cache API cache and OPFS files (paths) that cachedSource keeps. */
  ccmemStored(): Promise<{ cacheApi: string[]; opfs: string[] }>;
  ccmemHasOpfs(): boolean;
  /** From now on this page's storage is full: chunk writes fail (Cache API puts of chunks, all OPFS writes). */
  ccmemFillStorage(estimate: { usage: number; quota: number }): void;
}

const quotaError = () => new DOMException('simulated: the quota has been exceeded', 'QuotaExceededError');

async function opfsFiles(dir: FileSystemDirectoryHandle, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const [name, handle] of dir as unknown as AsyncIterable<[string, FileSystemHandle]>) {
    if (handle.kind === 'file') out.push(`${prefix}${name}`);
    else out.push(...(await opfsFiles(handle as FileSystemDirectoryHandle, `${prefix}${name}/`)));
  }
  return out;
}

const api: CachePage = {
  ccmemCacheRun: runCache,
  async ccmemStored() {
    const cacheApi = (await (await caches.open(CACHE_NAME)).keys()).map((req) => req.url);
    const opfs = api.ccmemHasOpfs() ? await opfsFiles(await navigator.storage.getDirectory(), '') : [];
    return { cacheApi, opfs };
  },
  ccmemHasOpfs: () => typeof navigator.storage?.getDirectory === 'function',
  ccmemFillStorage(estimate) {
    Object.defineProperty(navigator.storage, 'estimate', { value: async () => estimate });
    const put = Cache.prototype.put;
    Cache.prototype.put = function (request, response) {
      return String(request).endsWith('/meta') ? put.call(this, request, response) : Promise.reject(quotaError());
    };
    if (typeof FileSystemWritableFileStream !== 'undefined') {
      FileSystemWritableFileStream.prototype.write = () => Promise.reject(quotaError());
    }
  },
};
Object.assign(window, api);
