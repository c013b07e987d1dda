// The package entry (`ccmem`): the page-side engine API and its types. The worker module is `ccmem/worker`.
// The published .d.ts files name WebGPU types (GPUBuffer, ...); @webgpu/types is a dependency for them.
/// <reference types="@webgpu/types" preserve="true" />

export { type ChatOptions, type ChatSendOptions, EngineChat } from './client/chat.js';
export type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessage,
  ChatCompletionRequest,
  CompletionFinishReason,
  Completions,
} from './client/completions.js';
export type { WorkerLike } from './client/connection.js';
export {
  type ChatFactory,
  createEngine,
  Engine,
  type EngineOptions,
} from './client/engine.js';
export type { FinishReason, GenerationResult, MemorySlot, MemoryStats, Usage } from './engine/session.js';
export { CcmemError, type ErrorCode, isCcmemError } from './errors.js';
export type { LedgerSnapshot, MemoryTag, TagTotals } from './gpu/ledger.js';
export type { WeightFormat } from './gpu/tensor.js';
export type { MemoryOptions, PolicyName } from './memory/policy.js';
export type {
  EngineCacheOptions,
  EngineInfo,
  EngineMemory,
  EngineMemoryOptions,
  LoadProgress,
} from './worker/protocol.js';
