// The object the worker exposes with Comlink (see protocol.ts for the API). It keeps the chats, refuses
// a second request on a busy chat, turns abort() into the running turn's AbortSignal, streams deltas
// through the caller's callback, saves each chat after every finished turn (the client keeps the bytes
// to recover from a crash) and rolls a failed or aborted turn back to that save.
import * as Comlink from 'comlink';
import type { GenerationResult } from '../engine/session.js';
import { invalidInput } from '../errors.js';
import type { ChatMessage } from '../model/tokenizer.js';
import type { CoreChat, CoreLoader, EngineCore } from './core.js';
import {
  type CompletionInput,
  type DeltaCallback,
  type EngineInit,
  type EngineMemory,
  FACADE_CHAT,
  type LoadProgress,
  type SendOptions,
  type TurnResult,
  type WorkerApi,
} from './protocol.js';

interface ChatEntry {
  core: CoreChat;
  /** Set while a turn, an export or an import runs on the chat. */
  busy: AbortController | undefined;
  /** The chat after its last finished turn (or import); a failed turn returns to it. */
  saved: Uint8Array | undefined;
  /** Save after every turn (not the completions facade, which rebuilds from the messages instead). */
  persist: boolean;
}

const ROLES = new Set(['system', 'user', 'assistant']);

export class WorkerEngine implements WorkerApi {
  private core: EngineCore | undefined;
  private state: 'new' | 'loading' | 'ready' | 'disposed' = 'new';
  private readonly chats = new Map<number, ChatEntry>();
  private nextId = FACADE_CHAT + 1;
  /** The chat engine.memory() reports by default. */
  private recent: number | undefined;
  private readonly running = new Set<Promise<unknown>>();
  private onLost: ((reason: string) => unknown) | undefined;

  constructor(private readonly loader: CoreLoader) {}

  async load(init: EngineInit, onProgress?: (p: LoadProgress) => unknown, onLost?: (reason: string) => unknown) {
    if (this.state !== 'new') throw invalidInput(`the engine is already ${this.state}`);
    this.state = 'loading';
    let delivered: Promise<unknown> = Promise.resolve();
    try {
      this.core = await this.loader(init, (p) => {
        delivered = fire(onProgress, p);
      });
    } catch (e) {
      this.state = 'new';
      throw e;
    } finally {
      await delivered;
      release(onProgress);
    }
    if ((this.state as string) === 'disposed') {
      // disposed while loading: free what the load made
      await this.core.dispose();
      this.core = undefined;
      throw invalidInput('the engine was disposed while it was loading');
    }
    this.state = 'ready';
    this.onLost = onLost;
    void this.core.lost.then((reason) => {
      if (this.state === 'ready') void fire(onLost, reason);
    });
    return this.core.info;
  }

  async openChat(options: { system?: string; restore?: Uint8Array }): Promise<number> {
    const core = this.loaded().createChat(options.system);
    if (options.restore) {
      try {
        await core.restore(options.restore);
      } catch (e) {
        core.dispose();
        throw e;
      }
    }
    const id = this.nextId++;
    this.chats.set(id, { core, busy: undefined, saved: options.restore, persist: true });
    this.recent = id;
    return id;
  }

  async send(chatId: number, text: string, options: SendOptions, onDelta?: DeltaCallback): Promise<TurnResult> {
    const e = this.entry(chatId);
    this.recent = chatId;
    const result = await this.turn(e, text, options, onDelta);
    return { result, saved: e.saved! };
  }

  /** The completions facade: continues its conversation when `messages` extend it, else rebuilds it. */
  async complete(input: CompletionInput, onDelta?: DeltaCallback): Promise<GenerationResult> {
    const { messages, options } = input;
    checkMessages(messages);
    const core = this.loaded();
    let e = this.chats.get(FACADE_CHAT);
    if (!e) {
      e = { core: core.createChat(), busy: undefined, saved: undefined, persist: false };
      this.chats.set(FACADE_CHAT, e);
    }
    if (e.busy) throw busy();
    const before = messages.slice(0, -1);
    if (!sameMessages(e.core.history, before)) e.core.reset(before);
    this.recent = FACADE_CHAT;
    return this.turn(e, messages.at(-1)!.content, options, onDelta);
  }

  abort(chatId: number): void {
    this.chats.get(chatId)?.busy?.abort();
  }

  exportMemory(chatId: number): Promise<Uint8Array> {
    const e = this.entry(chatId);
    return this.exclusive(e, () => e.core.save());
  }

