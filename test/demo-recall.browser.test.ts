// The chat demo's default setup in headless Chromium (SwiftShader WebGPU): chat-tiny, the model trained
// here, under ccm-concat with its trained adapter (models/chat-tiny-concat), greedy. Through the
// suggestion chips a user states a locker number, chats three turns, then asks it: the reply holds it,
// from a fact compressed four turns earlier. (Numbers and ages are what this adapter recalls best; names
// it mostly misspells: BENCHMARKS.md, "Compressed memory".) The memory panel shows the KV in use staying within the ccm slot
// budget (the adapter's sink and n slots a turn, no working tokens left after a turn) while the
// full-context line climbs, and so does the demo's own KV chart. The ccm-merge adapter loads and answers
// too. A returning visitor's settings of the stories260K days give way to this default. Screenshot:
// test-artifacts/demo-recall.png.
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { CcmMemoryPanel } from '../src/devtools/panel.js';
import {
  ARTIFACTS,
  clickLoad,
  type DemoWindow,
  engineView,
  openSettings,
  panelSamples,
  READY,
  sendComposed,
  serveDemoForFile,
  TURN_TIMEOUT,
} from './helpers/demo.js';

/**
 * The demo's own suggestions (demo/settings.ts), phrased as train/data.py phrases a locker number, its
 * small talk and its question; 138 is a test-split number (never trained on). `ccmem chat --memory
 * ccm-concat` with the trained files answers "You told me your locker is 138." to this script too (the
 * demo's replies are the model's own, greedy).
 */
const TURNS = ['My locker number is 138.', 'How are you today?', 'Tell me a fun fact.', 'The weather is nice today.'];
const QUESTION = 'What is my locker number?';
const ANSWER = /\b138\b/;

/** Clicks the suggestion chip `text` (which fills the message box) and sends it; returns the reply. */
async function sendSuggestion(page: Page, text: string): Promise<string> {
  await page.locator('#suggestions button', { hasText: text }).click();
  expect(await page.inputValue('#composer textarea')).toBe(text);
  return sendComposed(page);
}

/** The chart's drawn series: the top of the working KV band (the KV in use) and the full-context line. */
const drawn = (page: Page) =>
  page.evaluate(() => {
    const data = document.querySelector<CcmMemoryPanel>('ccm-memory-panel')!.chart!.data;
    // [turn, free KV top, working KV top, memory slots top, scratch top, weights top, full-context line]
    return { turns: [...data[0]], kvTop: [...data[2]!], kvBottom: [...data[4]!], line: [...data[6]!] };
  });

describe('the chat demo on chat-tiny with ccm-concat', () => {
  const demo = serveDemoForFile();

  it('recalls a fact stated four turns earlier while the KV stays within the budget and the full context grows', async () => {
    await demo().env.withPage(demo().url, async (page) => {
      await page.setViewportSize({ width: 1200, height: 1000 });
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      // a visit from before chat-tiny stored stories260K with the window policy: it opens on the new default
      await page.evaluate(() => {
        localStorage.clear();
        localStorage.setItem('ccmem-demo/settings', JSON.stringify({ source: 'embedded', policy: 'window' }));
      });
      await page.reload();
      await page.waitForSelector(READY, { timeout: TURN_TIMEOUT });
      expect(await page.evaluate(() => localStorage.getItem('ccmem-demo/settings'))).toBeNull();
      const header = (await page.textContent('header')) ?? '';
      expect(header).toContain('chat-tiny');
      expect(header).toContain('not a general assistant');
      expect(await page.textContent('#status')).toMatch(/chat-tiny \(embedded\) .*ccm-concat policy/);
      expect(await page.inputValue('#settings [name=temperature]')).toBe('0');
      const budget = Number(await page.inputValue('#settings [name=budget]'));

      for (const text of TURNS) expect((await sendSuggestion(page, text)).length).toBeGreaterThan(0);
      const reply = await sendSuggestion(page, QUESTION);
      expect(reply).toMatch(ANSWER);

      const samples = await panelSamples(page);
      expect(samples.map((s) => s.turn)).toEqual([1, 2, 3, 4, 5]);
      const last = (await engineView(page)).memory;
      expect(samples.at(-1)!.memory).toEqual(last);
      // the adapter's sink (the first token, kept) and n COMP slots a turn
      const { sink } = last.slots;
      const n = samples[0]!.memory.slots.memory;
      const slotBytes = last.bytes / (sink + last.slots.memory);
      for (const [i, { memory: m }] of samples.entries()) {
        expect(m.policy).toBe('ccm-concat');
        expect(m.slots).toMatchObject({ sink, memory: n * (i + 1), working: 0 }); // every turn compressed
        expect(m.slots.memory).toBeLessThanOrEqual(budget);
        expect(m.bytes).toBeLessThanOrEqual((sink + budget) * slotBytes);
        if (i > 0) expect(m.fullContextBytes).toBeGreaterThan(samples[i - 1]!.memory.fullContextBytes);
      }
      expect(last.fullContextBytes).toBeGreaterThan(5 * last.bytes);
      expect(await page.getAttribute('ccm-memory-panel >> dd[data-stat=kvBytes]', 'data-value')).toBe(
        String(last.bytes),
      );

      // the chart: the KV in use (working KV top minus scratch top) rises by n slots a turn, the full-context
      // line by a whole turn of tokens
      const chart = await drawn(page);
      expect(chart.turns).toEqual([1, 2, 3, 4, 5]);
      const kv = chart.kvTop.map((top, i) => top! - chart.kvBottom[i]!);
      expect(kv).toEqual(samples.map((s) => s.memory.bytes));
      for (let i = 1; i < kv.length; i++) {
        const kvRise = kv[i]! - kv[i - 1]!;
        const lineRise = chart.line[i]! - chart.line[i - 1]!;
        expect(kvRise).toBe(n * slotBytes);
        expect(lineRise).toBeGreaterThan(5 * kvRise);
      }
      // the demo's KV chart draws the same on the KV's own scale: columns = KV in use, line = full-context KV
      const kvChart = await page.evaluate(() => {
        const data = (window as unknown as DemoWindow).ccmemDemo.kvChart!.data;
        return { turns: [...data[0]], top: [...data[1]!], line: [...data[3]!] }; // [turn, working top, memory top, line]
      });
      expect(kvChart).toEqual({
        turns: [1, 2, 3, 4, 5],
        top: samples.map((s) => s.memory.bytes),
        line: samples.map((s) => s.memory.fullContextBytes),
      });
      expect(await page.locator('#kv-chart').isVisible()).toBe(true);
      await page.screenshot({ path: path.join(ARTIFACTS, 'demo-recall.png'), fullPage: true });

      // the ccm-merge adapter loads (after asking about the conversation) and replies
      await openSettings(page);
      await page.selectOption('#settings [name=policy]', 'ccm-merge');
      expect(await clickLoad(page, 'accept')).toContain('the 5 turns here will be discarded');
      expect(await page.textContent('#status')).toMatch(/chat-tiny \(embedded\) .*ccm-merge policy/);
      expect((await sendSuggestion(page, TURNS[0]!)).length).toBeGreaterThan(0);
      // models/chat-tiny-merge/adapter_config.json: compTokens 4, the merged memory's size
      const mergeN = 4;
      expect((await engineView(page)).memory).toMatchObject({
        policy: 'ccm-merge',
        slots: { memory: mergeN, working: 0 },
      });
    });
  });
});
