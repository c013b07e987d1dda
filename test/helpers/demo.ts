// The built chat demo for browser tests, as `npm run demo` serves it: scripts/demo-model.mjs writes the
// embedded models into public/models/, Vite builds demo/ and its preview server serves the build; pages
// open in headless Chromium (SwiftShader WebGPU) through startBrowserEnv. Plus the page steps the demo
// tests share.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Dialog, Page } from 'playwright-core';
import type uPlot from 'uplot';
import { build, preview } from 'vite';
import { afterAll, beforeAll, expect } from 'vitest';
import type { CcmMemoryPanel } from '../../src/devtools/panel.js';
import type { Engine, EngineChat, EngineMemory, MemoryStats, Usage } from '../../src/index.js';
import { type BrowserEnv, startBrowserEnv } from './browser.js';

export const READY = 'body[data-state=ready]';
/** Where the demo tests leave their screenshots. */
export const ARTIFACTS = path.resolve('test-artifacts');
export const TURN_TIMEOUT = 90_000;

export type DemoWindow = Window & {
  ccmemDemo: { engine: Engine; chat: EngineChat; kvChart: uPlot | undefined };
  lengths: number[];
};

export interface Demo {
  env: BrowserEnv;
  /** The demo page's address on the preview server. */
  url: string;
  close(): Promise<void>;
}

const DEMO_CONFIG = path.resolve('demo/vite.config.ts');

/** Writes the demo's models, builds the demo into a folder of its own and serves it. */
export async function startDemo(): Promise<Demo> {
  const models = spawnSync(process.execPath, ['scripts/demo-model.mjs'], { encoding: 'utf8' });
  if (models.status !== 0) throw new Error(`scripts/demo-model.mjs failed:\n${models.stderr}`);
  const outDir = path.resolve(`.tmp/demo-build-${process.pid}-${Date.now()}`);
  await build({ configFile: DEMO_CONFIG, logLevel: 'warn', build: { outDir } });
  const server = await preview({
    configFile: DEMO_CONFIG,
    logLevel: 'warn',
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0 },
  });
  const url = server.resolvedUrls?.local[0];
  const env = url ? await startBrowserEnv().catch(() => undefined) : undefined;
  const close = async () => {
    await env?.close();
    await server.close();
    rmSync(outDir, { recursive: true, force: true });
  };
  if (!url || !env) {
    await close();
    throw new Error(url ? 'the browser did not start' : 'the preview server reported no local URL');
  }
  return { env, url, close };
}

export interface EngineView {
  memory: MemoryStats;
  ledger: EngineMemory['ledger'];
  usage: Usage | undefined;
  finishReason: string | undefined;
}

/** engine.memory() of the demo's chat and the last turn's usage, asked in the page. */
export function engineView(page: Page): Promise<EngineView> {
  return page.evaluate(async () => {
    const { engine, chat } = (window as unknown as DemoWindow).ccmemDemo;
    const { memory, ledger } = await engine.memory(chat);
    if (!memory) throw new Error('engine.memory() has no stats for the demo chat');
    const last = await chat.lastResult();
    return { memory, ledger, usage: last?.usage, finishReason: last?.finishReason };
  });
}

export const panelSamples = (page: Page) =>
  page.evaluate(() => document.querySelector<CcmMemoryPanel>('ccm-memory-panel')!.samples);

/** Sends what the message box holds and waits for the reply; returns the reply's text. */
export async function sendComposed(page: Page): Promise<string> {
  await page.click('#send');
  await page.waitForSelector('body[data-state=generating]');
  await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
  expect(await page.locator('#error').isHidden(), (await page.textContent('#error')) ?? '').toBe(true);
  return (await page.textContent('#log li.assistant:last-child')) ?? '';
}

export async function sendTurn(page: Page, text: string): Promise<string> {
  await page.fill('#composer textarea', text);
  return sendComposed(page);
}

/** Opens the settings form (a <details>). */
export async function openSettings(page: Page): Promise<void> {
  await page.evaluate(() => {
    document.querySelector<HTMLDetailsElement>('#settings-box')!.open = true;
  });
}

/** Sets a field of the settings form (opening it first). */
export async function setSetting(page: Page, name: string, value: string): Promise<void> {
  await openSettings(page);
  await page.fill(`#settings [name=${name}]`, value);
}

/** Clicks Load, answering the question it asks (if any) with `answer`; returns the question. */
export async function clickLoad(page: Page, answer: 'accept' | 'dismiss'): Promise<string | undefined> {
  let question: string | undefined;
  const onDialog = (d: Dialog) => {
    question = d.message();
    void (answer === 'accept' ? d.accept() : d.dismiss());
  };
  page.on('dialog', onDialog);
  try {
    await page.click('#settings button[type=submit]');
    if (answer === 'accept') {
      await page.waitForSelector('body[data-state=loading]');
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
    } else {
      await page.waitForFunction(() => document.querySelector('body')!.dataset.state === 'ready');
    }
  } finally {
    page.off('dialog', onDialog);
  }
  return question;
}

/** The demo built and served for the test file that calls this (at its top level), closed after it. */
export function serveDemoForFile(): () => Demo {
  let demo: Demo | undefined;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    demo = await startDemo();
  });
  afterAll(async () => {
    await demo?.close();
  });
  return () => {
    if (!demo) throw new Error('the demo did not start');
    return demo;
  };
}
