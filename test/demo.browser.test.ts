// The built chat demo (demo/, built and served by Vite's preview server as `npm run demo` does) in headless
// Chromium on SwiftShader WebGPU, with the embedded stories260K that scripts/demo-model.mjs converts into
// public/models/: pick the window policy's parameters, load,
// chat three turns with streamed text, stop a reply midway, check that the memory panel shows exactly
// what engine.memory() says, then reload the page and find the conversation restored. Screenshots go to
// test-artifacts/.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { build, type PreviewServer, preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CcmMemoryPanel } from '../src/devtools/panel.js';
import type { Engine, EngineChat, EngineMemory, MemoryStats, Usage } from '../src/index.js';
import { type BrowserEnv, startBrowserEnv } from './helpers/browser.js';

const ARTIFACTS = path.resolve('test-artifacts');
const DEMO_CONFIG = path.resolve('demo/vite.config.ts');
const BUILD_DIR = path.resolve(`.tmp/demo-build-${process.pid}`);
const READY = 'body[data-state=ready]';
const TURN_TIMEOUT = 90_000;

type DemoWindow = Window & { ccmemDemo: { engine: Engine; chat: EngineChat }; lengths: number[] };

interface EngineView {
  memory: MemoryStats;
  ledger: EngineMemory['ledger'];
  usage: Usage | undefined;
}

/** engine.memory() of the demo's chat and the last turn's usage, asked in the page. */
function engineView(page: Page): Promise<EngineView> {
  return page.evaluate(async () => {
    const { engine, chat } = (window as unknown as DemoWindow).ccmemDemo;
    const { memory, ledger } = await engine.memory(chat);
    if (!memory) throw new Error('engine.memory() has no stats for the demo chat');
    return { memory, ledger, usage: (await chat.lastResult())?.usage };
  });
}

/** The panel shows the engine's numbers exactly: its last sample and its listed statistics. */
async function expectPanelMatches(page: Page, withSpeed: boolean): Promise<EngineView> {
  const view = await engineView(page);
  const last = await page.evaluate(() => document.querySelector<CcmMemoryPanel>('ccm-memory-panel')!.samples.at(-1));
  expect(last?.memory).toEqual(view.memory);
  const { byOwner: _, ...ledger } = view.ledger;
  expect(last?.ledger).toEqual(ledger);
  const shown = await page
    .locator('ccm-memory-panel dd[data-stat]')
    .evaluateAll((dds) =>
      Object.fromEntries(dds.map((d) => [(d as HTMLElement).dataset.stat, d.getAttribute('data-value')])),
    );
  const m = view.memory;
  const expected: Record<string, unknown> = {
    policy: m.policy,
    gpuCurrent: view.ledger.current,
    gpuPeak: view.ledger.peak,
    kvBytes: m.bytes,
    fullContextBytes: m.fullContextBytes,
    compressionRatio: m.compressionRatio,
    tokensCompressed: m.tokensCompressed,
    tokensEvicted: m.tokensEvicted,
    positionsUsed: m.nextPosition,
    compressionSteps: m.compressionSteps,
  };
  if (withSpeed) {
    const u = view.usage!;
    Object.assign(expected, {
      prefillTokensPerSecond: u.prefillTokensPerSecond,
      decodeTokensPerSecond: u.decodeTokensPerSecond,
      timeToFirstTokenMs: u.timeToFirstTokenMs,
    });
  }
  expect(shown).toEqual(Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, String(v)])));
  const layer = await page
    .locator('ccm-memory-panel .layer')
    .first()
    .evaluate((r) => ({ ...(r as HTMLElement).dataset }));
  expect(layer).toEqual({
    layer: '0',
    sink: String(m.slots.sink),
    memory: String(m.slots.memory),
    working: String(m.slots.working),
    capacity: String(m.slots.capacity),
  });
  expect(await page.locator('ccm-memory-panel .layer').count()).toBe(m.layers);
  return view;
}

/** Records the length of the streaming reply each time the log changes. */
const watchStreaming = (page: Page) =>
  page.evaluate(() => {
    const w = window as unknown as DemoWindow;
    w.lengths = [];
    new MutationObserver(() => {
      const reply = document.querySelector('#log li.assistant:last-child');
      w.lengths.push(reply?.textContent?.length ?? 0);
    }).observe(document.querySelector('#log')!, { subtree: true, childList: true, characterData: true });
  });

/** Sets a field of the settings form (opening it first). */
async function setSetting(page: Page, name: string, value: string): Promise<void> {
  await page.evaluate(() => {
    document.querySelector<HTMLDetailsElement>('#settings-box')!.open = true;
  });
  await page.fill(`#settings [name=${name}]`, value);
}

async function sendTurn(page: Page, text: string): Promise<string> {
  await page.fill('#composer textarea', text);
  await page.click('#send');
  await page.waitForSelector('body[data-state=generating]');
  await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
  expect(await page.locator('#error').isHidden(), (await page.textContent('#error')) ?? '').toBe(true);
  return (await page.textContent('#log li.assistant:last-child')) ?? '';
}

