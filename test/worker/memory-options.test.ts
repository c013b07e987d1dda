// How the engine fills and checks a ccm policy's options against the adapter it loaded.
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { memoryForAdapter } from '../../src/memory/policy.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { randomModel } from '../helpers/randomModel.js';

const { config } = randomModel({ hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 24, vocab: 32, seed: 1 });
const adapter = (mode: 'concat' | 'merge', sink = false) =>
  randomAdapter(config, { rank: 2, compTokens: 3, mode, sink, seed: 2 });

function refused(fn: () => unknown, pattern: RegExp) {
  try {
    fn();
  } catch (e) {
    expect(isCcmemError(e, 'INVALID_INPUT'), String(e)).toBe(true);
    expect((e as Error).message).toMatch(pattern);
    return;
  }
  expect.fail('expected INVALID_INPUT');
}

describe('memoryForAdapter', () => {
  it('passes non-ccm policies through, full by default', () => {
    expect(memoryForAdapter(undefined, undefined)).toEqual({ policy: 'full' });
    expect(memoryForAdapter({ policy: 'window', window: 8 }, adapter('concat').config)).toEqual({
      policy: 'window',
      window: 8,
    });
  });

  it("takes compTokens and sink from the adapter, keeping the caller's budget", () => {
    expect(memoryForAdapter({ policy: 'ccm-concat', budget: 6 }, adapter('concat', true).config)).toEqual({
      policy: 'ccm-concat',
      compTokens: 3,
      sink: true,
      budget: 6,
    });
    expect(
      memoryForAdapter({ policy: 'ccm-merge', compTokens: 3, sink: false }, adapter('merge', true).config),
    ).toMatchObject({
      compTokens: 3,
      sink: false,
    });
  });

  it('refuses a ccm policy without a ccm adapter, of the other mode, or with another n', () => {
    refused(() => memoryForAdapter({ policy: 'ccm-concat' }, undefined), /needs a CCM adapter/);
    refused(() => memoryForAdapter({ policy: 'ccm-merge' }, adapter('concat').config), /trained for ccm-concat/);
    refused(
      () => memoryForAdapter({ policy: 'ccm-concat', compTokens: 2 }, adapter('concat').config),
      /trained with 3/,
    );
  });
});
