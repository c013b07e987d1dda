// Browser tests: a Vite dev server on 127.0.0.1 (vite.config.ts: the repo root, src/ served as
// TypeScript, ../shared/fixtures under /fixtures/) and Debian's Chromium driven by playwright-core, with
// WebGPU on SwiftShader (no shader-f16). Pages live in test/browser/<name>/ and use page-kit.ts.
//
//   const env = await startBrowserEnv();
//   await env.withPage('/test/browser/rmsnorm/', (page) => runInWorker(page, request));
//   await env.close();
// Model folders that a test converts go through serveModel(): the pages fetch them from /models/.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type ConsoleMessage, chromium, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll } from 'vitest';
import viteConfig, { browserModelsDir } from '../../vite.config.js';
import type { PageApi } from '../browser/page-kit.js';
import { CHROMIUM, CHROMIUM_BASE_ARGS } from './chromium.js';
import { storiesFiles } from './stories.js';

const CHROMIUM_ARGS = [...CHROMIUM_BASE_ARGS, '--use-webgpu-adapter=swiftshader'];

export interface BrowserEnv {
  readonly baseUrl: string;
  /**
   * Opens `path` (from the repo root) in a fresh page, runs `fn` and closes the page. Fails when the
   * page or one of its workers logged a console error or threw; any failure carries the console log.
   */
  withPage<T>(path: string, fn: (page: Page) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function startBrowserEnv(): Promise<BrowserEnv> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run ./scripts/setup.sh`);
  const server = await createServer({
    ...viteConfig,
    configFile: false,
    logLevel: 'warn',
    clearScreen: false,
    server: { ...viteConfig.server, host: '127.0.0.1', port: 0, strictPort: true, hmr: false, watch: null },
  });
  let browser: Browser;
  try {
    await server.listen();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  } catch (e) {
    await server.close();
    throw e;
  }
  const baseUrl = server.resolvedUrls?.local[0];
  if (!baseUrl) {
    await closeAll(browser, server);
    throw new Error('the Vite dev server reported no local URL');
  }
  return {
    baseUrl,
    withPage: (path, fn) => withPage(browser, baseUrl, path, fn),
    close: () => closeAll(browser, server),
  };
}

async function withPage<T>(
  browser: Browser,
  baseUrl: string,
  path: string,
  fn: (page: Page) => Promise<T>,
): Promise<T> {
  const page = await browser.newPage();
  const log: string[] = [];
  const errors: string[] = [];
  const record = (line: string, isError: boolean) => {
    log.push(line);
    if (isError) errors.push(line);
  };
  // The page's console also receives the console messages of its workers.
  page.on('console', (msg: ConsoleMessage) => {
    const at = msg.location().url;
    record(`[${msg.type()}] ${msg.text()}${at ? ` (${at})` : ''}`, msg.type() === 'error');
  });
  page.on('pageerror', (e) => record(`[uncaught] ${e.stack ?? e.message}`, true));
  page.on('crash', () => record('[page crashed]', true));
  try {
    const response = await page.goto(new URL(path, baseUrl).href);
    if (!response?.ok()) throw new Error(`GET ${path}: HTTP ${response?.status()}`);
    const result = await fn(page);
    if (errors.length) throw new Error(`the page logged errors:\n${errors.join('\n')}`);
    return result;
  } catch (e) {
    if (e instanceof Error && log.length) e.message += `\n--- browser console ---\n${log.join('\n')}`;
    throw e;
  } finally {
    await page.close();
  }
}

async function closeAll(browser: Browser, server: ViteDevServer): Promise<void> {
  try {
    await browser.close();
  } finally {
    await server.close();
  }
}

/** Sends `request` to a fresh worker of the page (window.ccmemRun, see page-kit.ts) and returns its reply. */
export async function runInWorker<T>(page: Page, request: unknown, timeoutMs = 120_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no reply from the worker within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    const reply = page.evaluate((r) => (window as unknown as PageApi).ccmemRun(r), request);
    return (await Promise.race([reply, timeout])) as T;
  } finally {
    clearTimeout(timer);
  }
}

export interface ServedModel {
  /** Absolute URL of the folder, as loadModel() takes it. */
  readonly url: string;
  remove(): void;
}

/**
 * Writes `files` (a Hugging Face folder, e.g. from convertLlama2c) into a fresh folder that the dev server
 * serves under /models/ with byte ranges. A unique folder per call keeps parallel runs apart.
 */
export function serveModel(env: BrowserEnv, name: string, files: Record<string, string | Uint8Array>): ServedModel {
  mkdirSync(browserModelsDir, { recursive: true });
  const dir = mkdtempSync(path.join(browserModelsDir, `${name}-`));
  for (const [file, data] of Object.entries(files)) writeFileSync(path.join(dir, file), data);
  return {
    url: new URL(`/models/${path.basename(dir)}/`, env.baseUrl).href,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * For a test file whose tests all use one browser env serving stories260K: starts both before the file's
 * tests and stops them after. The getters are for use inside tests.
 */
export function browserEnvWithStories(): { env: () => BrowserEnv; modelUrl: () => string } {
  let env: BrowserEnv | undefined;
  let model: ServedModel | undefined;
  beforeAll(async () => {
    env = await startBrowserEnv();
    model = serveModel(env, 'stories260K', storiesFiles());
  });
  afterAll(async () => {
    model?.remove();
    await env?.close();
  });
  return { env: () => env!, modelUrl: () => model!.url };
}
