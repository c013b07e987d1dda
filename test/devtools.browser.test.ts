/// <reference path="../extension/chrome.d.ts" />
// The memory panel and the devtools hook in headless Chromium: a test page (blank.html plus the
// devtools module) publishes samples through window.__CCMEM_DEVTOOLS_HOOK__; the in-page
// <ccm-memory-panel> must show exactly those numbers, and so must the built Chrome extension's panel page,
// fed through the real content scripts and service worker. Screenshots go to test-artifacts/.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { type BrowserContext, chromium, type Page, type Worker } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExtension } from '../extension/build.mjs';
import type { HookEvent } from '../src/devtools/hook.js';
import type * as Devtools from '../src/devtools/index.js';
import type { MemorySample } from '../src/devtools/stats.js';
import { type BrowserEnv, startBrowserEnv } from './helpers/browser.js';
import { CHROMIUM } from './helpers/chromium.js';

const ARTIFACTS = path.resolve('test-artifacts');
const TEST_PAGE = '/test/browser/blank.html';

const SLOT_BYTES = 10_240;

type DevtoolsWindow = Window & { devtools: typeof Devtools; seen: HookEvent[] };

/** A plausible ccm-concat chat after `turn` turns: 5 layers, 64 slots of 10 KiB, 2 COMP slots a turn. */
function sample(turn: number): MemorySample {
  const slotBytes = SLOT_BYTES;
  const slots = { sink: 1, memory: 2 * turn, working: 10 + turn, capacity: 64 };
  const used = slots.sink + slots.memory + slots.working;
  const textTokens = 1 + 25 * turn + slots.working;
  const byTag = {
    weights: { current: 1_045_008, peak: 1_045_008 },
    kv: { current: slots.capacity * slotBytes, peak: slots.capacity * slotBytes },
    memory: { current: 0, peak: 0 },
    scratch: { current: 100_000 + 100 * turn, peak: 101_000 + 100 * turn },
    staging: { current: 4, peak: 4 },
  };
  const current = Object.values(byTag).reduce((s, t) => s + t.current, 0);
  return {
    memory: {
      policy: 'ccm-concat',
      compressionSteps: turn,
      layers: 5,
      slots,
      bytes: used * slotBytes,
      fullContextBytes: textTokens * slotBytes,
      compressionRatio: textTokens / used,
      tokensCompressed: 25 * turn,
      tokensEvicted: 0,
      nextPosition: textTokens,
    },
    ledger: { current, peak: current + 1000, byTag, buffers: 61 },
    speed: { prefillTokensPerSecond: 200 + turn, decodeTokensPerSecond: 40.5 + turn, timeToFirstTokenMs: 31 + turn },
    turn,
  };
}

/** The chart's bands of a sample bottom-up, as docs/devtools.md defines them: weights, scratch, memory slots, working KV, free KV. */
function devtoolsBands(s: MemorySample): number[] {
  const slotBytes = s.memory.bytes / (s.memory.slots.sink + s.memory.slots.memory + s.memory.slots.working);
  const memorySlots = (s.memory.slots.sink + s.memory.slots.memory) * slotBytes;
  const t = s.ledger.byTag;
  return [
    t.weights.current,
    t.scratch.current + t.staging.current,
    memorySlots,
    s.memory.bytes - memorySlots,
    t.kv.current - s.memory.bytes,
  ];
}

/** Everything but the KV buffers, plus the K/V of every token of the conversation. */
const fullContext = (s: MemorySample) => s.ledger.current - s.ledger.byTag.kv.current + s.memory.fullContextBytes;

/** The panel's statistics as data-stat -> data-value. */
function shownStats(page: Page, selector: string): Promise<Record<string, string>> {
  return page
    .locator(`${selector} dd[data-stat]`)
    .evaluateAll((dds) =>
      Object.fromEntries(dds.map((d) => [(d as HTMLElement).dataset.stat, (d as HTMLElement).dataset.value])),
    );
}

function expectedStats(s: MemorySample): Record<string, string> {
  const m = s.memory;
  return Object.fromEntries(
    Object.entries({
      turn: s.turn,
      policy: m.policy,
      gpuCurrent: s.ledger.current,
      gpuPeak: s.ledger.peak,
      kvBytes: m.bytes,
      kvAllocated: s.ledger.byTag.kv.current,
      fullContextBytes: m.fullContextBytes,
      compressionRatio: m.compressionRatio,
      tokensCompressed: m.tokensCompressed,
      tokensEvicted: m.tokensEvicted,
      positionsUsed: m.nextPosition,
      compressionSteps: m.compressionSteps,
      prefillTokensPerSecond: s.speed?.prefillTokensPerSecond,
      decodeTokensPerSecond: s.speed?.decodeTokensPerSecond,
      timeToFirstTokenMs: s.speed?.timeToFirstTokenMs,
    }).map(([k, v]) => [k, String(v)]),
  );
}

