// cachedSource over a real HTTP source: a local server on 127.0.0.1 with byte ranges that can be told to cut
// a response midway or answer 503, so downloads, resume, retries and the sha256 check run as in the field.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { type CacheOptions, cachedSource, type FileProgress } from '../../src/model/cache.js';
import { type ChunkStore, memoryStore } from '../../src/model/cache-stores.js';
import { openSource } from '../../src/model/source.js';
import { mulberry32 } from '../../src/util/random.js';
import { typedError } from '../helpers/checks.js';

const CHUNK = 64 * 1024;
const random = mulberry32(7);
const MODEL = Uint8Array.from({ length: 5 * CHUNK + 1234 }, () => Math.floor(random() * 256));
const MODEL_SHA = createHash('sha256').update(MODEL).digest('hex');
const FILES = new Map<string, Uint8Array>([
  ['/m/model.bin', MODEL],
  ['/m/config.json', new TextEncoder().encode('{"dim": 64}')],
]);

/** What the server answered: GET/HEAD of a path, the Range start (GET), the status and whether it was cut. */
interface Served {
  method: string;
  path: string;
  start?: number;
  status: number;
  cut?: boolean;
}
let log: Served[] = [];
/** Faults for the next GETs of model.bin by Range start, used up in order: 'cut' sends half the body and drops
 * the connection; a number is an HTTP status to answer instead. */
const faults = new Map<number, ('cut' | number)[]>();

function serve(req: IncomingMessage, res: ServerResponse) {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const data = FILES.get(path);
  const method = req.method ?? '';
  if (!data) {
    log.push({ method, path, status: 404 });
    res.writeHead(404).end();
    return;
  }
  if (method === 'HEAD') {
    log.push({ method, path, status: 200 });
    res.writeHead(200, { 'content-length': data.length }).end();
    return;
  }
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const end = m ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
  const fault = path === '/m/model.bin' ? faults.get(start)?.shift() : undefined;
  if (typeof fault === 'number') {
    log.push({ method, path, start, status: fault });
    res.writeHead(fault).end();
    return;
  }
  const body = data.subarray(start, end + 1);
  const status = m ? 206 : 200;
  log.push({ method, path, start, status, cut: fault === 'cut' });
  res.writeHead(status, {
    'content-length': body.length,
    ...(m ? { 'content-range': `bytes ${start}-${end}/${data.length}` } : {}),
  });
  if (fault === 'cut') res.write(body.subarray(0, body.length >> 1), () => res.destroy());
  else res.end(body);
}

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer(serve);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/m/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
});
afterEach(() => {
  log = [];
  faults.clear();
  vi.unstubAllGlobals();
});

/** A cached source over the server with 64 KiB chunks; `events` collects its progress. */
function open(options: CacheOptions = {}) {
  const events: FileProgress[] = [];
  const src = cachedSource(openSource(url), {
    cache: 'memory',
    chunkBytes: CHUNK,
    onProgress: (p) => events.push(p),
    ...options,
  });
  return { src, events };
}

/** Range starts of the model.bin GETs so far. */
const modelGets = () => log.filter((r) => r.method === 'GET' && r.path === '/m/model.bin').map((r) => r.start);
const chunkStarts = (from: number) =>
  Array.from({ length: Math.ceil(MODEL.length / CHUNK) - from }, (_, i) => (from + i) * CHUNK);

/** Byte equality without toEqual's per-element cost on large typed arrays. */
function expectBytes(got: Uint8Array, want: Uint8Array, label?: string) {
  expect(got.byteLength, label).toBe(want.byteLength);
  expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want), label).toBe(true);
}

function expectMonotonic(events: FileProgress[], file: string, from: number) {
  const mine = events.filter((e) => e.file === file);
  expect(mine[0]?.loaded).toBe(from);
  for (let i = 1; i < mine.length; i++) expect(mine[i]!.loaded).toBeGreaterThanOrEqual(mine[i - 1]!.loaded);
  expect(mine.at(-1)).toEqual({ file, loaded: MODEL.length, total: MODEL.length });
  for (const e of mine) expect(e.total).toBe(MODEL.length);
}

