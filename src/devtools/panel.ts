// <ccm-memory-panel>: live memory statistics of a ccmem chat, one sample per turn. Usable in any page:
//   <ccm-memory-panel hook></ccm-memory-panel>      follows the page's devtools hook (hook.ts)
//   panel.push({ ...(await engine.memory()), speed: (await chat.lastResult()).usage })
// The DevTools extension hosts the same element and feeds it relayed hook events (receive()).
import type uPlot from 'uplot';
import { CHART_CSS, type ChartData, createStackedChart, formatBytes, type StackedChart } from './chart.js';
import { type HookEvent, installHook } from './hook.js';
import { type MemorySample, sanitizeSample } from './stats.js';

export const PANEL_TAG = 'ccm-memory-panel';
/** Turns kept on the chart. */
const HISTORY = 200;

const COLORS = {
  weights: '#6b7280',
  scratch: '#10b981',
  memory: '#f59e0b',
  kvWorking: '#3b82f6',
  kvFree: '#bfdbfe',
  line: '#ef4444',
  sink: '#8b5cf6',
};

/** The chart's bands bottom-up, with their legend labels. */
const BANDS = [
  ['weights', 'weights'],
  ['scratch', 'scratch'],
  ['memory', 'memory slots'],
  ['kvWorking', 'working KV'],
  ['kvFree', 'free KV'],
] as const;

export type GpuBands = Record<(typeof BANDS)[number][0], number>;

/** The chart's bands for one sample; they add up to the ledger's current bytes (docs/devtools.md). */
export function gpuBands(s: MemorySample): GpuBands {
  const { memory: m, ledger: l } = s;
  const used = m.slots.sink + m.slots.memory + m.slots.working;
  // memory slots live in the KV buffers: their bytes move from the KV bands to the memory band
  const memorySlotBytes = used ? (m.bytes / used) * (m.slots.sink + m.slots.memory) : 0;
  return {
    weights: l.byTag.weights.current,
    scratch: l.byTag.scratch.current + l.byTag.staging.current,
    memory: l.byTag.memory.current + memorySlotBytes,
    kvWorking: m.bytes - memorySlotBytes,
    kvFree: l.byTag.kv.current - m.bytes,
  };
}

/**
 * What the GPU would hold if the KV cache held exactly every token of the conversation: everything but
 * the KV buffers, plus the full context's K/V. It meets the top of the working KV when nothing is dropped.
 */
export const fullContextEquivalent = (s: MemorySample) =>
  s.ledger.current - s.ledger.byTag.kv.current + s.memory.fullContextBytes;

