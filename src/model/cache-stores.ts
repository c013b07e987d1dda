// Where cachedSource (cache.ts) keeps model files: each file as fixed-size chunks plus a small meta record,
// so a download interrupted at any point keeps every chunk already stored and resumes from there, and a read
// loads only the chunks it overlaps. One store holds the files of one model source.

import { invalidInput } from '../errors.js';

export interface CacheMeta {
  /** The file's size in bytes. */
  size: number;
  /** The chunk size the file was stored with. */
  chunkBytes: number;
  /** Chunks stored so far, always a prefix: 0 .. stored-1. The file is complete at ceil(size / chunkBytes). */
  stored: number;
  /** Set once the complete file was checked against this sha256 (lower-case hex). */
  sha256?: string;
}

export interface ChunkStore {
  meta(file: string): Promise<CacheMeta | undefined>;
  putMeta(file: string, meta: CacheMeta): Promise<void>;
  chunk(file: string, index: number): Promise<Uint8Array | undefined>;
  putChunk(file: string, index: number, bytes: Uint8Array): Promise<void>;
  /** Removes the file's meta and chunks. */
  drop(file: string): Promise<void>;
}

export const chunkCount = (m: CacheMeta) => Math.ceil(m.size / m.chunkBytes);
export const isComplete = (m: CacheMeta) => m.stored >= chunkCount(m);

/** A store in this process's memory, gone with it. Pass one store to several cachedSource()s of the same model
 * to share (or resume) their downloads; one store per model, as it keys files by name only. */
export function memoryStore(): ChunkStore {
  const metas = new Map<string, CacheMeta>();
  const chunks = new Map<string, Uint8Array>();
  const key = (file: string, index: number) => `${index}:${file}`;
  return {
    meta: async (file) => {
      const m = metas.get(file);
      return m && { ...m };
    },
    putMeta: async (file, meta) => void metas.set(file, { ...meta }),
    chunk: async (file, index) => chunks.get(key(file, index)),
    putChunk: async (file, index, bytes) => void chunks.set(key(file, index), bytes.slice()),
    drop: async (file) => {
      const m = metas.get(file);
      metas.delete(file);
      for (let i = 0; m && i < m.stored; i++) chunks.delete(key(file, i));
    },
  };
}

/** The Cache API cache that holds every source's files. */
export const CACHE_NAME = 'ccmem-models';

/**
 * The Cache API (browsers and their workers, secure contexts). Entries live under a synthetic URL per
 * source `key`, file and chunk; cache entries must be http(s) requests, and this host never resolves.
 */
export function cacheApiStore(key: string): ChunkStore {
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage)
    throw invalidInput(`cache 'cache-api': the Cache API is not available here (Node, or not a secure context)`);
  let opened: Promise<Cache> | undefined;
  const cache = () => (opened ??= storage.open(CACHE_NAME));
  const prefix = (file: string) => `https://ccmem.cache/${encodeURIComponent(key)}/${encodeURIComponent(file)}/`;
  return {
    async meta(file) {
      const res = await (await cache()).match(`${prefix(file)}meta`);
      return res ? ((await res.json()) as CacheMeta) : undefined;
    },
    async putMeta(file, meta) {
      await (await cache()).put(`${prefix(file)}meta`, new Response(JSON.stringify(meta)));
    },
    async chunk(file, index) {
      const res = await (await cache()).match(`${prefix(file)}${index}`);
      return res ? new Uint8Array(await res.arrayBuffer()) : undefined;
    },
    async putChunk(file, index, bytes) {
      await (await cache()).put(`${prefix(file)}${index}`, new Response(bytes as Uint8Array<ArrayBuffer>));
    },
    async drop(file) {
      const c = await cache();
      const start = prefix(file);
      // The meta goes first: a drop cut short leaves orphan chunks, never a meta that points at missing ones.
      await c.delete(`${start}meta`);
      for (const req of await c.keys()) if (req.url.startsWith(start)) await c.delete(req);
    },
  };
}

/** Only in dedicated workers, and typed there only: the OPFS write path where createWritable is missing. */
interface SyncAccessHandle {
  truncate(size: number): void;
  write(data: Uint8Array, options: { at: number }): number;
  flush(): void;
  close(): void;
}

/** The origin private file system: a folder ccmem-models/<key>/<file>/ with one file per chunk and meta.json. */
export function opfsStore(key: string): ChunkStore {
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  if (typeof storage?.getDirectory !== 'function') {
    throw invalidInput(`cache 'opfs': the origin private file system is not available here`);
  }
  let root: Promise<FileSystemDirectoryHandle> | undefined;
  const sourceDir = () =>
    (root ??= storage
      .getDirectory()
      .then((d) => d.getDirectoryHandle(CACHE_NAME, { create: true }))
      .then((d) => d.getDirectoryHandle(encodeURIComponent(key), { create: true })));
  const fileDir = async (file: string, create: boolean) => {
    try {
      return await (await sourceDir()).getDirectoryHandle(encodeURIComponent(file), { create });
    } catch (e) {
      if ((e as Error).name === 'NotFoundError') return undefined;
      throw e;
    }
  };
  const readEntry = async (file: string, name: string) => {
    try {
      const handle = await (await fileDir(file, false))?.getFileHandle(name);
      return handle && new Uint8Array(await (await handle.getFile()).arrayBuffer());
    } catch (e) {
      if ((e as Error).name === 'NotFoundError') return undefined;
      throw e;
    }
  };
  const writeEntry = async (file: string, name: string, bytes: Uint8Array) => {
    const dir = (await fileDir(file, true))!;
    const handle = await dir.getFileHandle(name, { create: true });
    if (typeof handle.createWritable === 'function') {
      const w = await handle.createWritable();
      try {
        await w.write(bytes as Uint8Array<ArrayBuffer>);
        await w.close();
      } catch (e) {
        await w.abort().catch(() => {}); // releases the file's lock, so that a drop can remove it
        throw e;
      }
      return;
    }
    const sync = await (
      handle as unknown as { createSyncAccessHandle(): Promise<SyncAccessHandle> }
    ).createSyncAccessHandle();
    try {
      sync.truncate(0);
      sync.write(bytes, { at: 0 });
      sync.flush();
    } finally {
      sync.close();
    }
  };
  return {
    async meta(file) {
      const bytes = await readEntry(file, 'meta.json');
      return bytes && (JSON.parse(new TextDecoder().decode(bytes)) as CacheMeta);
    },
    putMeta: (file, meta) => writeEntry(file, 'meta.json', new TextEncoder().encode(JSON.stringify(meta))),
    chunk: (file, index) => readEntry(file, String(index)),
    putChunk: (file, index, bytes) => writeEntry(file, String(index), bytes),
    async drop(file) {
      const dir = await sourceDir();
      for (let attempt = 0; ; attempt++) {
        try {
          return await dir.removeEntry(encodeURIComponent(file), { recursive: true });
        } catch (e) {
          const name = (e as Error).name;
          if (name === 'NotFoundError') return;
          // A writer closed or aborted just now may hold its file's lock a moment longer.
          if (name !== 'NoModificationAllowedError' || attempt === 5) throw e;
          await new Promise((ok) => setTimeout(ok, 10 * 2 ** attempt));
        }
      }
    },
  };
}
