// A stand-in for the engine's module worker in Node: the real WorkerEngine exposed with Comlink on one
// end of a MessageChannel, the client talking to the other end through this Worker-like object, and
// crash() to simulate a worker that dies (its ports close and it fires an error event). A worker made
// with { crashOnRestore } dies as soon as it is asked to restore a chat (a save whose restore kills it).
import * as Comlink from 'comlink';
import type { WorkerLike } from '../../src/client/connection.js';
import type { CoreLoader } from '../../src/worker/core.js';
import { WorkerEngine } from '../../src/worker/engine.js';

export class FakeWorker extends EventTarget implements WorkerLike {
  readonly engine: WorkerEngine;
  terminated = false;
  private readonly channel = new MessageChannel();

  constructor(loader: CoreLoader, options: { crashOnRestore?: boolean } = {}) {
    super();
    this.engine = new WorkerEngine(loader);
    if (options.crashOnRestore) {
      const open = this.engine.openChat.bind(this.engine);
      this.engine.openChat = (o) => {
        if (!o.restore) return open(o);
        this.crash('out of memory while restoring a chat');
        return new Promise<never>(() => undefined); // a dead worker never answers
      };
    }
    Comlink.expose(this.engine, this.channel.port2);
  }

  postMessage(message: unknown, transfer: Transferable[] = []): void {
    this.channel.port1.postMessage(message, transfer);
  }

  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: object) {
    if (type === 'message') this.channel.port1.addEventListener(type, listener as EventListener);
    else super.addEventListener(type, listener, options);
  }

  override removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null) {
    if (type === 'message') this.channel.port1.removeEventListener(type, listener as EventListener);
    else super.removeEventListener(type, listener);
  }

  start(): void {
    this.channel.port1.start();
  }

  terminate(): void {
    this.terminated = true;
    this.channel.port1.close();
  }

  /** Dies as a worker with an uncaught error does: an error event, then nothing answers any more. */
  crash(message: string): void {
    this.channel.port1.close();
    this.dispatchEvent(Object.assign(new Event('error'), { message }));
  }
}

/**
 * A worker factory for createEngine that keeps every worker it started; `crashOnRestore(n)` says whether
 * the n-th one (0-based) dies when asked to restore a chat.
 */
export function fakeWorkers(
  loader: CoreLoader,
  crashOnRestore: (n: number) => boolean = () => false,
): (() => FakeWorker) & { started: FakeWorker[] } {
  const started: FakeWorker[] = [];
  const spawn = () => {
    const w = new FakeWorker(loader, { crashOnRestore: crashOnRestore(started.length) });
    started.push(w);
    return w;
  };
  return Object.assign(spawn, { started });
}
