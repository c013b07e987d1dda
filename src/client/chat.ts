// A chat as the page sees it: a handle on one conversation in the worker. It keeps the chat's last save
// (made by the worker after every finished turn) so that a restarted worker can restore it.
import type { GenerateOptions, GenerationResult } from '../engine/session.js';
import { invalidInput, isCcmemError } from '../errors.js';
import type { Connection, Remote } from './connection.js';
import type { DevtoolsPublisher, TurnNote } from './devtools.js';
import { streamDeltas } from './stream.js';

export interface ChatOptions {
  /** The system message that opens the conversation. */
  system?: string;
}

/** Sampling and limits of one reply (temperature 0, greedy, by default), and a signal that stops it. */
export type ChatSendOptions = GenerateOptions;

/** What a chat needs from its engine (src/client/engine.ts). */
export interface EngineLink {
  /** The current worker connection once it is loaded (after a restart: the new one). */
  link(): Promise<Connection>;
  forget(chat: EngineChat): void;
  /** Where the chat publishes its statistics after each turn; undefined with { devtools: false }. */
  readonly devtools: DevtoolsPublisher | undefined;
}

export class EngineChat {
  private id: Promise<number>;
  private saved: Uint8Array | undefined;
  private last: GenerationResult | undefined;
  private closed = false;
  /** The chat's id on the devtools hook. */
  private readonly hookId: string | undefined;

  constructor(
    private readonly engine: EngineLink,
    private readonly options: ChatOptions,
  ) {
    this.id = this.open(engine.link());
    this.hookId = engine.devtools?.nextChatId();
  }

  /**
   * Streams the reply to `text` as text pieces; the generator returns the GenerationResult. A second
   * send while one is streaming is refused with INVALID_INPUT. An aborted `signal` (or leaving the loop
   * early) stops the reply and throws ABORTED; the chat then returns to where it was before this turn.
   */
  send(text: string, options: ChatSendOptions = {}): AsyncGenerator<string, GenerationResult, undefined> {
    const { signal, ...rest } = options;
    return streamDeltas(
      async (onDelta) => {
        try {
          const { result, saved } = await this.call((r, id) => r.send(id, text, rest, onDelta));
          this.saved = saved;
          this.last = result;
          await this.publish({ speed: result.usage });
          return result;
        } catch (e) {
          if (isCcmemError(e, 'ABORTED')) await this.publish({ stopped: true });
          throw e;
        }
      },
      () => void this.call((r, id) => r.abort(id)).catch(() => undefined),
      signal,
    );
  }

  /** The result (with usage: tokens, prefill/decode speed, time to first token) of the last finished turn. */
  async lastResult(): Promise<GenerationResult | undefined> {
    return this.last;
  }

  /** The conversation (transcript and context memory) as bytes for importMemory, in this or a later engine. */
  exportMemory(): Promise<Uint8Array> {
    return this.call((r, id) => r.exportMemory(id));
  }

  /** Replaces this chat's conversation with an exportMemory() result of the same model, adapter and policy. */
  async importMemory(bytes: Uint8Array): Promise<void> {
    if (!(bytes instanceof Uint8Array)) throw invalidInput('importMemory takes the Uint8Array exportMemory returned');
    await this.call((r, id) => r.importMemory(id, bytes));
    this.saved = bytes;
    if (this.hookId) this.engine.devtools?.reset(this.hookId); // another conversation: its turns start over
    await this.publish();
  }

  /** Frees the chat's GPU memory in the worker; the chat cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.closed) return;
    await this.call((r, id) => r.closeChat(id));
    this.closed = true;
    this.engine.forget(this);
    if (this.hookId) this.engine.devtools?.reset(this.hookId);
  }

  /** The chat's id in the current worker. */
  remoteId(): Promise<number> {
    return this.id;
  }

  /** Opens the chat again in a restarted worker, from its last save. */
  reopen(conn: Promise<Connection>): Promise<number> {
    this.id = this.open(conn, this.saved);
    return this.id;
  }

  private open(conn: Promise<Connection>, restore?: Uint8Array): Promise<number> {
    const { system } = this.options;
    const id = conn.then((c) => c.call((r) => r.openChat({ system, restore })));
    id.catch(() => undefined); // reported by the calls that need it
    return id;
  }

  /** Publishes the chat's statistics on the devtools hook (before the turn's stream ends, so a panel is current). */
  private async publish(note?: TurnNote): Promise<void> {
    const { devtools } = this.engine;
    if (!devtools || !this.hookId) return;
    try {
      devtools.publish(this.hookId, await this.call((r, id) => r.memory(id)), note);
    } catch {
      // a worker that died just now: there is nothing to show, and the turn's own outcome stands
    }
  }

  private async call<T>(fn: (remote: Remote, id: number) => Promise<T>): Promise<T> {
    if (this.closed) throw invalidInput('this chat was disposed');
    const conn = await this.engine.link();
    const id = await this.id;
    return conn.call((r) => fn(r, id));
  }
}
