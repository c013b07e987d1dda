// What crosses the boundary between the page (src/client) and the engine's worker (src/worker): plain
// data only (structured clone), callbacks as Comlink proxies, and errors that keep their CcmemError code.
import * as Comlink from 'comlink';
import type { GenerateOptions, GenerationResult, MemoryStats } from '../engine/session.js';
import { CcmemError, type ErrorCode } from '../errors.js';
import type { LedgerSnapshot } from '../gpu/ledger.js';
import type { WeightFormat } from '../gpu/tensor.js';
import type { MemoryOptions, MemoryRequest } from '../memory/policy.js';
import type { CacheKind, CacheOptions } from '../model/cache.js';
import type { ChatMessage } from '../model/tokenizer.js';

/** Memory options as the engine takes them: a ccm policy's compTokens (and sink) default to the adapter's. */
export type EngineMemoryOptions = MemoryRequest;

export interface EngineInit {
  /** A model folder: an http(s) URL or a Hugging Face hub id (a page-relative path is resolved by the client). */
  model: string;
  /** A hub id's branch, tag or commit; default 'main' (refused for a URL). */
  revision?: string;
  /** The server hub ids (model and adapter) are fetched from, e.g. a mirror; default 'https://huggingface.co'. */
  remoteHost?: string;
  /** A CCM adapter folder (needed by the ccm policies), or a plain LoRA merged into the weights. */
  adapter?: string;
  /**
   * Default: full. An official PEFT adapter, which does not record its mode or COMP count, takes them from a
   * ccm policy here (ccm-merge: merge; ccm-concat, ccm-stream: concat; compTokens when given).
   */
  memory?: EngineMemoryOptions;
  /** KV cache slots of each chat; default min(2048, max_position_embeddings). */
  capacity?: number;
  /** Weight format on the GPU; default 'auto'. */
  format?: WeightFormat | 'auto';
  /** How URL and hub models are cached (src/model/cache.ts); default the Cache API. */
  cache?: EngineCacheOptions;
}

/** The cache options that can cross to the worker (no custom store, no signal). */
export type EngineCacheOptions = Omit<CacheOptions, 'cache' | 'onProgress' | 'signal'> & { cache?: CacheKind };

/** Bytes of one model file delivered so far (total: its size, 0 when unknown). */
export interface LoadProgress {
  file: string;
  loaded: number;
  total: number;
}

export interface EngineInfo {
  /** The model's source id (its URL or hub id). */
  model: string;
  /** The WebGPU adapter's name. */
  gpu: string;
  format: WeightFormat;
  policy: MemoryOptions['policy'];
  capacity: number;
}

/** GenerateOptions without the signal (an AbortSignal cannot cross; the client sends abort() instead). */
export type SendOptions = Omit<GenerateOptions, 'signal'>;

export interface TurnResult {
  result: GenerationResult;
  /** The chat (transcript and memory) after the turn, as exportMemory() returns it. */
  saved: Uint8Array;
}

export interface EngineMemory {
  /** The context-memory stats of the chat asked about (default: the most recently used); none before any chat. */
  memory: MemoryStats | undefined;
  /** The turns of that chat's conversation (its user messages; a reply being generated counts); none before any chat. */
  turns: number | undefined;
  /** Every GPU buffer the engine holds, by tag and owner. */
  ledger: LedgerSnapshot;
}

/** The OpenAI-style request the completions facade forwards to the worker (sampling already mapped). */
export interface CompletionInput {
  messages: ChatMessage[];
  options: SendOptions;
}

/** Called per streamed piece of text; the worker awaits the last call before its reply is sent. */
export type DeltaCallback = (delta: string) => unknown;

/**
 * The worker's API (src/worker/engine.ts implements it). Chat ids are the worker's; id 0 is the
 * completions facade's conversation. Every method may reject with a CcmemError.
 */
export interface WorkerApi {
  load(
    init: EngineInit,
    onProgress?: (p: LoadProgress) => unknown,
    onLost?: (reason: string) => unknown,
  ): Promise<EngineInfo>;
  openChat(options: { system?: string; restore?: Uint8Array }): Promise<number>;
  send(chatId: number, text: string, options: SendOptions, onDelta?: DeltaCallback): Promise<TurnResult>;
  complete(input: CompletionInput, onDelta?: DeltaCallback): Promise<GenerationResult>;
  abort(chatId: number): void;
  exportMemory(chatId: number): Promise<Uint8Array>;
  importMemory(chatId: number, bytes: Uint8Array): Promise<void>;
  closeChat(chatId: number): void;
  memory(chatId?: number): EngineMemory;
  /** Frees every GPU buffer, returns the ledger as it then stands (the device's own buffers), destroys the device. */
  dispose(): Promise<LedgerSnapshot | undefined>;
}

export const FACADE_CHAT = 0;

type WireError =
  | { kind: 'ccmem'; code: ErrorCode; message: string }
  | { kind: 'error'; name: string; message: string; stack: string | undefined }
  | { kind: 'value'; value: unknown };

/**
 * Makes thrown errors keep their type across Comlink: a CcmemError arrives as a CcmemError with the
 * same code, any other Error as an Error with its name and message. Both sides must call it.
 */
export function registerErrorTransfer(): void {
  const builtin = Comlink.transferHandlers.get('throw');
  if (!builtin) throw new Error('comlink has no "throw" transfer handler to replace');
  const handler: Comlink.TransferHandler<{ value: unknown }, WireError> = {
    canHandle: (v): v is { value: unknown } => builtin.canHandle(v),
    serialize: ({ value }) => [toWire(value), []],
    deserialize: (w) => {
      throw fromWire(w);
    },
  };
  Comlink.transferHandlers.set('throw', handler as Comlink.TransferHandler<unknown, unknown>);
}

function toWire(value: unknown): WireError {
  if (value instanceof CcmemError) return { kind: 'ccmem', code: value.code, message: value.message };
  if (value instanceof Error) return { kind: 'error', name: value.name, message: value.message, stack: value.stack };
  return { kind: 'value', value };
}

function fromWire(w: WireError): unknown {
  if (w.kind === 'ccmem') return new CcmemError(w.code, w.message);
  if (w.kind === 'value') return w.value;
  return Object.assign(new Error(w.message), { name: w.name, stack: w.stack });
}
