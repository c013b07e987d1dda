// The built chat demo (demo/, built and served by Vite's preview server as `npm run demo` does) in headless
// Chromium on SwiftShader WebGPU, with the embedded stories260K that scripts/demo-model.mjs converts into
// public/models/: pick the window policy's parameters, load, chat three turns with streamed text (replies
// the token limit cut are marked), check that the memory panel (fed by the engine itself) shows exactly
// what engine.memory() says, one column per turn; Load of setups that fail (a ccm policy without an
// adapter, an unreachable model) asks first and keeps the working model and conversation; stop a reply
// midway; reload the page and find the conversation restored, the stopped turn and the cut marks
// included. Screenshots go to test-artifacts/.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Dialog, Page } from 'playwright-core';
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
  finishReason: string | undefined;
}

/** engine.memory() of the demo's chat and the last turn's usage, asked in the page. */
function engineView(page: Page): Promise<EngineView> {
  return page.evaluate(async () => {
    const { engine, chat } = (window as unknown as DemoWindow).ccmemDemo;
    const { memory, ledger } = await engine.memory(chat);
    if (!memory) throw new Error('engine.memory() has no stats for the demo chat');
    const last = await chat.lastResult();
    return { memory, ledger, usage: last?.usage, finishReason: last?.finishReason };
  });
}

const panelSamples = (page: Page) =>
  page.evaluate(() => document.querySelector<CcmMemoryPanel>('ccm-memory-panel')!.samples);

