// The built chat demo (demo/, built and served by Vite's preview server as `npm run demo` does) in headless
// Chromium on SwiftShader WebGPU, with the embedded stories260K that scripts/demo-model.mjs converts into
// public/models/ (the default, chat-tiny under ccm-concat, is demo-recall.browser.test.ts's): pick it and
// the window policy's parameters, load, chat three turns with streamed text (replies
// the token limit cut are marked), check that the memory panel (fed by the engine itself) shows exactly
// what engine.memory() says, one column per turn; Load of setups that fail (a ccm policy without an
// adapter, an unreachable model) asks first and keeps the working model and conversation; stop a reply
// midway; reload the page and find the conversation restored, the stopped turn and the cut marks
// included. Screenshots go to test-artifacts/.
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import {
  ARTIFACTS,
  clickLoad,
  type DemoWindow,
  type EngineView,
  engineView,
  openSettings,
  panelSamples,
  READY,
  sendTurn,
  serveDemoForFile,
  setSetting,
  TURN_TIMEOUT,
} from './helpers/demo.js';

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
  const demo = serveDemoForFile();

  it('chats, keeps the conversation through failed loads, stops a reply, shows engine.memory() per turn and restores after a reload', async () => {
    await demo().env.withPage(demo().url, async (page) => {
      await page.setViewportSize({ width: 1200, height: 900 });
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.textContent('header')).toContain('260K-parameter');
      expect(await page.textContent('#status')).toContain('chat-tiny (embedded)'); // the default

      // stories260K with a small window, so that three turns evict tokens; greedy, short replies. No
      // conversation yet: no question.
      await openSettings(page);
      await page.check('#settings [name=source][value=stories260K]');
      await page.selectOption('#settings [name=policy]', 'window');
      await setSetting(page, 'window', '48');
      await setSetting(page, 'maxNewTokens', '32');
      await setSetting(page, 'temperature', '0');
      expect(await clickLoad(page, 'dismiss')).toBeUndefined();
      expect(await page.textContent('#status')).toContain('stories260K (embedded)');
      expect(await page.textContent('#status')).toContain('window policy');
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
      await page.check('#settings [name=source][value=stories260K]');
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
