// Model files fetched once, kept, and read from the kept copy. cachedSource() wraps any FileSource
// (openSource's URL, hub id or folder): the first read of a file downloads all of it chunk by chunk with
// Range reads, reporting progress, retrying failed requests, and storing each chunk as it arrives, so an
// interrupted download resumes from the bytes already stored (in this session or, with a persistent
// store, the next one). Complete files can be checked against a sha256. Reads then come from the store.

import { aborted, CcmemError, fetchError, invalidInput, isCcmemError, modelFormat } from '../errors.js';
import {
  type CacheMeta,
  type ChunkStore,
  cacheApiStore,
  chunkCount,
  isComplete,
  memoryStore,
  opfsStore,
} from './cache-stores.js';
import type { FileSource } from './source.js';

export type CacheKind = 'cache-api' | 'opfs' | 'memory' | 'none';

export interface FileProgress {
  file: string;
  /** Bytes of `file` stored so far (cached) or delivered so far by reads ('none'); never decreases. */
  loaded: number;
  /** The file's size. */
  total: number;
}

export interface CacheOptions {
  /**
   * Where whole files are kept: the Cache API, the origin private file system (browsers), this process's
   * memory, a ChunkStore of your own, or 'none' (every read goes to the source, with retries and progress).
   * Default: 'cache-api' where it exists (browsers), else 'none' (Node).
   */
  cache?: CacheKind | ChunkStore;
  /** Names this model's copies in a persistent store; default the source's id. Make it name the revision
   * when the files behind the id can change. */
  key?: string;
  onProgress?: (p: FileProgress) => void;
  /** Expected sha256 (hex) per file name; a downloaded file that differs is dropped with a MODEL_FORMAT error. */
  sha256?: Record<string, string>;
  /** Cancels downloads between chunks and while waiting: reads then fail with ABORTED. */
  signal?: AbortSignal;
  /** How often one failed request (network error, HTTP error other than 404/416) is retried; default 3. */
  retries?: number;
  /** The unit of download, resume, progress and cached reads; default 4 MiB. */
  chunkBytes?: number;
}

const DEFAULT_CHUNK = 4 << 20;

export function cachedSource(inner: FileSource, options: CacheOptions = {}): FileSource {
  const { retries = 3, chunkBytes = DEFAULT_CHUNK, sha256 = {} } = options;
  if (!Number.isSafeInteger(retries) || retries < 0)
    throw invalidInput(`retries must be an integer >= 0, got ${retries}`);
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
    throw invalidInput(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  }
  const hashes = new Map<string, string>();
  for (const [file, hex] of Object.entries(sha256)) {
    if (!/^[0-9a-f]{64}$/i.test(hex)) throw invalidInput(`sha256 of ${file} must be 64 hex digits, got "${hex}"`);
    hashes.set(file, hex.toLowerCase());
  }
  const kind = options.cache ?? ('caches' in globalThis ? 'cache-api' : 'none');
  if (hashes.size && kind === 'none') throw invalidInput(`sha256 checks need a cache (in Node: cache 'memory')`);
  if (hashes.size && !globalThis.crypto?.subtle)
    throw invalidInput('sha256 checks need crypto.subtle (a secure context)');
  const net = new Requests(retries, options.signal);
  if (kind === 'none') return passThrough(inner, net, options.onProgress);
  const key = options.key ?? inner.id;
  const store =
    kind === 'memory'
      ? memoryStore()
      : kind === 'cache-api'
        ? cacheApiStore(key)
        : kind === 'opfs'
          ? opfsStore(key)
          : kind;
  return new CachedSource(inner, store, net, { chunkBytes, hashes, onProgress: options.onProgress });
}

class CachedSource implements FileSource {
  readonly id: string;
  /** Per file, its complete (and checked) copy's meta, or the download that makes it. */
  private readonly ready = new Map<string, Promise<CacheMeta>>();
  /** The chunk read last: tensors are read in file order, mostly several to a chunk. */
  private last: { file: string; index: number; bytes: Uint8Array } | undefined;

  constructor(
    private readonly inner: FileSource,
    private readonly store: ChunkStore,
    private readonly net: Requests,
    private readonly opts: { chunkBytes: number; hashes: Map<string, string>; onProgress: CacheOptions['onProgress'] },
  ) {
    this.id = inner.id;
  }

  private where(file: string): string {
    return named(this.id, file);
  }

  async exists(file: string): Promise<boolean> {
    const meta = await this.storedMeta(file);
    return (meta && isComplete(meta)) || this.net.call(this.where(file), () => this.inner.exists(file));
  }

