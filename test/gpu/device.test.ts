// Acquiring WebGPU where there is none gives WEBGPU_UNAVAILABLE with an explanation, never a TypeError.
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { acquireGpu } from '../../src/gpu/device.js';
import { typedError } from '../helpers/checks.js';

describe('acquireGpu', () => {
  it('fails clearly without navigator.gpu', async () => {
    expect((globalThis.navigator as { gpu?: unknown } | undefined)?.gpu).toBeUndefined();
    await expect(acquireGpu()).rejects.toThrow(/WebGPU is not available/);
    expect((await typedError(acquireGpu())).code).toBe('WEBGPU_UNAVAILABLE');
  });

  it('fails clearly when no adapter is found', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    expect((await typedError(acquireGpu({ gpu }))).code).toBe('WEBGPU_UNAVAILABLE');
  });

  it('fails clearly when the device cannot be created', async () => {
    const adapter = {
      features: new Set<string>(),
      limits: new Proxy({}, { get: () => 1 }),
      info: {},
      requestDevice: async () => {
        throw new Error('out of devices');
      },
    };
    const gpu = { requestAdapter: async () => adapter } as unknown as GPU;
    const e = await acquireGpu({ gpu }).catch((err: unknown) => err);
    expect(isCcmemError(e, 'WEBGPU_UNAVAILABLE')).toBe(true);
    expect(String((e as Error).message)).toMatch(/out of devices/);
  });
});
