// Where model files come from: a local folder (Node only), an http(s) folder URL, a Hugging Face hub id, or
// files already in memory (e.g. a converted llama2.c checkpoint). read() fetches only the requested byte range
// so weights can stream tensor by tensor without holding the whole file.

import { fetchError, invalidInput, modelFormat } from '../errors.js';

export interface FileSource {
  readonly id: string;
  exists(file: string): Promise<boolean>;
  size(file: string): Promise<number>;
  read(file: string, offset: number, length: number): Promise<Uint8Array>;
  text(file: string): Promise<string>;
  json<T = unknown>(file: string): Promise<T>;
}

export interface SourceOptions {
  /** A hub id's branch, tag or commit; default 'main'. Only hub ids have revisions. */
  revision?: string;
  /**
   * The server hub ids are fetched from, as `{remoteHost}/{id}/resolve/{revision}/{file}`: a Hugging Face
   * mirror (transformers.js `env.remoteHost`, huggingface_hub's HF_ENDPOINT); default DEFAULT_REMOTE_HOST.
   */
  remoteHost?: string;
  fetch?: typeof fetch;
  /** Bytes delivered so far from `file` by this source (all reads together); total = file size, 0 if unknown. */
  onProgress?: (p: { file: string; loaded: number; total: number }) => void;
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
export const DEFAULT_REMOTE_HOST = 'https://huggingface.co';

const isNode = () => typeof process !== 'undefined' && !!process.versions?.node;

/** In Node, whether `path` is an existing folder: a local "models/chat-tiny" wins over the hub id of that shape. */
function isLocalFolder(path: string): boolean {
  if (!isNode()) return false;
  const fs = process.getBuiltinModule?.('node:fs') as typeof import('node:fs') | undefined;
  return !!fs?.existsSync(path) && fs.statSync(path).isDirectory();
}

const isHubId = (spec: string) => HUB_ID.test(spec) && !isLocalFolder(spec);

/** True for http(s) URLs and hub ids "org/name" (in Node, unless a local folder of that name exists). */
export function isUrlOrHubId(spec: string): boolean {
  return /^https?:\/\//i.test(spec) || isHubId(spec);
}

export function openSource(spec: string, options: SourceOptions = {}): FileSource {
  const http = (url: string) => withText(spec, new HttpSource(spec, url.replace(/\/+$/, ''), options));
  if (isHubId(spec)) return http(hubFolderUrl(spec, options));
  if (options.revision !== undefined) {
    throw invalidInput(`a revision (${options.revision}) applies to hub ids "org/name", not to ${spec}`);
  }
  if (/^https?:\/\//i.test(spec)) return http(spec);
  if (isNode()) {
    const root = spec.replace(/(.)\/+$/, '$1');
    return withText(root, new LocalSource(root, options));
  }
  // In a browser a plain path is a folder on the page's own server.
  const base = (globalThis as { location?: { href: string } }).location?.href;
  if (!base) throw invalidInput(`cannot open "${spec}": not a URL or hub id, and local paths need Node`);
  return http(new URL(spec, base).href);
}

/** The folder URL of hub id `id` at the options' revision on their host. */
export function hubFolderUrl(id: string, options: Pick<SourceOptions, 'revision' | 'remoteHost'> = {}): string {
  const host = options.remoteHost ?? DEFAULT_REMOTE_HOST;
  if (!/^https?:\/\/[^/]/i.test(host)) {
    throw invalidInput(`the hub host must be an http(s) URL such as ${DEFAULT_REMOTE_HOST}, got "${host}"`);
  }
  const revision = options.revision ?? 'main';
  if (typeof revision !== 'string' || revision === '') {
    throw invalidInput(`a hub revision must be a branch, tag or commit name, got ${JSON.stringify(revision)}`);
  }
  return `${host.replace(/\/+$/, '')}/${id}/resolve/${encodeURIComponent(revision)}`;
}

/** A source over files held in memory (strings are UTF-8 encoded). */
export function memorySource(files: Record<string, string | Uint8Array>, id = 'memory'): FileSource {
  const bytes = new Map<string, Uint8Array>();
  for (const [name, v] of Object.entries(files))
    bytes.set(name, typeof v === 'string' ? new TextEncoder().encode(v) : v);
  const get = (file: string) => {
    checkName(id, file);
    const b = bytes.get(file);
    if (!b) throw modelFormat(`${id}: missing file ${file}`);
    return b;
  };
  return withText(id, {
    exists: async (file) => bytes.has(file),
    size: async (file) => get(file).byteLength,
    read: async (file, offset, length) => {
      const b = get(file);
      checkRange(id, file, offset, length, b.byteLength);
      return b.slice(offset, offset + length);
    },
    whole: async (file) => get(file),
  });
}

interface RawSource {
  exists(file: string): Promise<boolean>;
  size(file: string): Promise<number>;
  read(file: string, offset: number, length: number): Promise<Uint8Array>;
  whole(file: string): Promise<Uint8Array>;
}

/** Adds text() and json() (with errors naming the file) to a byte-level source. */
function withText(id: string, raw: RawSource): FileSource {
  const text = async (file: string) => new TextDecoder().decode(await raw.whole(file));
  return {
    id,
    exists: (file) => raw.exists(file),
    size: (file) => raw.size(file),
    read: (file, offset, length) => raw.read(file, offset, length),
    text,
    async json<T>(file: string): Promise<T> {
      const s = await text(file);
      try {
        return JSON.parse(s) as T;
      } catch (e) {
        throw modelFormat(`${id}/${file}: invalid JSON (${(e as Error).message})`);
      }
    },
  };
}

function checkName(id: string, file: string): void {
  if (file === '' || file.startsWith('/') || file.split(/[\\/]/).includes('..')) {
    throw modelFormat(`${id}: invalid file name "${file}" (must be relative, without "..")`);
  }
}

function checkRange(id: string, file: string, offset: number, length: number, size?: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw invalidInput(`${id}/${file}: invalid byte range offset=${offset} length=${length}`);
  }
  if (size !== undefined && offset + length > size) {
    throw modelFormat(`${id}/${file}: truncated, needs bytes [${offset}, ${offset + length}) but the file has ${size}`);
  }
}

class Progress {
  private readonly loaded = new Map<string, number>();
  constructor(private readonly cb: SourceOptions['onProgress']) {}
  add(file: string, bytes: number, total: number | undefined) {
    if (!this.cb || bytes === 0) return;
    const loaded = (this.loaded.get(file) ?? 0) + bytes;
    this.loaded.set(file, loaded);
    this.cb({ file, loaded, total: total ?? 0 });
  }
}

type FsPromises = typeof import('node:fs/promises');

class LocalSource implements RawSource {
  private fs: Promise<FsPromises> | undefined;
  private readonly progress: Progress;

