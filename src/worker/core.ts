// The engine as the worker's API drives it: a loaded model with chats over it. gpu-core.ts implements it
// on WebGPU (Session + Chat); the protocol tests implement it without a GPU.
import type { GenerateOptions, GenerationResult, MemoryStats, TokenEvent } from '../engine/session.js';
import type { LedgerSnapshot } from '../gpu/ledger.js';
import type { ChatMessage } from '../model/tokenizer.js';
import type { EngineInfo, EngineInit, LoadProgress } from './protocol.js';

export interface CoreChat {
  /** The conversation so far (system, then user/assistant pairs). */
  readonly history: readonly ChatMessage[];
  /** Streams the reply to `text` and appends the turn to the history (ABORTED leaves it half done: restore it). */
  send(text: string, options: GenerateOptions): AsyncGenerator<TokenEvent, GenerationResult>;
  /** The transcript and the context memory as bytes. */
  save(): Promise<Uint8Array>;
  /** Replaces the conversation with a save() result; bad bytes are refused (INVALID_INPUT) and change nothing. */
  restore(bytes: Uint8Array): Promise<void>;
  /** Forgets the conversation: `history` becomes the messages before the next turn, all fed again with it. */
  reset(history: readonly ChatMessage[]): void;
  stats(): MemoryStats;
  /** Frees the chat's GPU buffers. */
  dispose(): void;
}

export interface EngineCore {
  readonly info: EngineInfo;
  /** Settles with a reason if the device is lost other than by dispose(). */
  readonly lost: Promise<string>;
  createChat(system?: string): CoreChat;
  ledger(): LedgerSnapshot;
  /** Frees every buffer (chats, adapter, model), returns the ledger then, and destroys the device. */
  dispose(): LedgerSnapshot;
}

export type CoreLoader = (init: EngineInit, onProgress: (p: LoadProgress) => void) => Promise<EngineCore>;