describe('the chat demo', () => {
  let env: BrowserEnv | undefined;
  let server: PreviewServer | undefined;
  let demoUrl: string | undefined;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const convert = spawnSync(process.execPath, ['scripts/demo-model.mjs'], { encoding: 'utf8' });
    if (convert.status !== 0) throw new Error(`scripts/demo-model.mjs failed:\n${convert.stderr}`);
    // the built demo, as `npm run demo` serves it
    await build({ configFile: DEMO_CONFIG, logLevel: 'warn', build: { outDir: BUILD_DIR } });
    server = await preview({
      configFile: DEMO_CONFIG,
      logLevel: 'warn',
      build: { outDir: BUILD_DIR },
      preview: { host: '127.0.0.1', port: 0 },
    });
    demoUrl = server.resolvedUrls?.local[0];
    env = await startBrowserEnv();
  });
  afterAll(async () => {
    await env?.close();
    await server?.close();
    rmSync(BUILD_DIR, { recursive: true, force: true });
  });

  it('chats with streaming, stops a reply, shows engine.memory() in the panel and restores after a reload', async () => {
    expect(demoUrl).toBeDefined();
    await env!.withPage(demoUrl!, async (page) => {
      await page.setViewportSize({ width: 1200, height: 900 });
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.textContent('header')).toContain('260K-parameter');
      expect(await page.textContent('#status')).toContain('window policy');

      // A small window so that three turns evict tokens; greedy, short replies.
      await setSetting(page, 'window', '48');
      await setSetting(page, 'maxNewTokens', '32');
      await setSetting(page, 'temperature', '0');
      await page.click('#settings button[type=submit]');
      await page.waitForSelector('body[data-state=loading]');
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.evaluate(() => document.querySelector<HTMLProgressElement>('#progress')!.value)).toBe(1);
      await expectPanelMatches(page, false);

      await watchStreaming(page);
      const prompts = [
        'Once upon a time, there was a little cat.',
        'The cat saw a big dog.',
        'They played in the park.',
      ];
      for (const [i, prompt] of prompts.entries()) {
        const reply = await sendTurn(page, prompt);
        expect(reply.length, `reply ${i + 1}`).toBeGreaterThan(0);
        await expectPanelMatches(page, true);
      }
      // the text arrived piece by piece, not at once
      const lengths = await page.evaluate(() => (window as unknown as DemoWindow).lengths);
      expect(new Set(lengths.filter((n) => n > 0)).size).toBeGreaterThan(prompts.length * 3);
      expect(await page.locator('#log li').count()).toBe(6);
      expect(
        await page.evaluate(() => document.querySelector<CcmMemoryPanel>('ccm-memory-panel')!.samples.length),
      ).toBe(4);
      const afterThree = (await engineView(page)).memory;
      expect(afterThree.tokensEvicted).toBeGreaterThan(0);
      expect(afterThree.compressionRatio).toBeGreaterThan(1);
      await page.screenshot({ path: path.join(ARTIFACTS, 'demo-three-turns.png'), fullPage: true });

      // Stop a long reply once some text is out: the turn is dropped, the chat is as before it.
      await setSetting(page, 'maxNewTokens', '400');
      await page.fill('#composer textarea', 'Then the sun went down.');
      await page.click('#send');
      await page.waitForFunction(
        () => (document.querySelector('#log li.assistant:last-child')?.textContent?.length ?? 0) > 10,
      );
      await page.click('#stop');
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      const stopped = page.locator('#log li.assistant:last-child');
      expect(await stopped.getAttribute('class')).toContain('stopped');
      expect(((await stopped.textContent()) ?? '').length).toBeGreaterThan(10);
      expect((await engineView(page)).memory).toEqual(afterThree);
      await page.screenshot({ path: path.join(ARTIFACTS, 'demo-stopped.png'), fullPage: true });

      // Reload: the settings and the conversation come back, and it goes on from there.
      await page.reload();
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.textContent('#status')).toContain('Restored 3 turns');
      expect(await page.locator('#log li.restored').count()).toBe(6);
      expect((await engineView(page)).memory).toEqual(afterThree);
      await expectPanelMatches(page, false);
      await setSetting(page, 'maxNewTokens', '8');
      expect((await sendTurn(page, 'The end.')).length).toBeGreaterThan(0);
      const after = await expectPanelMatches(page, true);
      // the conversation the cache stands for grew from the restored one (a fresh chat would be shorter)
      expect(after.memory.fullContextBytes).toBeGreaterThan(afterThree.fullContextBytes);
      await page.screenshot({ path: path.join(ARTIFACTS, 'demo-restored.png'), fullPage: true });

      // New chat: an empty conversation, and the panel starts over with it.
      await page.click('#new-chat');
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.locator('#log li').count()).toBe(0);
      expect((await expectPanelMatches(page, false)).memory.nextPosition).toBe(0);
      expect(
        await page.evaluate(() => document.querySelector<CcmMemoryPanel>('ccm-memory-panel')!.samples.length),
      ).toBe(1);
    });
  });
});