  async size(file: string): Promise<number> {
    const meta = await this.storedMeta(file);
    return meta && isComplete(meta) ? meta.size : this.net.call(this.where(file), () => this.inner.size(file));
  }

  async read(file: string, offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw invalidInput(`${this.where(file)}: invalid byte range offset=${offset} length=${length}`);
    }
    const meta = await this.whole(file);
    if (offset + length > meta.size) {
      throw modelFormat(
        `${this.where(file)}: truncated, needs bytes [${offset}, ${offset + length}) but the file has ${meta.size}`,
      );
    }
    return this.readStored(file, meta, offset, length);
  }

  text(file: string): Promise<string> {
    return textOf(this, file);
  }

  json<T>(file: string): Promise<T> {
    return jsonOf<T>(this, file);
  }

  private whole(file: string): Promise<CacheMeta> {
    const known = this.ready.get(file);
    if (known) return known;
    const started = this.download(file);
    this.ready.set(file, started);
    // A failed download is forgotten, so the next read resumes it from what is stored.
    started.catch(() => this.ready.get(file) === started && this.ready.delete(file));
    return started;
  }

  private async download(file: string): Promise<CacheMeta> {
    const want = this.opts.hashes.get(file);
    let meta = await this.storedMeta(file);
    if (meta && isComplete(meta)) {
      if (!want || meta.sha256 === want) return this.report(file, meta);
      // Checked against another hash: another version of the file. Never checked: check the copy now.
      if (meta.sha256 === undefined && (await this.digest(file, meta)) === want) {
        return this.report(file, await this.save(file, { ...meta, sha256: want }));
      }
      await this.drop(file);
      meta = undefined;
    }
    const size = await this.net.call(this.where(file), () => this.inner.size(file));
    if (meta && meta.size !== size) {
      await this.drop(file); // a partial copy of a file that has changed since
      meta = undefined;
    }
    if (!meta) meta = await this.save(file, { size, chunkBytes: this.opts.chunkBytes, stored: 0 });
    this.report(file, meta);
    const { chunkBytes } = meta;
    while (!isComplete(meta)) {
      const start = meta.stored * chunkBytes;
      const bytes = await this.net.call(this.where(file), () =>
        this.inner.read(file, start, Math.min(chunkBytes, size - start)),
      );
      const index = meta.stored;
      await this.storing(file, size, () => this.store.putChunk(file, index, bytes));
      meta = this.report(file, await this.save(file, { ...meta, stored: meta.stored + 1 }));
    }
    if (!want) return meta;
    const got = await this.digest(file, meta);
    if (got !== want) {
      await this.drop(file);
      throw modelFormat(
        `${this.where(file)}: sha256 mismatch: expected ${want}, the downloaded file has ${got}; the copy was dropped`,
      );
    }
    return this.save(file, { ...meta, sha256: want });
  }

  private async readStored(file: string, meta: CacheMeta, offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const { chunkBytes } = meta;
    for (let pos = offset; pos < offset + length; ) {
      const index = Math.floor(pos / chunkBytes);
      const chunk = await this.chunk(file, meta, index);
      const from = pos - index * chunkBytes;
      const n = Math.min(chunk.byteLength - from, offset + length - pos);
      out.set(chunk.subarray(from, from + n), pos - offset);
      pos += n;
    }
    return out;
  }

  private async chunk(file: string, meta: CacheMeta, index: number): Promise<Uint8Array> {
    if (this.last?.file === file && this.last.index === index) return this.last.bytes;
    const bytes = await this.storing(file, meta.size, () => this.store.chunk(file, index));
    const expected = Math.min(meta.chunkBytes, meta.size - index * meta.chunkBytes);
    if (bytes?.byteLength !== expected) {
      // Evicted or damaged behind our back: forget the copy so that the next read downloads it again.
      this.ready.delete(file);
      await this.drop(file);
      throw fetchError(`${this.where(file)}: the cached copy lost chunk ${index} of ${chunkCount(meta)}; read again`);
    }
    this.last = { file, index, bytes };
    return bytes;
  }

  private async digest(file: string, meta: CacheMeta): Promise<string> {
    const bytes = await this.readStored(file, meta, 0, meta.size);
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
    return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  private async storedMeta(file: string): Promise<CacheMeta | undefined> {
    checkName(this.id, file);
    return this.storing(file, 0, () => this.store.meta(file));
  }

  private async save(file: string, meta: CacheMeta): Promise<CacheMeta> {
    await this.storing(file, meta.size, () => this.store.putMeta(file, meta));
    return meta;
  }

  private async drop(file: string): Promise<void> {
    if (this.last?.file === file) this.last = undefined;
    await this.storing(file, 0, () => this.store.drop(file));
  }

  private report(file: string, meta: CacheMeta): CacheMeta {
    this.opts.onProgress?.({ file, loaded: Math.min(meta.stored * meta.chunkBytes, meta.size), total: meta.size });
    return meta;
  }

  /** Runs a store operation; a full store drops the file's partial copy and says how much space there is. */
  private async storing<T>(file: string, size: number, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if ((e as { name?: unknown }).name === 'QuotaExceededError') {
        if (this.last?.file === file) this.last = undefined;
        await this.store.drop(file).catch(() => {});
        throw await quotaError(this.where(file), size, e);
      }
      throw isCcmemError(e) ? e : fetchError(`${this.where(file)}: the model cache failed: ${(e as Error).message}`, e);
    }
  }
}

