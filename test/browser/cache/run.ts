// Reads whole model files through cachedSource and reports what went over the network; shared by the page
// (window.ccmemCacheRun) and its worker (window.ccmemRun), which use the same origin's storage.
import { isCcmemError } from '../../../src/errors.js';
import { type CacheKind, cachedSource, type FileProgress } from '../../../src/model/cache.js';
import { openSource } from '../../../src/model/source.js';

export interface CacheRequest {
  modelUrl: string;
  cache: CacheKind;
  files: string[];
  chunkBytes: number;
}

export interface CacheReport {
  /** sha256 (hex) of each file as read back through the cached source. */
  sha256: Record<string, string>;
  /** The requests the wrapped HTTP source made: "METHOD file range". */
  requests: string[];
  progress: FileProgress[];
  error?: { code: string; message: string };
}

export async function runCache(r: CacheRequest): Promise<CacheReport> {
  const report: CacheReport = { sha256: {}, requests: [], progress: [] };
  const logged: typeof fetch = (input, init) => {
    const file = String(input).slice(r.modelUrl.length);
    report.requests.push(`${init?.method ?? 'GET'} ${file} ${new Headers(init?.headers).get('range') ?? ''}`.trim());
    return fetch(input, init);
  };
  try {
    const src = cachedSource(openSource(r.modelUrl, { fetch: logged }), {
      cache: r.cache,
      chunkBytes: r.chunkBytes,
      onProgress: (p) => report.progress.push(p),
    });
    for (const file of r.files) {
      const bytes = await src.read(file, 0, await src.size(file));
      const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
      report.sha256[file] = Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
    }
  } catch (e) {
    if (!isCcmemError(e)) throw e;
    report.error = { code: e.code, message: e.message };
  }
  return report;
}
