// createEngine(): the page-side engine. The model, its GPU device and the chats live in a module worker
// (src/worker); this side streams turns in and text out. When the worker crashes or its device is lost,
// onError hears of it, pending calls reject with DEVICE_LOST, and a new worker is started, the model
// reloaded and every chat restored from its last save, so the conversations go on. A worker that dies
// again before that restart is done (a chat whose restore kills it, say) is not restarted again: the
// engine reports WORKER_LOST and refuses further calls, instead of restarting without end.
// Each chat publishes its memory statistics on the page's devtools hook (./devtools.ts).
import * as Comlink from 'comlink';
import { type CcmemError, invalidInput, isCcmemError } from '../errors.js';
import type { LedgerSnapshot } from '../gpu/ledger.js';
import { isUrlOrHubId } from '../model/source.js';
import {
  type EngineInfo,
  type EngineInit,
  type EngineMemory,
  type LoadProgress,
  registerErrorTransfer,
} from '../worker/protocol.js';
import { type ChatOptions, EngineChat } from './chat.js';
import { Completions } from './completions.js';
import { Connection, deviceLost, type WorkerLike, workerLost } from './connection.js';
import { type DevtoolsOption, DevtoolsPublisher } from './devtools.js';

export interface EngineOptions extends EngineInit {
  /** Per model file: bytes loaded so far and its total size. Called again when a restarted worker reloads. */
  onProgress?: (p: LoadProgress) => void;
  /** A crashed worker or a lost device (the engine then restarts), or a restart that failed (the engine is unusable). */
  onError?: (error: CcmemError) => void;
  /**
   * The worker to run the engine in (its module must `import 'ccmem/worker'`). A function lets the
   * engine start a fresh one after a crash; with a Worker instance a crash leaves the engine unusable.
   * Default: the package's own module worker.
   */
  worker?: WorkerLike | (() => WorkerLike);
  /**
   * Publish each chat's memory statistics on the page's devtools hook after every turn (docs/devtools.md),
   * for a `<ccm-memory-panel hook>` and the DevTools extension. `{ id }` names the engine there (its chats
   * are `id.1`, `id.2`, ..., the completions facade `id.completions`); false publishes nothing.
   * Default: true, with the id `ccmem-N` (N counts the engines of the page).
   */
  devtools?: DevtoolsOption;
}

/** engine.chat(options) opens a chat; engine.chat.completions.create(...) is the OpenAI-style facade. */
export type ChatFactory = ((options?: ChatOptions) => EngineChat) & { completions: Completions };

const defaultWorker = (): WorkerLike => new Worker(new URL('../worker/entry.js', import.meta.url), { type: 'module' });

/** Starts the worker and loads the model; rejects (and ends the worker) if loading fails. */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  const engine = new Engine(options);
  await engine.link();
  return engine;
}

export class Engine {
  readonly chat: ChatFactory;
  /** @internal Where the chats publish their statistics; undefined with { devtools: false }. */
  readonly devtools: DevtoolsPublisher | undefined;
  private conn!: Connection;
  /** The current worker loaded, and after a restart its chats restored; rejects if that failed. */
  private ready!: Promise<void>;
  private loaded: EngineInfo | undefined;
  /** The connection whose worker finished loading and restoring; a crash of any other one is fatal after a load. */
  private up: Connection | undefined;
  /** Why the engine cannot be used any more (disposed, or a restart failed). */
  private broken: CcmemError | undefined;
  private disposed = false;
  private readonly chats = new Set<EngineChat>();
  private readonly init: EngineInit;
  private readonly spawn: (() => WorkerLike) | undefined;

  constructor(private readonly options: EngineOptions) {
    const { model, revision, remoteHost, adapter, memory, capacity, format, cache, worker } = options;
    if (typeof model !== 'string' || !model) throw invalidInput('createEngine needs { model: URL or hub id }');
    registerErrorTransfer();
    this.devtools = DevtoolsPublisher.create(options.devtools);
    this.init = {
      model: resolveSpec(model),
      revision,
      remoteHost,
      adapter: adapter && resolveSpec(adapter),
      memory,
      capacity,
      format,
      cache,
    };
    this.spawn = typeof worker === 'function' ? worker : worker ? undefined : defaultWorker;
    this.chat = Object.assign((o: ChatOptions = {}) => this.openChat(o), { completions: new Completions(this) });
    this.start(worker && typeof worker !== 'function' ? worker : this.spawn!());
  }

  /** What was loaded: the model's id, the GPU adapter, the weight format, the policy and the cache size. */
  get info(): EngineInfo {
    if (!this.loaded) throw invalidInput('the engine is not loaded yet');
    return this.loaded;
  }

