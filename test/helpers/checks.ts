// Small comparisons shared by the tests.
import { expect } from 'vitest';
import { type CcmemError, isCcmemError } from '../../src/errors.js';

/** max |actual - expected| / max |expected| over a logits row (or any vector). */
export function relDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

/** The CcmemError code `f` throws, the text of another error, or 'no error'. */
export function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isCcmemError(e) ? e.code : String(e);
  }
  return 'no error';
}

/** The CcmemError that `p` rejects (or `p()` throws) with; the test fails on success or any other error. */
export async function typedError(p: Promise<unknown> | (() => unknown)): Promise<CcmemError> {
  let error: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    error = e;
  }
  expect(isCcmemError(error), `expected a CcmemError, got ${String(error)}`).toBe(true);
  return error as CcmemError;
}

/**
 * typedError's code and message as a plain object, for `toMatchObject({ code, message:
 * expect.stringMatching(/re/) })` (a bare /re/ there matches any message: vitest compares a RegExp as an
 * object with no keys).
 */
export async function failureOf(p: Promise<unknown> | (() => unknown)): Promise<{ code: string; message: string }> {
  const { code, message } = await typedError(p);
  return { code, message };
}