describe('cachedSource', () => {
  it('downloads a file once in chunks with monotonic progress, then reads from the copy', async () => {
    const { src, events } = open();
    // Two reads at once share one download.
    const [a, b] = await Promise.all([src.read('model.bin', 100, 1000), src.read('model.bin', 3 * CHUNK - 10, 30)]);
    expectBytes(a, MODEL.subarray(100, 1100));
    expectBytes(b, MODEL.subarray(3 * CHUNK - 10, 3 * CHUNK + 20));
    expect(modelGets()).toEqual(chunkStarts(0));
    expectMonotonic(events, 'model.bin', 0);
    expect(events.filter((e) => e.file === 'model.bin')).toHaveLength(chunkStarts(0).length + 1);

    const requests = log.length;
    const rand = mulberry32(3);
    for (let i = 0; i < 40; i++) {
      const offset = Math.floor(rand() * MODEL.length);
      const length = Math.floor(rand() * Math.min(3 * CHUNK, MODEL.length - offset + 1));
      const label = `[${offset}, +${length})`;
      expectBytes(await src.read('model.bin', offset, length), MODEL.subarray(offset, offset + length), label);
    }
    expectBytes(await src.read('model.bin', 0, MODEL.length), MODEL);
    expect(await src.size('model.bin')).toBe(MODEL.length);
    expect(await src.exists('model.bin')).toBe(true);
    expect(log.length).toBe(requests); // all of that from the copy

    expect(await src.json('config.json')).toEqual({ dim: 64 });
    expect(await src.text('config.json')).toBe('{"dim": 64}');
    expect(await src.exists('nope.bin')).toBe(false);
    expect(src.id).toBe(url);
  });

  it('fails reads past the end and of missing files with MODEL_FORMAT, without retrying', async () => {
    const { src } = open();
    const past = await typedError(src.read('model.bin', MODEL.length - 4, 5));
    expect(past.code).toBe('MODEL_FORMAT');
    expect(past.message).toMatch(/truncated/);
    log = [];
    const missing = await typedError(src.read('nope.bin', 0, 1));
    expect(missing.code).toBe('MODEL_FORMAT');
    expect(missing.message).toContain('nope.bin');
    expect(log).toHaveLength(1);
    expect((await typedError(src.read('../x', 0, 1))).code).toBe('MODEL_FORMAT');
    expect((await typedError(src.read('model.bin', -1, 1))).code).toBe('INVALID_INPUT');
  });

  it('resumes a download cut midway with a Range request from the bytes already stored', async () => {
    faults.set(3 * CHUNK, ['cut']);
    const { src, events } = open();
    expectBytes(await src.read('model.bin', 0, MODEL.length), MODEL);
    expect(log.filter((r) => r.cut).map((r) => r.start)).toEqual([3 * CHUNK]);
    // Chunks 0-2 once, then chunk 3 again after the cut, not the file from its start.
    expect(modelGets()).toEqual([0, CHUNK, 2 * CHUNK, 3 * CHUNK, ...chunkStarts(3)]);
    expectMonotonic(events, 'model.bin', 0);
  });

  it('resumes in a later source over the same store after a download that gave up', async () => {
    const store = memoryStore();
    faults.set(2 * CHUNK, ['cut']);
    const first = open({ cache: store, retries: 0 });
    const e = await typedError(first.src.read('model.bin', 0, 10));
    expect(e.code).toBe('FETCH');
    expect(e.message).toContain('model.bin');
    expect(await store.meta('model.bin')).toEqual({ size: MODEL.length, chunkBytes: CHUNK, stored: 2 });

    log = [];
    const second = open({ cache: store });
    expectBytes(await second.src.read('model.bin', 0, MODEL.length), MODEL);
    expect(modelGets()).toEqual(chunkStarts(2));
    expectMonotonic(second.events, 'model.bin', 2 * CHUNK);
  });

  it('retries failed requests with the given budget and then fails with FETCH', async () => {
    faults.set(0, [503, 503]);
    expectBytes(await open({ retries: 2 }).src.read('model.bin', 0, 8), MODEL.subarray(0, 8));
    expect(modelGets().slice(0, 3)).toEqual([0, 0, 0]);

    faults.set(0, [503, 503]);
    const e = await typedError(open({ retries: 1 }).src.read('model.bin', 0, 8));
    expect(e.code).toBe('FETCH');
    expect(e.message).toMatch(/503.*gave up after 2 attempts/);
  });

  it('checks sha256: a match is kept, a mismatch is a MODEL_FORMAT error and the copy is dropped', async () => {
    const store = memoryStore();
    const good = open({ cache: store, sha256: { 'model.bin': MODEL_SHA.toUpperCase() } });
    expectBytes(await good.src.read('model.bin', 0, MODEL.length), MODEL);
    expect((await store.meta('model.bin'))?.sha256).toBe(MODEL_SHA);

    const wrong = 'ab'.repeat(32);
    log = [];
    const bad = open({ cache: 'memory', sha256: { 'model.bin': wrong } });
    const e = await typedError(bad.src.read('model.bin', 0, 1));
    expect(e.code).toBe('MODEL_FORMAT');
    expect(e.message).toContain(`sha256 mismatch: expected ${wrong}, the downloaded file has ${MODEL_SHA}`);
    expect(modelGets()).toEqual(chunkStarts(0));
    // The next read downloads it again rather than trusting anything that was kept.
    log = [];
    await typedError(bad.src.read('model.bin', 0, 1));
    expect(modelGets()).toEqual(chunkStarts(0));
  });

  it('checks a copy kept without a hash when a hash is given later, and drops it if it differs', async () => {
    const store = memoryStore();
    await open({ cache: store }).src.read('model.bin', 0, 1);
    log = [];
    const checked = open({ cache: store, sha256: { 'model.bin': MODEL_SHA } });
    expectBytes(await checked.src.read('model.bin', 5, 5), MODEL.subarray(5, 10));
    expect(log).toEqual([]); // checked from the store, nothing fetched
    expect((await store.meta('model.bin'))?.sha256).toBe(MODEL_SHA);

    // A copy checked against another hash is another version: fetched anew (and here it mismatches).
    const e = await typedError(
      open({ cache: store, sha256: { 'model.bin': 'cd'.repeat(32) } }).src.read('model.bin', 0, 1),
    );
    expect(e.message).toMatch(/sha256 mismatch/);
    expect(modelGets()).toEqual(chunkStarts(0));
    expect(await store.meta('model.bin')).toBeUndefined();
  });

  it('cancels with ABORTED between chunks, keeping what is stored for a later resume', async () => {
    const store = memoryStore();
    const controller = new AbortController();
    const first = cachedSource(openSource(url), {
      cache: store,
      chunkBytes: CHUNK,
      signal: controller.signal,
      onProgress: (p) => p.loaded >= CHUNK && controller.abort(),
    });
    expect((await typedError(first.read('model.bin', 0, 1))).code).toBe('ABORTED');
    expect((await typedError(first.read('config.json', 0, 1))).code).toBe('ABORTED');
    expect((await store.meta('model.bin'))?.stored).toBe(1);
    log = [];
    expectBytes(await open({ cache: store }).src.read('model.bin', 0, MODEL.length), MODEL);
    expect(modelGets()).toEqual(chunkStarts(1));
  });

  it('downloads again a copy that lost a chunk behind its back', async () => {
    const inner = memoryStore();
    let evict = false;
    const store: ChunkStore = {
      ...inner,
      chunk: async (file, index) => (evict && index === 2 ? undefined : inner.chunk(file, index)),
    };
    const { src } = open({ cache: store });
    await src.read('model.bin', 0, 1);
    evict = true;
    const e = await typedError(src.read('model.bin', 2 * CHUNK, 10));
    expect(e.code).toBe('FETCH');
    expect(e.message).toMatch(/lost chunk 2/);
    evict = false;
    log = [];
    expectBytes(await src.read('model.bin', 2 * CHUNK, 10), MODEL.subarray(2 * CHUNK, 2 * CHUNK + 10));
    expect(modelGets()).toEqual(chunkStarts(0));
  });

  it('turns a full store into an error that reports navigator.storage.estimate()', async () => {
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ usage: 1234567, quota: 2345678 }) } });
    const inner = memoryStore();
    const store: ChunkStore = {
      ...inner,
      putChunk: async (file, index, bytes) => {
        if (index === 1) throw new DOMException('the quota has been exceeded', 'QuotaExceededError');
        return inner.putChunk(file, index, bytes);
      },
    };
    const e = await typedError(open({ cache: store }).src.read('model.bin', 0, 1));
    expect(e.code).toBe('STORAGE_QUOTA');
    expect(e.message).toContain('model.bin');
    expect(e.message).toContain('1234567 bytes (1.2 MiB) used of a 2345678 bytes (2.2 MiB) quota');
    expect(await store.meta('model.bin')).toBeUndefined(); // the partial copy was dropped
  });

  it("cache 'none' (Node's default) passes reads through with retries and progress", async () => {
    const events: FileProgress[] = [];
    faults.set(10, [503]);
    const src = cachedSource(openSource(url), { onProgress: (p) => events.push(p) });
    expectBytes(await src.read('model.bin', 10, 20), MODEL.subarray(10, 30));
    expectBytes(await src.read('model.bin', 100, 5), MODEL.subarray(100, 105));
    expect(modelGets()).toEqual([10, 10, 100]); // ranged reads, the first one retried
    expect(events).toEqual([
      { file: 'model.bin', loaded: 20, total: MODEL.length },
      { file: 'model.bin', loaded: 25, total: MODEL.length },
    ]);
    expect(await src.json('config.json')).toEqual({ dim: 64 });
  });

  it('refuses options it cannot honour with INVALID_INPUT', async () => {
    const inner = openSource(url);
    const cases: CacheOptions[] = [
      { sha256: { 'model.bin': MODEL_SHA } }, // no cache to check
      { cache: 'memory', sha256: { 'model.bin': 'xyz' } },
      { cache: 'cache-api' }, // no Cache API in Node
      { cache: 'opfs' },
      { cache: 'memory', retries: -1 },
      { cache: 'memory', chunkBytes: 0 },
    ];
    for (const options of cases) {
      let error: unknown;
      try {
        cachedSource(inner, options);
      } catch (e) {
        error = e;
      }
      expect(isCcmemError(error, 'INVALID_INPUT'), JSON.stringify(options)).toBe(true);
    }
  });
});