  importMemory(chatId: number, bytes: Uint8Array): Promise<void> {
    const e = this.entry(chatId);
    return this.exclusive(e, async () => {
      await e.core.restore(bytes);
      e.saved = bytes;
    });
  }

  closeChat(chatId: number): void {
    const e = this.entry(chatId);
    if (e.busy) throw busy();
    e.core.dispose();
    this.chats.delete(chatId);
    if (this.recent === chatId) this.recent = undefined;
  }

  memory(chatId?: number): EngineMemory {
    const core = this.loaded();
    const id = chatId ?? this.recent;
    const chat = id === undefined ? undefined : this.entry(id).core;
    const turns = chat?.history.filter((m) => m.role === 'user').length;
    return { memory: chat?.stats(), turns, ledger: core.ledger() };
  }

  async dispose() {
    if (this.state === 'disposed') return undefined;
    const core = this.core;
    this.state = 'disposed';
    this.core = undefined;
    for (const e of this.chats.values()) e.busy?.abort();
    await Promise.allSettled(this.running);
    this.chats.clear();
    release(this.onLost);
    return core?.dispose();
  }

  private loaded(): EngineCore {
    if (this.state === 'disposed') throw invalidInput('the engine was disposed');
    if (!this.core) throw invalidInput('the engine has no model loaded yet');
    return this.core;
  }

  private entry(chatId: number): ChatEntry {
    this.loaded();
    const e = this.chats.get(chatId);
    if (!e) throw invalidInput(`there is no chat ${chatId} (it was closed, or opened in an earlier worker)`);
    return e;
  }

  private async exclusive<T>(e: ChatEntry, fn: () => Promise<T>): Promise<T> {
    if (e.busy) throw busy();
    e.busy = new AbortController();
    const run = fn();
    this.running.add(run); // dispose waits for it before destroying the device
    try {
      return await run;
    } finally {
      this.running.delete(run);
      e.busy = undefined;
    }
  }

  private turn(e: ChatEntry, text: string, options: SendOptions, onDelta?: DeltaCallback): Promise<GenerationResult> {
    if (e.busy) throw busy();
    const controller = new AbortController();
    e.busy = controller;
    const start = [...e.core.history];
    const run = (async () => {
      let delivered: Promise<unknown> = Promise.resolve();
      try {
        const stream = e.core.send(text, { ...options, signal: controller.signal });
        let step = await stream.next();
        while (!step.done) {
          if (step.value.delta) delivered = fire(onDelta, step.value.delta);
          step = await stream.next();
        }
        if (e.persist) e.saved = await e.core.save();
        return step.value;
      } catch (err) {
        // (a lost device fails the rollback too: the client then restarts the worker from its own copy)
        await (e.saved ? e.core.restore(e.saved) : Promise.resolve(e.core.reset(start))).catch(() => undefined);
        throw err;
      } finally {
        // deltas travel on the callback's own port: the reply must not overtake them
        await delivered;
        release(onDelta);
        e.busy = undefined;
      }
    })();
    this.running.add(run);
    const done = () => this.running.delete(run);
    run.then(done, done);
    return run;
  }
}

const busy = () =>
  invalidInput('this chat is busy: a reply is being generated (wait for it, or abort it) or its memory is moving');

/** Calls a (possibly remote) callback without letting its failure or a dropped page stop the engine. */
function fire<A extends unknown[]>(cb: ((...args: A) => unknown) | undefined, ...args: A): Promise<unknown> {
  try {
    return Promise.resolve(cb?.(...args)).catch(() => undefined);
  } catch {
    return Promise.resolve();
  }
}

/** Closes a Comlink callback proxy's port (a plain function has nothing to release). */
function release(cb: unknown): void {
  (cb as Partial<Comlink.ProxyMethods> | undefined)?.[Comlink.releaseProxy]?.();
}

function checkMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw invalidInput('messages must be a non-empty list');
  messages.forEach((m: Partial<ChatMessage>, i) => {
    if (!ROLES.has(m?.role as string) || typeof m.content !== 'string') {
      throw invalidInput(`messages[${i}] must be {role: 'system' | 'user' | 'assistant', content: string}`);
    }
  });
  const last = messages.at(-1) as ChatMessage;
  if (last.role !== 'user' || !last.content) throw invalidInput('the last message must be a non-empty user message');
}

function sameMessages(a: readonly ChatMessage[], b: readonly ChatMessage[]): boolean {
  return a.length === b.length && a.every((m, i) => m.role === b[i]!.role && m.content === b[i]!.content);
}