  get modelId(): string {
    return this.info.model;
  }

  /** The context-memory stats of `chat` (default: the chat used last) and the GPU allocation ledger. */
  async memory(chat?: EngineChat): Promise<EngineMemory> {
    const conn = await this.link();
    const id = chat && (await chat.remoteId());
    return conn.call((r) => r.memory(id));
  }

  /**
   * Stops every reply, frees every GPU buffer, destroys the device and ends the worker. Resolves with
   * the ledger as it stood just before the device went (only the device's own buffers remain), or
   * undefined when the worker could not say (it had crashed).
   */
  async dispose(): Promise<LedgerSnapshot | undefined> {
    if (this.disposed) return undefined;
    this.disposed = true;
    let ledger: LedgerSnapshot | undefined;
    try {
      const conn = await this.link();
      ledger = await conn.call((r) => r.dispose());
    } catch {
      // a dead worker: terminating it below frees its device
    }
    this.broken = invalidInput('the engine was disposed');
    this.conn.close(this.broken);
    this.chats.clear();
    this.devtools?.resetAll();
    return ledger;
  }

  /** @internal The loaded worker connection (EngineChat and Completions call through it). */
  async link(): Promise<Connection> {
    // a crash while waiting starts a new worker with a new `ready`: wait for the one that is current
    for (let ready = this.ready; ; ready = this.ready) {
      if (this.broken) throw this.broken;
      try {
        await ready;
      } catch (e) {
        throw this.broken ?? e;
      }
      if (this.broken) throw this.broken;
      if (ready === this.ready) return this.conn;
    }
  }

  /** @internal */
  forget(chat: EngineChat): void {
    this.chats.delete(chat);
  }

  private openChat(options: ChatOptions): EngineChat {
    if (this.broken) throw this.broken;
    const chat = new EngineChat(this, options);
    this.chats.add(chat);
    return chat;
  }

  /** Connects `worker`, loads the model in it, and reopens the chats a previous worker had. */
  private start(worker: WorkerLike): void {
    const conn = new Connection(worker, (e) => this.crashed(conn, e));
    this.conn = conn;
    const onProgress = this.options.onProgress && Comlink.proxy(this.options.onProgress);
    const onLost = Comlink.proxy((reason: string) => {
      const error = deviceLost(`the GPU device was lost: ${reason}`);
      if (conn.close(error)) this.crashed(conn, error);
    });
    const load = conn.call((r) => r.load(this.init, onProgress, onLost));
    const reopened = load.then(() => conn);
    reopened.catch(() => undefined); // (the failure is ready's)
    const restored = [...this.chats].map((chat) => chat.reopen(reopened));
    this.ready = load.then(async (info) => {
      this.loaded = info;
      for (const r of await Promise.allSettled(restored)) {
        // (a chat that failed because the worker died is reported by the crash)
        if (r.status === 'rejected' && !conn.closed) this.report(r.reason);
      }
      if (!conn.closed) this.up = conn;
    });
    this.ready.catch(() => conn.close(deviceLost('the engine failed to load')));
  }

  /**
   * The worker died: report it, and start a new one unless the engine was never loaded, cannot spawn, or
   * this was the restarted worker dying before it had restored the chats (it would die again).
   */
  private crashed(conn: Connection, error: CcmemError): void {
    if (conn !== this.conn || this.broken) return;
    this.report(error);
    if (!this.loaded) return; // createEngine rejects with the error
    if (!this.spawn) {
      this.broken = error;
      return;
    }
    if (this.up !== conn) {
      this.fail(
        workerLost(
          `the engine's worker died again while it was reloading the model and restoring the chats after a crash, ` +
            `so it is not restarted again (${error.message})`,
        ),
      );
      return;
    }
    this.start(this.spawn());
    this.ready.catch((e: unknown) => {
      if (!this.broken) this.fail(isCcmemError(e) ? e : deviceLost(`the engine could not restart: ${String(e)}`));
    });
  }

  /** The engine cannot go on: every later call rejects with `error`, and onError hears it once. */
  private fail(error: CcmemError): void {
    this.broken = error;
    this.report(error);
  }

  private report(e: unknown): void {
    if (isCcmemError(e)) this.options.onError?.(e);
  }
}

/** A page-relative model path, resolved against the page (the worker's own URL is elsewhere). */
function resolveSpec(spec: string): string {
  const base = (globalThis as { document?: { baseURI: string } }).document?.baseURI;
  return isUrlOrHubId(spec) || !base ? spec : new URL(spec, base).href;
}