/** Loads the devtools module (served by Vite from src/) into the page as window.devtools. */
async function loadDevtools(page: Page): Promise<void> {
  await page.addScriptTag({
    type: 'module',
    content: "import * as m from '/src/devtools/index.ts'; window.devtools = m;",
  });
  await page.waitForFunction(() => 'devtools' in window);
}

const publish = (page: Page, engine: string, s: MemorySample) =>
  page.evaluate(([e, x]) => (window as unknown as DevtoolsWindow).devtools.publishSample(e, x), [engine, s] as const);

describe('devtools memory panel', () => {
  let env: BrowserEnv | undefined;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    env = await startBrowserEnv();
  });
  afterAll(() => env?.close());

  it('shows the hook samples of its engine: chart bands, slots per layer and exact statistics', async () => {
    await env!.withPage(TEST_PAGE, async (page) => {
      await page.setViewportSize({ width: 420, height: 760 });
      await loadDevtools(page);
      // two samples before the panel exists: the hook replays them
      await publish(page, 'chat-1', sample(1));
      await publish(page, 'chat-1', sample(2));
      await page.evaluate(() => {
        document.body.innerHTML = '<ccm-memory-panel hook engine="chat-1"></ccm-memory-panel>';
      });
      await publish(page, 'other', sample(9)); // another engine: ignored
      await publish(page, 'chat-1', sample(3));

      const last = sample(3);
      expect(await shownStats(page, 'ccm-memory-panel')).toEqual(expectedStats(last));
      const layers = await page
        .locator('ccm-memory-panel .layer')
        .evaluateAll((rows) => rows.map((r) => ({ ...(r as HTMLElement).dataset })));
      expect(layers).toHaveLength(last.memory.layers);
      for (const [l, row] of layers.entries()) {
        const { sink, memory, working, capacity } = last.memory.slots;
        expect(row).toEqual({
          layer: String(l),
          sink: String(sink),
          memory: String(memory),
          working: String(working),
          capacity: String(capacity),
        });
      }

      // The chart: uPlot holds one column per sample, the stacks as cumulative sums (topmost first) and the
      // line; on its canvas, the last column shows each band's color where that band lies.
      const bands = await page.evaluate((s) => (window as unknown as DevtoolsWindow).devtools.gpuBands(s), last);
      expect(bands.weights + bands.scratch + bands.memory + bands.kvWorking + bands.kvFree).toBe(last.ledger.current);
      expect(bands.memory).toBe(7 * SLOT_BYTES); // 1 sink + 6 memory slots
      expect(bands.kvWorking).toBe(13 * SLOT_BYTES); // the working tokens
      expect(bands.kvFree).toBe((64 - 20) * SLOT_BYTES); // the allocated slots nothing uses
      const line = fullContext(last);
      const chart = await page.evaluate(
        ({ bands, line }) => {
          const plot = document.querySelector('ccm-memory-panel')!.chart!;
          const canvas = plot.root.querySelector('canvas')!;
          const ctx = canvas.getContext('2d')!;
          const x = plot.valToPos(3, 'x', true);
          const at = (v: number) => {
            const y = plot.valToPos(v, 'y', true);
            return { y, rgb: [...ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data.slice(0, 3)] };
          };
          const stacked = [bands.weights, bands.scratch, bands.memory, bands.kvWorking, bands.kvFree];
          let base = 0;
          const pixels = stacked.map((v) => {
            const mid = at(base + v / 2);
            const edges = [at(base).y, at(base + v).y];
            base += v;
            return { ...mid, height: edges[0]! - edges[1]! };
          });
          return {
            data: plot.data.map((s) => [...s]),
            labels: plot.series.map((s) => s.label),
            axes: plot.axes.map((a) => a.label),
            pixels,
            line: at(line),
            aboveTop: at(base * 1.03), // between the column's top and the line
          };
        },
        { bands, line },
      );
      expect(chart.labels).toEqual([
        'turn',
        'free KV',
        'working KV',
        'memory slots',
        'scratch',
        'weights',
        'full-context equivalent',
      ]);
      expect(chart.axes).toEqual(['turn', 'GPU memory']);
      const columns = [1, 2, 3].map((t) => devtoolsBands(sample(t)));
      const cumulative = (upTo: number) => columns.map((b) => b.slice(0, upTo).reduce((a, v) => a + v, 0));
      expect(chart.data).toEqual([
        [1, 2, 3],
        cumulative(5),
        cumulative(4),
        cumulative(3),
        cumulative(2),
        cumulative(1),
        [1, 2, 3].map((t) => fullContext(sample(t))),
      ]);
      // within a few levels of `color` (#rrggbb): the line's pixels are antialiased
      const near = (rgb: number[], color: string) =>
        rgb.every((c, i) => Math.abs(c - Number.parseInt(color.slice(1 + 2 * i, 3 + 2 * i), 16)) <= 8);
      const colors = ['#6b7280', '#10b981', '#f59e0b', '#3b82f6', '#bfdbfe'];
      for (const [i, color] of colors.entries()) {
        const band = chart.pixels[i]!;
        if (band.height >= 3) expect(near(band.rgb, color), `${color}: ${band.rgb}`).toBe(true); // a thinner band's middle pixel may be its edge
      }
      expect(chart.pixels.map((b) => b.height >= 3)).toEqual([true, true, true, true, true]); // every band checked
      expect(near(chart.line.rgb, '#ef4444'), `line: ${chart.line.rgb}`).toBe(true);
      expect(near(chart.aboveTop.rgb, '#bfdbfe')).toBe(false); // the column ends at its total

      await page.screenshot({ path: path.join(ARTIFACTS, 'devtools-panel.png'), fullPage: true });

      // a reset of its engine empties the panel
      await page.evaluate(() =>
        (window as unknown as DevtoolsWindow).devtools.installHook().publish({ type: 'reset', engine: 'chat-1' }),
      );
      expect(await page.locator('ccm-memory-panel dd').count()).toBe(0);
      await expect.poll(() => page.locator('ccm-memory-panel .empty').count()).toBe(1);
    });
  });

  it('numbers its columns by turn: stopped turns marked, a turn answered again replaced, chats of an engine followed', async () => {
    await env!.withPage(TEST_PAGE, async (page) => {
      await page.setViewportSize({ width: 420, height: 760 });
      await loadDevtools(page);
      await page.evaluate(() => {
        document.body.innerHTML = '<ccm-memory-panel hook engine="demo"></ccm-memory-panel>';
      });
      const view = () =>
        page.evaluate(() => {
          const panel = document.querySelector('ccm-memory-panel')!;
          const legendTurn = panel.chart?.root.querySelector('.u-legend .u-series .u-value')?.textContent;
          const turnStat = panel.shadowRoot!.querySelector('dd[data-stat=turn]')?.textContent;
          return { turns: panel.chart ? [...panel.chart.data[0]] : [], legendTurn, turnStat };
        });
      const stoppedThird = { ...sample(2), turn: 3, stopped: true }; // a stopped reply leaves turn 2's memory
      for (const s of [sample(1), sample(2), stoppedThird]) await publish(page, 'demo.1', s);
      expect(await view()).toEqual({ turns: [1, 2, 3], legendTurn: '3 (stopped)', turnStat: '3 (stopped)' });
      await page.screenshot({ path: path.join(ARTIFACTS, 'devtools-panel-stopped.png'), fullPage: true });
      await publish(page, 'demo.1', sample(3)); // the turn answered after all
      expect(await view()).toEqual({ turns: [1, 2, 3], legendTurn: '3', turnStat: '3' });
      await publish(page, 'demo.1', sample(2)); // the conversation went back (rebuilt, or another imported)
      expect((await view()).turns).toEqual([1, 2]);
      const { turn: _, ...unnumbered } = sample(3); // a sample pushed without a turn follows the last one
      await publish(page, 'demo.1', unnumbered);
      expect((await view()).turns).toEqual([1, 2, 3]);

      // the engine's next chat (a restored one: its first column is the turns it holds), not another engine
      await publish(page, 'demo.2', sample(5));
      await publish(page, 'demox.1', sample(1));
      await publish(page, 'other', sample(1));
      expect((await view()).turns).toEqual([5]);
    });
  });

  it('the hook carries statistics only and drops what is not a sample', async () => {
    await env!.withPage(TEST_PAGE, async (page) => {
      await loadDevtools(page);
      const seen = await page.evaluate((s) => {
        const w = window as unknown as DevtoolsWindow;
        const hook = w.devtools.installHook();
        // the same object whoever asks
        if (
          hook !== w.devtools.installHook() ||
          hook !== (window as unknown as Record<string, unknown>).__CCMEM_DEVTOOLS_HOOK__
        ) {
          throw new Error('installHook returned a second hook');
        }
        const seen: HookEvent[] = [];
        hook.subscribe((e) => seen.push(e));
        const leaky = { ...s, text: 'Hi, I am Ada.', memory: { ...s.memory, prompt: 'secret' } };
        hook.publish({ type: 'sample', engine: 'chat-1', sample: leaky } as never);
        hook.publish({ type: 'sample', engine: 'Hi, I am Ada.', sample: s }); // free text as an engine id
        hook.publish({
          type: 'sample',
          engine: 'chat-1',
          sample: { ...s, memory: { ...s.memory, bytes: 'x' } },
        } as never);
        hook.publish({ type: 'chat', engine: 'chat-1', text: 'secret' } as never);
        return seen;
      }, sample(1));
      expect(seen).toEqual([{ type: 'sample', engine: 'chat-1', sample: sample(1) }]);
      expect(JSON.stringify(seen)).not.toMatch(/Ada|secret/);
    });
  });

  describe('the Chrome extension', () => {
    const extDir = path.resolve(`.tmp/extension-test-${process.pid}`);
    let context: BrowserContext | undefined;
    let worker: Worker | undefined;
    const errors: string[] = [];

    beforeAll(async () => {
      await buildExtension(extDir);
      context = await chromium.launchPersistentContext('', {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`],
      });
      worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker', { timeout: 30_000 }));
      context.on('weberror', (e) => errors.push(String(e.error())));
    });
    afterAll(async () => {
      await context?.close();
      rmSync(extDir, { recursive: true, force: true });
    });

    it('its panel page shows what the inspected page publishes, live, and clears on reload', async () => {
      const page = context!.pages()[0] ?? (await context!.newPage());
      await page.goto(new URL(TEST_PAGE, env!.baseUrl).href);
      // the extension's content script installed the hook before the page's module found it
      expect(await page.evaluate(() => '__CCMEM_DEVTOOLS_HOOK__' in window)).toBe(true);
      await loadDevtools(page);
      await publish(page, 'chat-1', sample(1));
      await publish(page, 'chat-1', sample(2));
      // a page can post anything to the relay directly: it arrives sanitized or not at all
      await page.evaluate((s) => {
        const leaky = { type: 'sample', engine: 'chat-1', sample: { ...s, transcript: ['Hi, I am Ada.'] } };
        window.postMessage({ source: 'ccmem-devtools-hook', event: leaky }, '*');
        window.postMessage({ source: 'ccmem-devtools-hook', event: { type: 'sample', engine: 'chat-1' } }, '*');
      }, sample(3));

      const tabs = await worker!.evaluate(() => chrome.tabs.query({}));
      expect(tabs).toHaveLength(1);
      const extensionId = new URL(worker!.url()).host;
      const panel = await context!.newPage();
      await panel.setViewportSize({ width: 420, height: 760 });
      panel.on('console', (m) => m.type() === 'error' && errors.push(m.text())); // CSP violations among them
      await panel.goto(`chrome-extension://${extensionId}/panel.html?tab=${tabs[0]!.id}`);
      const count = () => panel.evaluate(() => document.querySelector('ccm-memory-panel')!.samples.length);
      await expect.poll(count, { timeout: 10_000 }).toBe(3);
      expect(await shownStats(panel, 'ccm-memory-panel')).toEqual(expectedStats(sample(3)));
      const received = await panel.evaluate(() => JSON.stringify(document.querySelector('ccm-memory-panel')!.samples));
      expect(received).not.toContain('Ada');

      await publish(page, 'chat-1', sample(4)); // live
      await expect.poll(count, { timeout: 10_000 }).toBe(4);
      expect(await shownStats(panel, 'ccm-memory-panel')).toEqual(expectedStats(sample(4)));
      // the bundled uPlot draws the four turns (its stylesheet lays the canvas out at the chart's size)
      const chart = await panel.evaluate(() => {
        const plot = document.querySelector('ccm-memory-panel')!.chart!;
        const rect = plot.root.querySelector('canvas')!.getBoundingClientRect();
        return { turns: [...plot.data[0]], line: [...plot.data[6]!], width: rect.width, height: rect.height };
      });
      expect(chart.turns).toEqual([1, 2, 3, 4]);
      expect(chart.line).toEqual([1, 2, 3, 4].map((t) => fullContext(sample(t))));
      expect(chart.width).toBeGreaterThan(300);
      expect(chart.height).toBeGreaterThan(100);
      await panel.screenshot({ path: path.join(ARTIFACTS, 'devtools-extension-panel.png'), fullPage: true });

      await page.reload();
      await expect.poll(count, { timeout: 10_000 }).toBe(0);
      expect(errors).toEqual([]);
    });
  });
});
