// The global devtools hook, in the manner of React DevTools' __REACT_DEVTOOLS_GLOBAL_HOOK__: one
// publish/subscribe object on the page's global scope. Pages running ccmem publish memory statistics to
// it; a <ccm-memory-panel> in the page or the DevTools extension (whose content script installs the hook
// before any page script runs) subscribes. Whoever comes first installs it, the other finds it.
// Every event is sanitized on publish: statistics only, never conversation text. See docs/devtools.md.
import { type MemorySample, sanitizeSample } from './stats.js';

export const HOOK_NAME = '__CCMEM_DEVTOOLS_HOOK__';
export const HOOK_VERSION = 1;
/** Events kept for subscribers that arrive late (a panel opened after the first turns). */
const REPLAY_LIMIT = 256;
/** Engine ids are short identifiers, so that no free text can travel in them either. */
const ENGINE_ID = /^[\w.:-]{1,64}$/;

export type HookEvent =
  /** The statistics after a turn (or after a memory import). */
  | { type: 'sample'; engine: string; sample: MemorySample }
  /** The engine's conversation was replaced or the engine disposed: forget its samples. */
  | { type: 'reset'; engine: string };

export type HookListener = (event: HookEvent) => void;

export interface CcmemDevtoolsHook {
  readonly version: number;
  /** Sanitizes `event` and delivers it to every subscriber; malformed events are dropped. */
  publish(event: HookEvent): void;
  /** Replays the kept events to `listener`, then delivers new ones; returns the unsubscribe function. */
  subscribe(listener: HookListener): () => void;
}

/** A copy of `value` with only the fields of a HookEvent, or undefined when it is not one. */
export function sanitizeEvent(value: unknown): HookEvent | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { type, engine, sample } = value as Record<string, unknown>;
  if (typeof engine !== 'string' || !ENGINE_ID.test(engine)) return undefined;
  if (type === 'reset') return { type, engine };
  if (type !== 'sample') return undefined;
  const clean = sanitizeSample(sample);
  return clean && { type, engine, sample: clean };
}

function createHook(): CcmemDevtoolsHook {
  const listeners = new Set<HookListener>();
  let kept: HookEvent[] = [];
  const deliver = (listener: HookListener, event: HookEvent) => {
    try {
      listener(event);
    } catch (e) {
      // one failing subscriber must not starve the others; the error still surfaces
      queueMicrotask(() => {
        throw e;
      });
    }
  };
  return {
    version: HOOK_VERSION,
    publish(event) {
      const clean = sanitizeEvent(event);
      if (!clean) return;
      if (clean.type === 'reset') kept = kept.filter((e) => e.engine !== clean.engine);
      else kept = [...kept, clean].slice(-REPLAY_LIMIT);
      for (const l of listeners) deliver(l, clean);
    },
    subscribe(listener) {
      for (const e of kept) deliver(listener, e);
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

const isHook = (v: unknown): v is CcmemDevtoolsHook =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as CcmemDevtoolsHook).publish === 'function' &&
  typeof (v as CcmemDevtoolsHook).subscribe === 'function';

/** The hook on `scope` (default: this global scope), installed first if there is none. */
export function installHook(scope: object = globalThis): CcmemDevtoolsHook {
  const existing = (scope as Record<string, unknown>)[HOOK_NAME];
  if (isHook(existing)) return existing;
  const hook = createHook();
  Object.defineProperty(scope, HOOK_NAME, { value: hook, configurable: true, enumerable: false, writable: false });
  return hook;
}

/** Publishes one turn's statistics for `engine` (a short id such as 'chat-1'). */
export function publishSample(engine: string, sample: MemorySample, scope?: object): void {
  installHook(scope).publish({ type: 'sample', engine, sample });
}
