// The browser engines: ccmem in a Web Worker of headless Chromium (the page bench/browser/ccmem.html) and
// wllama in the same browser (bench/browser/wllama.html), each in a fresh Chromium whose process tree's RSS
// is the engine's host memory.
import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { PageApi } from '../test/browser/page-kit.js';
import type { CcmemRequest } from './browser/ccmem-worker.js';
import type { WllamaRequest } from './browser/wllama-page.js';
import { BROWSER_DIST, type ChromiumProfile, SWIFTSHADER, withChromiumPage } from './peers-chromium.js';
import type { EngineRun } from './peers-engines.js';
import type { ModelSource } from './peers-models.js';
import { type CcmemRuns, contextSize, type Plan, type Timings } from './peers-runs.js';

const WLLAMA_ESM = 'peers/node_modules/@wllama/wllama/esm';

function checkBuilt(): void {
  if (!existsSync(`${BROWSER_DIST}/ccmem.html`)) throw new Error(`${BROWSER_DIST} is missing: the parent builds it`);
}

/** ccmem in a Web Worker, loading `folder` (a Hugging Face folder) over HTTP. */
export async function runCcmemChromium(plan: Plan, folder: string, profile: ChromiumProfile): Promise<EngineRun> {
  checkBuilt();
  const { result, peakRssBytes, version } = await withChromiumPage(
    profile,
    '/ccmem.html',
    { '/model/': folder },
    (page) => {
      const request: CcmemRequest = { modelUrl: new URL('/model/', page.url()).href, plan };
      return page.evaluate((r) => (window as unknown as PageApi).ccmemRun(r), request);
    },
  );
  const { adapter: _, ...r } = result as CcmemRuns & { loadMs: number }; // the machine line names Node's adapter
  return { ...r, detail: `Chromium ${version}, WebGPU on ${profile.label}: ${r.detail}`, peakRssBytes };
}

/** wllama (CPU, `plan.wllamaThreads` threads) on the GGUF export. */
export async function runWllama(m: ModelSource, plan: Plan, gguf: string): Promise<EngineRun> {
  checkBuilt();
  const esm = resolve(WLLAMA_ESM);
  if (!existsSync(`${esm}/index.js`))
    throw new Error(`wllama peer not installed: ${esm} is missing (npm ci in peers/)`);
  const mounts = { '/wllama/': esm, '/gguf/': dirname(gguf) };
  const { result, peakRssBytes, version } = await withChromiumPage(SWIFTSHADER, '/wllama.html', mounts, (page) => {
    const request: WllamaRequest = {
      ggufUrl: new URL(`/gguf/${basename(gguf)}`, page.url()).href,
      plan,
      config: { vocabSize: m.config.vocabSize, bosTokenId: m.config.bosTokenId, maxPositions: m.config.maxPositions },
      contextSize: contextSize(plan),
    };
    return page.evaluate((r) => (window as unknown as { wllamaRun(r: WllamaRequest): unknown }).wllamaRun(r), request);
  });
  const r = result as Timings & { loadMs: number; threads: string; crossOriginIsolated: boolean };
  const isolated = r.crossOriginIsolated ? 'cross-origin isolated' : 'NOT cross-origin isolated';
  return {
    detail: `Chromium ${version}, WebAssembly CPU, ${r.threads} (${isolated}), ${m.dtype} weights, prompts sent as text of byte tokens (same lengths)`,
    loadMs: r.loadMs,
    runs: r.runs,
    longRuns: r.longRuns,
    peakRssBytes,
  };
}