/** The panel shows the engine's numbers exactly (its last sample, at `turn`, and its listed statistics). */
async function expectPanelMatches(page: Page, withSpeed: boolean, turn: number): Promise<EngineView> {
  const view = await engineView(page);
  const last = (await panelSamples(page)).at(-1);
  expect(last?.turn).toBe(turn);
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
    turn,
    policy: m.policy,
    gpuCurrent: view.ledger.current,
    gpuPeak: view.ledger.peak,
    kvBytes: m.bytes,
    kvAllocated: view.ledger.byTag.kv.current,
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

/** Clicks Load, answering the question it asks (if any) with `answer`; returns the question. */
async function clickLoad(page: Page, answer: 'accept' | 'dismiss'): Promise<string | undefined> {
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

/** Each reply in the log is marked cut exactly when the token limit ended it. */
async function expectCutMarks(page: Page, finishReasons: string[]): Promise<void> {
  const replies = await page
    .locator('#log li.assistant:not(.stopped)')
    .evaluateAll((lis) =>
      lis.map((li) => (li.classList.contains('cut') ? getComputedStyle(li, '::after').content : '')),
    );
  expect(replies).toEqual(
    finishReasons.map((r) => (r === 'length' ? '" … cut at the token limit (Max new tokens)"' : '')),
  );
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

  it('chats, keeps the conversation through failed loads, stops a reply, shows engine.memory() per turn and restores after a reload', async () => {
    expect(demoUrl).toBeDefined();
    await env!.withPage(demoUrl!, async (page) => {
      await page.setViewportSize({ width: 1200, height: 900 });
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.textContent('header')).toContain('260K-parameter');
      expect(await page.textContent('#status')).toContain('window policy');

      // A small window so that three turns evict tokens; greedy, short replies. No conversation yet: no question.
      await setSetting(page, 'window', '48');
      await setSetting(page, 'maxNewTokens', '32');
      await setSetting(page, 'temperature', '0');
      expect(await clickLoad(page, 'dismiss')).toBeUndefined();
      expect(await page.evaluate(() => document.querySelector<HTMLProgressElement>('#progress')!.value)).toBe(1);
      expect(await panelSamples(page)).toEqual([]); // no column before the first message
      expect(await page.locator('ccm-memory-panel .empty').count()).toBe(1);

      await watchStreaming(page);
      const prompts = [
        'Once upon a time, there was a little cat.',
        'The cat saw a big dog.',
        'They played in the park.',
      ];
      const finishReasons: string[] = [];
      for (const [i, prompt] of prompts.entries()) {
        const reply = await sendTurn(page, prompt);
        expect(reply.length, `reply ${i + 1}`).toBeGreaterThan(0);
        finishReasons.push((await engineView(page)).finishReason!);
        await expectPanelMatches(page, true, i + 1);
      }
      // the text arrived piece by piece, not at once
      const lengths = await page.evaluate(() => (window as unknown as DemoWindow).lengths);
      expect(new Set(lengths.filter((n) => n > 0)).size).toBeGreaterThan(prompts.length * 3);
      expect(await page.locator('#log li').count()).toBe(6);
      expect((await panelSamples(page)).map((s) => s.turn)).toEqual([1, 2, 3]);
      await expectCutMarks(page, finishReasons);
      expect(finishReasons).toContain('length'); // 32 tokens cut at least one story short
      const afterThree = (await engineView(page)).memory;
      expect(afterThree.tokensEvicted).toBeGreaterThan(0);
      expect(afterThree.compressionRatio).toBeGreaterThan(1);
      await page.screenshot({ path: path.join(ARTIFACTS, 'demo-three-turns.png'), fullPage: true });

      // Load of a setup that cannot load asks before it would discard the conversation; declined, nothing happens.
      await page.selectOption('#settings [name=policy]', 'ccm-concat');
      const engineBefore = await page.evaluate(() => (window as unknown as DemoWindow).ccmemDemo.engine.info);
      expect(await clickLoad(page, 'dismiss')).toContain('the 3 turns here will be discarded');
      expect(await page.locator('#log li').count()).toBe(6);
      // accepted: a ccm policy without an adapter fails, and the working model and conversation stay
      expect(await clickLoad(page, 'accept')).toContain('ccm-concat policy');
      expect(await page.textContent('#error')).toMatch(/adapter/);
      expect(await page.textContent('#status')).toContain('Could not load stories260K (embedded); still loaded');
      // an unreachable model folder the same way
      await page.check('#settings [name=source][value=custom]');
      await setSetting(page, 'model', 'http://127.0.0.1:9/no-model/');
      expect(await clickLoad(page, 'accept')).toContain('discarded');
      expect(await page.textContent('#error')).toContain('FETCH');
      expect(await page.evaluate(() => (window as unknown as DemoWindow).ccmemDemo.engine.info)).toEqual(engineBefore);
      expect(await page.locator('#log li').count()).toBe(6);
      expect((await engineView(page)).memory).toEqual(afterThree);
      await page.screenshot({ path: path.join(ARTIFACTS, 'demo-failed-load.png'), fullPage: true });
      await page.check('#settings [name=source][value=embedded]');
      await page.selectOption('#settings [name=policy]', 'window');

      // Stop a long reply once some text is out: the turn stays in the log, marked, the chat is as before it.
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
      // the panel has the stopped turn's column, marked, with the memory of before it
      const stoppedSample = (await panelSamples(page)).at(-1);
      expect(stoppedSample).toMatchObject({ turn: 4, stopped: true, memory: afterThree });
      await page.screenshot({ path: path.join(ARTIFACTS, 'demo-stopped.png'), fullPage: true });

      // Reload: the settings and the conversation come back, the stopped turn marked, and it goes on from there.
      await page.reload();
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.textContent('#status')).toContain('Restored 3 turns (and 1 stopped');
      expect(await page.locator('#log li.restored').count()).toBe(8);
      expect(await page.locator('#log li.restored.stopped').count()).toBe(2);
      await expectCutMarks(page, finishReasons);
      expect((await engineView(page)).memory).toEqual(afterThree);
      await expectPanelMatches(page, false, 3); // a restored chat: one column, at the turns it holds
      await setSetting(page, 'maxNewTokens', '8');
      expect((await sendTurn(page, 'The end.')).length).toBeGreaterThan(0);
      const after = await expectPanelMatches(page, true, 4);
      expect(after.finishReason).toBe('length');
      expect(await page.locator('#log li.assistant:last-child').getAttribute('class')).toContain('cut');
      // the conversation the cache stands for grew from the restored one (a fresh chat would be shorter)
      expect(after.memory.fullContextBytes).toBeGreaterThan(afterThree.fullContextBytes);
      expect((await panelSamples(page)).map((s) => s.turn)).toEqual([3, 4]);
      await page.screenshot({ path: path.join(ARTIFACTS, 'demo-restored.png'), fullPage: true });

      // New chat: an empty conversation, and the panel starts over with it.
      await page.click('#new-chat');
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.locator('#log li').count()).toBe(0);
      expect(await panelSamples(page)).toEqual([]);
    });
  });
});
