// A stand-in for the engine's module worker in Node: the real WorkerEngine exposed with Comlink on one
// end of a MessageChannel, the client talking to the other end through this Worker-like object, and
// crash() to simulate a worker that dies (its ports close and it fires an error event).
import * as Comlink from 'comlink';
import type { WorkerLike } from '../../src/client/connection.js';
import type { CoreLoader } from '../../src/worker/core.js';
import { WorkerEngine } from '../../src/worker/engine.js';

export class FakeWorker extends EventTarget implements WorkerLike {
  readonly engine: WorkerEngine;
  terminated = false;
  private readonly channel = new MessageChannel();

  constructor(loader: CoreLoader) {
    super();
    this.engine = new WorkerEngine(loader);
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

/** A worker factory for createEngine that keeps every worker it started. */
export function fakeWorkers(loader: CoreLoader): (() => FakeWorker) & { started: FakeWorker[] } {
  const started: FakeWorker[] = [];
  const spawn = () => {
    const w = new FakeWorker(loader);
    started.push(w);
    return w;
  };
  return Object.assign(spawn, { started });
}