/** Cache 'none': reads go to the source, with retries, cancellation and progress. */
function passThrough(inner: FileSource, net: Requests, onProgress: CacheOptions['onProgress']): FileSource {
  const loaded = new Map<string, number>();
  const source: FileSource = {
    id: inner.id,
    exists: (file) => net.call(named(inner.id, file), () => inner.exists(file)),
    size: (file) => net.call(named(inner.id, file), () => inner.size(file)),
    async read(file, offset, length) {
      const bytes = await net.call(named(inner.id, file), () => inner.read(file, offset, length));
      if (onProgress && bytes.byteLength > 0) {
        const total = await source.size(file);
        const sum = (loaded.get(file) ?? 0) + bytes.byteLength;
        loaded.set(file, sum);
        onProgress({ file, loaded: sum, total });
      }
      return bytes;
    },
    text: (file) => textOf(source, file),
    json: (file) => jsonOf(source, file),
  };
  return source;
}

/** Requests to the wrapped source: retried with backoff when they fail for a reason that may pass. */
class Requests {
  constructor(
    private readonly retries: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** `what` names the file in errors that do not. */
  async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.signal?.aborted) throw aborted('loading the model was cancelled');
      try {
        return await untilAborted(request(), this.signal);
      } catch (e) {
        // Missing files, bad ranges and cancellation stay as they are; network and HTTP errors may pass.
        if (isCcmemError(e) && e.code !== 'FETCH') throw e;
        if (attempt >= this.retries) {
          const tries = this.retries ? ` (gave up after ${attempt + 1} attempts)` : '';
          throw fetchError(`${isCcmemError(e) ? e.message : `${what}: ${describe(e)}`}${tries}`, e);
        }
        await sleep(Math.min(250 * 2 ** attempt, 4000), this.signal);
      }
    }
  }
}

/** An error's message and its cause's (fetch's "terminated" is caused by "other side closed"). */
function describe(e: unknown): string {
  const { message, cause } = e as { message?: string; cause?: { message?: string } };
  return cause?.message ? `${message} (${cause.message})` : String(message ?? e);
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted('loading the model was cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return untilAborted(new Promise((ok) => setTimeout(ok, ms)), signal);
}

async function textOf(source: FileSource, file: string): Promise<string> {
  return new TextDecoder().decode(await source.read(file, 0, await source.size(file)));
}

async function jsonOf<T>(source: FileSource, file: string): Promise<T> {
  const text = await textOf(source, file);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw modelFormat(`${named(source.id, file)}: invalid JSON (${(e as Error).message})`);
  }
}

/** A file as errors name it: a URL source's id may end with a slash. */
const named = (id: string, file: string) => `${id.replace(/\/+$/, '')}/${file}`;

function checkName(id: string, file: string): void {
  if (file === '' || file.startsWith('/') || file.split(/[\\/]/).some((part) => part === '..' || part === '.')) {
    throw modelFormat(`${id}: invalid file name "${file}" (must be relative, without "." or "..")`);
  }
}

async function quotaError(where: string, size: number, cause: unknown): Promise<CcmemError> {
  const mib = (n: number | undefined) => (n === undefined ? 'unknown' : `${n} bytes (${(n / 2 ** 20).toFixed(1)} MiB)`);
  let space = 'navigator.storage.estimate() is not available here';
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  if (typeof storage?.estimate === 'function') {
    try {
      const { usage, quota } = await storage.estimate();
      space = `navigator.storage.estimate() reports ${mib(usage)} used of a ${mib(quota)} quota`;
    } catch (e) {
      space = `navigator.storage.estimate() failed: ${(e as Error).message}`;
    }
  }
  return new CcmemError(
    'STORAGE_QUOTA',
    `${where}: no storage space left to cache this ${size}-byte file: ${space}. ` +
      `Free some space (cached models of other sites or versions) or load without a cache (cache: 'none').`,
    { cause },
  );
}
