// rmsnorm in headless Chromium: a page starts a module worker that acquires WebGPU through
// navigator.gpu, runs the kernel and compares it with the CPU reference (test/browser/rmsnorm/).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RmsnormCase, RmsnormReport } from '../browser/rmsnorm/worker.js';
import { type BrowserEnv, runInWorker, startBrowserEnv } from '../helpers/browser.js';
import { randomArray } from '../helpers/gpu.js';

function makeCase(rows: number, dim: number, xRowOffset: number, seed: number): RmsnormCase {
  return {
    rows,
    dim,
    xRowOffset,
    x: randomArray((xRowOffset + rows) * dim, seed, 3),
    weight: randomArray(dim, seed + 1),
  };
}

describe('rmsnorm in a browser worker', () => {
  let env: BrowserEnv | undefined;
  beforeAll(async () => {
    env = await startBrowserEnv();
  });
  afterAll(() => env?.close());

  it('matches the CPU reference on SwiftShader without shader-f16', async () => {
    const cases = [makeCase(3, 65, 0, 1), makeCase(4, 576, 0, 2), makeCase(1, 64, 5, 3), makeCase(9, 700, 2, 4)];
    const report = await env!.withPage('/test/browser/rmsnorm/', (page) => runInWorker<RmsnormReport>(page, cases));
    // No shader-f16 here, so f16 weights take the packed-u32 path, as in any browser without f16.
    expect(report.f16).toBe(false);
    expect(report.adapter.toLowerCase()).toContain('swiftshader');
    expect(report.maxErrors).toHaveLength(cases.length);
    for (const err of report.maxErrors) expect(err).toBeLessThan(1e-5);
  });
});