  constructor(
    private readonly id: string,
    options: SourceOptions,
  ) {
    this.progress = new Progress(options.onProgress);
  }

  // A computed specifier keeps browser bundlers from trying to resolve node:fs.
  private nodeFs(): Promise<FsPromises> {
    const name = 'node:fs/promises';
    this.fs ??= import(/* @vite-ignore */ name) as Promise<FsPromises>;
    return this.fs;
  }

  private path(file: string): string {
    checkName(this.id, file);
    return `${this.id}/${file}`;
  }

  /** The typed error for a failed open or stat of `file`; a folder that is not there is named as such. */
  private async failure(file: string, e: unknown): Promise<Error> {
    const code = (e as { code?: string }).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return fetchError(`${this.id}/${file}: ${(e as Error).message}`, e);
    const fs = await this.nodeFs();
    const folder = await fs.stat(this.id).then(
      (st) => st.isDirectory(),
      () => false,
    );
    return modelFormat(folder ? `${this.id}: missing file ${file}` : `${this.id}: no such folder`);
  }

  async exists(file: string): Promise<boolean> {
    const fs = await this.nodeFs();
    const path = this.path(file);
    try {
      return (await fs.stat(path)).isFile();
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw await this.failure(file, e);
    }
  }

  async size(file: string): Promise<number> {
    const fs = await this.nodeFs();
    try {
      return (await fs.stat(this.path(file))).size;
    } catch (e) {
      throw await this.failure(file, e);
    }
  }

  async read(file: string, offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.id, file, offset, length);
    const fs = await this.nodeFs();
    let handle: Awaited<ReturnType<FsPromises['open']>>;
    try {
      handle = await fs.open(this.path(file), 'r');
    } catch (e) {
      throw await this.failure(file, e);
    }
    try {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) {
          const size = (await handle.stat()).size;
          throw modelFormat(
            `${this.id}/${file}: truncated, needs bytes [${offset}, ${offset + length}) but the file has ${size}`,
          );
        }
        done += bytesRead;
      }
      this.progress.add(file, length, (await handle.stat()).size);
      return out;
    } finally {
      await handle.close();
    }
  }

  async whole(file: string): Promise<Uint8Array> {
    return this.read(file, 0, await this.size(file));
  }
}

class HttpSource implements RawSource {
  private readonly fetchFn: typeof fetch;
  private readonly sizes = new Map<string, number>();
  private readonly progress: Progress;

