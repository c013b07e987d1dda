// Typed errors. Every failure a user can cause or meet carries a stable `code`, so callers (and the
// worker boundary, which can only pass plain data) can branch on it without parsing messages.

export type ErrorCode =
  | 'WEBGPU_UNAVAILABLE' // no navigator.gpu, no adapter, or the device could not be created
  | 'DEVICE_LIMIT' // a buffer or binding exceeds what the adapter allows
  | 'DEVICE_LOST'
  | 'WORKER_LOST' // the engine's Web Worker crashed or was terminated
  | 'MODEL_FORMAT' // a missing, truncated or corrupt model file, or a shape that disagrees with the config
  | 'UNSUPPORTED_MODEL' // an architecture, dtype or option the engine does not implement
  | 'INVALID_INPUT' // empty or overlong prompt, invalid token ids, bad options
  | 'SHAPE' // a kernel was called with tensors of the wrong shape or dtype (a bug in the caller)
  | 'ABORTED'
  | 'FETCH' // a model file could not be fetched
  | 'STORAGE_QUOTA' // the browser's storage cannot hold a model file
  | 'TEMPLATE_LIMIT'; // a chat template ran past a rendering bound (steps, output size, nesting, time)

export class CcmemError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = `CcmemError[${code}]`;
  }
}

export const webgpuUnavailable = (why: string) => new CcmemError('WEBGPU_UNAVAILABLE', why);
export const deviceLimit = (why: string) => new CcmemError('DEVICE_LIMIT', why);
export const modelFormat = (why: string) => new CcmemError('MODEL_FORMAT', why);
export const unsupportedModel = (why: string) => new CcmemError('UNSUPPORTED_MODEL', why);
export const invalidInput = (why: string) => new CcmemError('INVALID_INPUT', why);
export const shapeError = (why: string) => new CcmemError('SHAPE', why);
export const aborted = (why = 'the request was cancelled') => new CcmemError('ABORTED', why);
export const templateLimit = (why: string) => new CcmemError('TEMPLATE_LIMIT', why);
export const fetchError = (why: string, cause?: unknown) => new CcmemError('FETCH', why, { cause });

export function isCcmemError(e: unknown, code?: ErrorCode): e is CcmemError {
  return e instanceof CcmemError && (code === undefined || e.code === code);
}
