// One running engine worker: its Comlink proxy, and the detection of its death. A worker that reports
// an error event (an uncaught error, or a module that failed to load) is treated as crashed: it is
// terminated and every pending and later call rejects with WORKER_LOST (its GPU device died with it).
import * as Comlink from 'comlink';
import { CcmemError } from '../errors.js';
import type { WorkerApi } from '../worker/protocol.js';

/** A module Worker, or anything that talks like one (the protocol tests use a MessagePort pair). */
export type WorkerLike = Comlink.Endpoint & { terminate(): void };

export type Remote = Comlink.Remote<WorkerApi>;

export const deviceLost = (why: string) => new CcmemError('DEVICE_LOST', why);
export const workerLost = (why: string) => new CcmemError('WORKER_LOST', why);

export class Connection {
  readonly remote: Remote;
  private failure: CcmemError | undefined;
  private readonly failed: Promise<never>;
  private reject: ((e: CcmemError) => void) | undefined;
  private readonly onError: (event: Event) => void;

  /** `onCrash` runs once if the worker dies (not when close() ends it). */
  constructor(
    private readonly worker: WorkerLike,
    onCrash: (error: CcmemError) => void,
  ) {
    this.failed = new Promise<never>((_, reject) => (this.reject = reject));
    this.failed.catch(() => undefined);
    this.remote = Comlink.wrap<WorkerApi>(worker);
    this.onError = (event) => {
      const e = event as Partial<ErrorEvent>;
      const where = e.filename ? ` (${e.filename}:${e.lineno})` : '';
      const error = workerLost(
        `the engine's worker crashed: ${e.message || 'an error event without a message'}${where}`,
      );
      if (this.close(error)) onCrash(error);
    };
    worker.addEventListener('error', this.onError as EventListener);
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** Runs `fn` against the worker; rejects with the crash error if the worker dies before it settles. */
  call<T>(fn: (remote: Remote) => Promise<T>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return Promise.race([fn(this.remote), this.failed]);
  }

  /** Terminates the worker; pending and later calls reject with `reason`. False if it was already closed. */
  close(reason: CcmemError): boolean {
    if (this.failure) return false;
    this.failure = reason;
    this.reject?.(reason);
    this.worker.removeEventListener('error', this.onError as EventListener);
    this.worker.terminate();
    return true;
  }
}