  constructor(
    private readonly id: string,
    private readonly base: string,
    options: SourceOptions,
  ) {
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.progress = new Progress(options.onProgress);
  }

  private url(file: string): string {
    checkName(this.id, file);
    return `${this.base}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  private async request(file: string, init: RequestInit): Promise<Response> {
    const url = this.url(file);
    let res: Response;
    try {
      res = await this.fetchFn(url, init);
    } catch (e) {
      throw fetchError(`${url}: ${(e as Error).message}`, e);
    }
    if (res.status === 404) throw modelFormat(`${this.id}: missing file ${file} (HTTP 404 from ${url})`);
    if (res.status === 416) throw modelFormat(`${this.id}/${file}: truncated, the requested range is past its end`);
    if (!res.ok) throw fetchError(`${url}: HTTP ${res.status} ${res.statusText}`.trim());
    // no model file is HTML: static hosts answer a missing file with their index page (SPA fallback)
    if (res.headers.get('content-type')?.startsWith('text/html')) {
      await res.body?.cancel();
      throw modelFormat(`${this.id}: missing file ${file} (${url} answered with an HTML page, a server's fallback)`);
    }
    return res;
  }

  async exists(file: string): Promise<boolean> {
    try {
      await this.size(file);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === 'MODEL_FORMAT') return false;
      throw e;
    }
  }

  async size(file: string): Promise<number> {
    const known = this.sizes.get(file);
    if (known !== undefined) return known;
    const head = await this.request(file, { method: 'HEAD' });
    let size = lengthHeader(head);
    if (size === undefined) {
      // No Content-Length on HEAD: ask for one byte and read the total from Content-Range.
      const res = await this.request(file, { headers: { Range: 'bytes=0-0' } });
      await res.body?.cancel();
      size = res.status === 206 ? rangeTotal(res) : lengthHeader(res);
      if (size === undefined) throw fetchError(`${this.url(file)}: the server reports no file size`);
    }
    this.sizes.set(file, size);
    return size;
  }

  async read(file: string, offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.id, file, offset, length, this.sizes.get(file));
    if (length === 0) return new Uint8Array(0);
    const res = await this.request(file, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
    let skip = offset; // a 200 answer carries the whole file: skip to the range while streaming
    if (res.status === 206) {
      const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (start !== undefined && Number(start) !== offset) {
        throw fetchError(`${this.url(file)}: asked for bytes from ${offset}, the server sent from ${start}`);
      }
      const total = rangeTotal(res);
      if (total !== undefined) this.sizes.set(file, total);
      skip = 0;
    } else {
      const total = lengthHeader(res);
      if (total !== undefined) this.sizes.set(file, total);
    }
    const out = await this.stream(file, res, skip, length);
    if (out.byteLength < length) {
      throw modelFormat(
        `${this.id}/${file}: truncated, needs bytes [${offset}, ${offset + length}) but got ${out.byteLength}`,
      );
    }
    return out;
  }

  async whole(file: string): Promise<Uint8Array> {
    const res = await this.request(file, {});
    return this.stream(file, res, 0, lengthHeader(res));
  }

  /** Reads `length` bytes (all, if undefined) after skipping `skip` bytes of the body, reporting progress. */
  private async stream(file: string, res: Response, skip: number, length: number | undefined): Promise<Uint8Array> {
    const total = this.sizes.get(file);
    if (!res.body)
      return new Uint8Array(await res.arrayBuffer()).slice(skip, length === undefined ? undefined : skip + length);
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    const out = length === undefined ? undefined : new Uint8Array(length);
    let filled = 0;
    try {
      while (length === undefined || filled < length) {
        const { done, value } = await reader.read();
        if (done) break;
        let chunk = value;
        if (skip > 0) {
          const n = Math.min(skip, chunk.byteLength);
          skip -= n;
          chunk = chunk.subarray(n);
        }
        if (out) {
          chunk = chunk.subarray(0, out.byteLength - filled);
          out.set(chunk, filled);
        } else chunks.push(chunk);
        filled += chunk.byteLength;
        this.progress.add(file, chunk.byteLength, total);
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
    if (out) return filled === out.byteLength ? out : out.slice(0, filled);
    const all = new Uint8Array(filled);
    let pos = 0;
    for (const c of chunks) {
      all.set(c, pos);
      pos += c.byteLength;
    }
    return all;
  }
}

/** The body length, unless the body is compressed (then Content-Length is not the file size). */
function lengthHeader(res: Response): number | undefined {
  const enc = res.headers.get('content-encoding');
  if (enc && enc !== 'identity') return undefined;
  const v = res.headers.get('content-length');
  return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
}

function rangeTotal(res: Response): number | undefined {
  const m = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}
