// cachedSource in headless Chromium over the dev server's /fixtures/: the Cache API and OPFS stores keep the
// model across a page reload (downloaded in a worker, read back in the page with no request), and a full
// disk (simulated) gives an error that quotes navigator.storage.estimate().
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CachePage } from '../browser/cache/page.js';
import type { CacheReport, CacheRequest } from '../browser/cache/run.js';
import { type BrowserEnv, runInWorker, startBrowserEnv } from '../helpers/browser.js';

const FILES = ['stories260K.bin', 'tok512.bin'];
const CHUNK = 256 * 1024;
const bytes = FILES.map((f) => readFileSync(path.resolve('../shared/fixtures/stories260K', f)));
const sha256 = Object.fromEntries(FILES.map((f, i) => [f, createHash('sha256').update(bytes[i]!).digest('hex')]));
const chunks = bytes.reduce((n, b) => n + Math.ceil(b.length / CHUNK), 0);

const call = <K extends keyof CachePage>(page: Page, name: K, ...args: Parameters<CachePage[K]>) =>
  page.evaluate(([n, a]) => (window as unknown as Record<string, (...x: unknown[]) => unknown>)[n]!(...a), [
    name,
    args,
  ] as const) as Promise<Awaited<ReturnType<CachePage[K]>>>;

describe('cachedSource in Chromium', () => {
  let env: BrowserEnv | undefined;
  let hasOpfs = false;
  beforeAll(async () => {
    env = await startBrowserEnv();
    hasOpfs = await env.withPage('/test/browser/cache/', (page) => call(page, 'ccmemHasOpfs'));
  });
  afterAll(() => env?.close());

  const request = (cache: CacheRequest['cache']): CacheRequest => ({
    modelUrl: new URL('/fixtures/stories260K/', env!.baseUrl).href,
    cache,
    files: FILES,
    chunkBytes: CHUNK,
  });

  for (const cache of ['cache-api', 'opfs'] as const) {
    it(`${cache}: a worker downloads the files once; after a reload the page reads them with no request`, async (ctx) => {
      if (cache === 'opfs' && !hasOpfs) ctx.skip('OPFS is not available in this headless Chromium');
      await env!.withPage('/test/browser/cache/', async (page) => {
        const first = await runInWorker<CacheReport>(page, request(cache));
        expect(first.error).toBeUndefined();
        expect(first.sha256).toEqual(sha256);
        const gets = first.requests.filter((r) => r.startsWith('GET'));
        expect(gets).toHaveLength(chunks);
        for (const r of gets) expect(r).toMatch(/^GET \S+ bytes=\d+-\d+$/);
        for (const [i, file] of FILES.entries()) {
          const loaded = first.progress.filter((p) => p.file === file).map((p) => p.loaded);
          expect(loaded[0]).toBe(0);
          expect(loaded.at(-1)).toBe(bytes[i]!.length);
          expect(loaded).toEqual([...loaded].sort((a, b) => a - b));
        }
        const stored = await call(page, 'ccmemStored');
        expect(cache === 'opfs' ? stored.opfs.length : stored.cacheApi.length).toBe(chunks + FILES.length);

        await page.reload();
        await page.waitForFunction(() => 'ccmemCacheRun' in window);
        const second = await call(page, 'ccmemCacheRun', request(cache));
        expect(second.error).toBeUndefined();
        expect(second.sha256).toEqual(sha256);
        expect(second.requests).toEqual([]);
        expect(second.progress).toEqual(
          FILES.map((file, i) => ({ file, loaded: bytes[i]!.length, total: bytes[i]!.length })),
        );
      });
    });

    it(`${cache}: a full disk fails with the space navigator.storage.estimate() reports`, async (ctx) => {
      if (cache === 'opfs' && !hasOpfs) ctx.skip('OPFS is not available in this headless Chromium');
      await env!.withPage('/test/browser/cache/', async (page) => {
        await call(page, 'ccmemFillStorage', { usage: 987654321, quota: 987700000 });
        const r = await call(page, 'ccmemCacheRun', request(cache));
        expect(r.error?.code).toBe('STORAGE_QUOTA');
        expect(r.error?.message).toContain('stories260K.bin');
        expect(r.error?.message).toContain('987654321 bytes (941.9 MiB) used of a 987700000 bytes (941.9 MiB) quota');
        const stored = await call(page, 'ccmemStored');
        expect([...stored.cacheApi, ...stored.opfs]).toEqual([]); // nothing of the file left behind
      });
    });
  }
});