/** The numbers the panel lists: [data-stat name, label, exact value, shown text]. */
function statRows(s: MemorySample): [string, string, number | string, string][] {
  const m = s.memory;
  const rate = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(1)} tok/s`);
  const turn = s.turn ?? 0;
  const kvAllocated = s.ledger.byTag.kv.current;
  const rows: [string, string, number | string, string][] = [
    ['turn', 'Turn', turn, s.stopped ? `${turn} (stopped)` : String(turn)],
    ['policy', 'Policy', m.policy, m.policy],
    ['gpuCurrent', 'GPU now', s.ledger.current, formatBytes(s.ledger.current)],
    ['gpuPeak', 'GPU peak', s.ledger.peak, formatBytes(s.ledger.peak)],
    ['kvBytes', 'KV in use', m.bytes, formatBytes(m.bytes)],
    ['kvAllocated', 'KV allocated', kvAllocated, formatBytes(kvAllocated)],
    ['fullContextBytes', 'Full-context KV', m.fullContextBytes, formatBytes(m.fullContextBytes)],
    ['compressionRatio', 'Compression ratio', m.compressionRatio, `${m.compressionRatio.toFixed(2)}×`],
    ['tokensCompressed', 'Tokens compressed', m.tokensCompressed, String(m.tokensCompressed)],
    ['tokensEvicted', 'Tokens evicted', m.tokensEvicted, String(m.tokensEvicted)],
    ['positionsUsed', 'Positions used', m.nextPosition, String(m.nextPosition)],
    ['compressionSteps', 'Compression steps', m.compressionSteps, String(m.compressionSteps)],
  ];
  if (s.speed) {
    rows.push(
      ['prefillTokensPerSecond', 'Prefill', s.speed.prefillTokensPerSecond, rate(s.speed.prefillTokensPerSecond)],
      ['decodeTokensPerSecond', 'Decode', s.speed.decodeTokensPerSecond, rate(s.speed.decodeTokensPerSecond)],
      ['timeToFirstTokenMs', 'First token', s.speed.timeToFirstTokenMs, `${s.speed.timeToFirstTokenMs.toFixed(0)} ms`],
    );
  }
  return rows;
}

const STYLE = `
:host { display: block; font: 12px/1.4 system-ui, sans-serif; color: inherit; min-width: 260px; }
h3 { font-size: 12px; margin: 12px 0 4px; text-transform: uppercase; letter-spacing: .04em; opacity: .7; }
${CHART_CSS}
.legend { display: flex; flex-wrap: wrap; gap: 4px 10px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; }
dt { opacity: .7; } dd { margin: 0; font-variant-numeric: tabular-nums; text-align: right; }
.layer { display: grid; grid-template-columns: 2.5em 1fr; align-items: center; gap: 6px; margin: 2px 0; }
.bar { display: flex; height: 8px; background: rgba(127,127,127,.2); border-radius: 2px; overflow: hidden; }
.empty { opacity: .6; font-style: italic; }
`;

const Base = (globalThis.HTMLElement ?? class {}) as typeof HTMLElement; // importable outside a DOM (Node)

export class CcmMemoryPanel extends Base {
  private history: MemorySample[] = [];
  private engine: string | undefined;
  private unsubscribe: (() => void) | undefined;
  private stacked: StackedChart | undefined;
  private readonly root: ShadowRoot;

  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.render();
  }

  get samples(): readonly MemorySample[] {
    return this.history;
  }

  /** The uPlot instance drawing the chart; undefined without samples, and from a detach until the next render. */
  get chart(): uPlot | undefined {
    return this.stacked?.plot;
  }

  /**
   * Adds one turn's statistics; anything but the MemorySample fields is dropped. A sample without a turn
   * number is taken as the turn after the last one; a sample for a turn already shown (a stopped reply's
   * turn answered again, or a conversation that went back) replaces that turn and every later one.
   */
  push(sample: MemorySample): void {
    const clean = sanitizeSample(sample);
    if (!clean) throw new TypeError('not a memory sample: { memory: MemoryStats, ledger: LedgerSnapshot, speed? }');
    const turn = clean.turn ?? (this.history.at(-1)?.turn ?? 0) + 1;
    const kept = this.history.filter((s) => (s.turn ?? 0) < turn);
    this.history = [...kept, { ...clean, turn }].slice(-HISTORY);
    this.render();
  }

  clear(): void {
    this.history = [];
    this.render();
  }

  /**
   * Applies one hook event. With the `engine` attribute only that id and its chats (`id.1`, `id.2`, ...)
   * are shown; the panel follows whichever of them published last (starting over when it changes).
   */
  receive(event: HookEvent): void {
    const wanted = this.getAttribute('engine');
    if (wanted !== null && event.engine !== wanted && !event.engine.startsWith(`${wanted}.`)) return;
    if (event.type === 'reset') {
      if (event.engine === this.engine) this.clear();
      return;
    }
    if (event.engine !== this.engine) {
      this.engine = event.engine;
      this.history = [];
    }
    this.push(event.sample);
  }

  /** Follows the hook of `scope` (default: this page); returns the unsubscribe function. */
  connectHook(scope?: object): () => void {
    this.unsubscribe?.();
    const off = installHook(scope).subscribe((e) => this.receive(e));
    this.unsubscribe = off;
    return () => {
      off();
      if (this.unsubscribe === off) this.unsubscribe = undefined;
    };
  }

  connectedCallback(): void {
    if (this.hasAttribute('hook') && !this.unsubscribe) this.connectHook();
    if (!this.stacked) this.render();
  }

  disconnectedCallback(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    // uPlot listens on the window: let go of it until the panel is attached again
    this.stacked?.plot.destroy();
    this.stacked = undefined;
  }

  private render(): void {
    const last = this.history.at(-1);
    if (!last) {
      this.stacked?.plot.destroy();
      this.stacked = undefined;
      this.root.innerHTML = `<style>${STYLE}</style><p class="empty">No ccmem statistics yet: they appear after each turn.</p>`;
      return;
    }
    if (this.stacked) this.stacked.update(this.chartData());
    else {
      this.root.innerHTML =
        `<style>${STYLE}</style><h3>GPU memory by turn</h3><div class="chart"></div>` +
        `<h3>Slots per layer</h3><div class="layers"></div><h3>Statistics</h3><dl></dl>`;
      this.stacked = createStackedChart(this.root.querySelector<HTMLElement>('.chart')!, this.chartData());
    }
    this.renderLayers(last);
    this.renderStats(last);
  }

  private chartData(): ChartData {
    const bands = this.history.map(gpuBands);
    return {
      x: this.history.map((s) => s.turn ?? 0),
      stopped: this.history.map((s) => s.stopped === true),
      stacks: BANDS.map(([band, label]) => ({ label, color: COLORS[band], values: bands.map((b) => b[band]) })),
      line: { label: 'full-context equivalent', color: COLORS.line, values: this.history.map(fullContextEquivalent) },
    };
  }

  private renderStats(s: MemorySample): void {
    const items = statRows(s).flatMap(([key, label, value, text]) => {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.dataset.stat = key;
      dd.dataset.value = String(value);
      dd.textContent = text;
      return [dt, dd];
    });
    this.root.querySelector('dl')!.replaceChildren(...items);
  }

  private renderLayers(s: MemorySample): void {
    const { slots, layers } = s.memory;
    const parts: [string, number, string][] = [
      ['sink', slots.sink, COLORS.sink],
      ['memory', slots.memory, COLORS.memory],
      ['working', slots.working, COLORS.kvWorking],
    ];
    const title = `${parts.map(([k, v]) => `${k} ${v}`).join(', ')} of ${slots.capacity} slots`;
    const data = `${parts.map(([k, v]) => `data-${k}="${v}"`).join(' ')} data-capacity="${slots.capacity}"`;
    const bar = parts
      .map(([, v, c]) => `<span style="width:${(100 * v) / Math.max(1, slots.capacity)}%;background:${c}"></span>`)
      .join('');
    const legend = parts.map(([k, , c]) => `<span><i style="background:${c}"></i>${k}</span>`).join('');
    // every layer holds the same slot layout (MemoryStats), so each row shows it for its layer
    const rows = Array.from(
      { length: layers },
      (_, l) =>
        `<div class="layer" data-layer="${l}" ${data} title="${title}"><span>L${l}</span><div class="bar">${bar}</div></div>`,
    );
    this.root.querySelector('.layers')!.innerHTML =
      `<div class="legend">${legend}<span>of ${slots.capacity} slots</span></div>${rows.join('')}`;
  }
}

if (globalThis.customElements && !customElements.get(PANEL_TAG)) customElements.define(PANEL_TAG, CcmMemoryPanel);

declare global {
  interface HTMLElementTagNameMap {
    [PANEL_TAG]: CcmMemoryPanel;
  }
}
