// Turns a worker call that streams text through a callback into an async generator of the text pieces,
// whose return value is the call's result. The worker sends its reply only after its last callback has
// been delivered (src/worker/engine.ts), so every piece is yielded before the generator returns.
import * as Comlink from 'comlink';
import { aborted } from '../errors.js';

type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Starts `call(onDelta)` on the first next(). `signal`, or a consumer that stops iterating early, calls
 * `cancel` (which asks the worker to abort); an early exit also waits for the call to settle, so the
 * chat is free again when the loop is left.
 */
export async function* streamDeltas<R>(
  call: (onDelta: (delta: string) => void) => Promise<R>,
  cancel: () => void,
  signal?: AbortSignal,
): AsyncGenerator<string, R, undefined> {
  if (signal?.aborted) throw aborted();
  const queue: string[] = [];
  let settled: Settled<R> | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const running = call(
    Comlink.proxy((delta: string) => {
      queue.push(delta);
      notify();
    }),
  );
  running.then(
    (value) => {
      settled = { ok: true, value };
      notify();
    },
    (error: unknown) => {
      settled = { ok: false, error };
      notify();
    },
  );
  signal?.addEventListener('abort', cancel);
  let finished = false;
  try {
    for (;;) {
      const next = queue.shift();
      if (next !== undefined) yield next;
      else if (settled) break;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
    finished = true;
    if (!settled.ok) throw settled.error;
    return settled.value;
  } finally {
    signal?.removeEventListener('abort', cancel);
    if (!finished) {
      cancel();
      await running.catch(() => undefined);
    }
  }
}
