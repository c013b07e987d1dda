// The engine's side of the devtools hook (src/devtools/hook.ts), in the manner of React publishing to
// its DevTools' global hook: after every finished or stopped turn, and after an import, each chat
// publishes its memory statistics under its own id, so that a <ccm-memory-panel hook> or the DevTools
// extension shows any page that calls createEngine, with no code of its own. Statistics only: the hook
// sanitizes every sample (no conversation text leaves). Off with createEngine({ devtools: false }).
import { installHook } from '../devtools/hook.js';
import type { Usage } from '../engine/session.js';
import { invalidInput } from '../errors.js';
import type { EngineMemory } from '../worker/protocol.js';

/** createEngine's `devtools` option: true (the default) or { id } publishes, false does not. */
export type DevtoolsOption = boolean | { id?: string };

/** What a turn adds to the statistics: its speed, and whether it was stopped midway. */
export interface TurnNote {
  speed?: Pick<Usage, 'prefillTokensPerSecond' | 'decodeTokensPerSecond' | 'timeToFirstTokenMs'>;
  stopped?: boolean;
}

/** An engine id is a short identifier (the hook drops anything else); chat ids add `.N` to it. */
const ENGINE_ID = /^[\w:-]{1,48}$/;
/** Engines created on this page, for the default ids ccmem-1, ccmem-2, ... */
let engines = 0;

export class DevtoolsPublisher {
  /** The engine's id on the hook; its chats publish as `${id}.1`, `${id}.2`, ..., the completions facade as `${id}.completions`. */
  readonly id: string;
  private chats = 0;
  private readonly live = new Set<string>();

  private constructor(id: string) {
    this.id = id;
  }

  /** The publisher the option asks for, or undefined when it turns publishing off. */
  static create(option: DevtoolsOption | undefined): DevtoolsPublisher | undefined {
    if (option === false) return undefined;
    const id = typeof option === 'object' && option.id !== undefined ? option.id : `ccmem-${++engines}`;
    if (typeof id !== 'string' || !ENGINE_ID.test(id)) {
      throw invalidInput(`devtools.id must be 1 to 48 letters, digits, '_', ':' or '-', got ${JSON.stringify(id)}`);
    }
    return new DevtoolsPublisher(id);
  }

  /** The hook id of the engine's next chat. */
  nextChatId(): string {
    return `${this.id}.${++this.chats}`;
  }

  /** Publishes one chat's statistics as they stand after its latest turn (or import). */
  publish(chat: string, m: EngineMemory, note: TurnNote = {}): void {
    if (!m.memory) return;
    const { memory, ledger, turns } = m;
    const sample = { memory, ledger, turn: note.stopped ? (turns ?? 0) + 1 : turns, ...note };
    this.live.add(chat);
    installHook().publish({ type: 'sample', engine: chat, sample });
  }

  /** The chat's conversation was replaced, or the chat closed: panels forget its samples. */
  reset(chat: string): void {
    this.live.delete(chat);
    installHook().publish({ type: 'reset', engine: chat });
  }

  /** The engine was disposed: every chat it published is gone. */
  resetAll(): void {
    for (const chat of [...this.live]) this.reset(chat);
  }
}
