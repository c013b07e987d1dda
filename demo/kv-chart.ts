// "KV cache by turn": the memory panel's turns again, on the scale of the KV cache alone. The panel's
// chart stacks the whole GPU, where a tiny model's weights and scratch dwarf its KV, so there a flat KV
// and a climbing full-context line both look flat; here the KV in use (memory slots and working KV) is
// drawn as columns and the full-context KV (what a cache holding every token would use) as the line.

import type uPlot from 'uplot';
import { CHART_CSS, type ChartData, createStackedChart, type StackedChart } from '../src/devtools/chart.js';
import { installHook } from '../src/devtools/hook.js';
import type { CcmMemoryPanel } from '../src/devtools/panel.js';
import type { MemorySample } from '../src/devtools/stats.js';

/** Bytes of a sample's sink and memory slots, and of its working KV (they add up to memory.bytes). */
function kvBands({ memory: m }: MemorySample): { memory: number; working: number } {
  const used = m.slots.sink + m.slots.memory + m.slots.working;
  const memory = used ? (m.bytes / used) * (m.slots.sink + m.slots.memory) : 0;
  return { memory, working: m.bytes - memory };
}

export function kvChartData(samples: readonly MemorySample[]): ChartData {
  const bands = samples.map(kvBands);
  return {
    x: samples.map((s) => s.turn ?? 0),
    stopped: samples.map((s) => s.stopped === true),
    stacks: [
      { label: 'memory slots', color: '#f59e0b', values: bands.map((b) => b.memory) },
      { label: 'working KV', color: '#3b82f6', values: bands.map((b) => b.working) },
    ],
    line: { label: 'full-context KV', color: '#ef4444', values: samples.map((s) => s.memory.fullContextBytes) },
  };
}

/**
 * Draws `panel`'s samples into `host` after every event on the page's devtools hook (the panel's source);
 * returns a getter of the uPlot instance drawing them (undefined without samples).
 */
export function followPanel(host: HTMLElement, panel: CcmMemoryPanel): () => uPlot | undefined {
  const root = host.attachShadow({ mode: 'open' });
  // styled as the panel's own headings
  const style = `:host { display: block; font: 12px/1.4 system-ui, sans-serif; } :host([hidden]) { display: none; }
h3 { font-size: 12px; margin: 12px 0 4px; text-transform: uppercase; letter-spacing: .04em; opacity: .7; }`;
  root.innerHTML = `<style>${style} ${CHART_CSS}</style><h3>KV cache by turn</h3><div class="chart"></div>`;
  const target = root.querySelector<HTMLElement>('.chart')!;
  let chart: StackedChart | undefined;
  const draw = () => {
    const samples = panel.samples;
    host.hidden = samples.length === 0;
    if (!samples.length) {
      chart?.plot.destroy();
      chart = undefined;
    } else if (chart) chart.update(kvChartData(samples));
    else chart = createStackedChart(target, kvChartData(samples));
  };
  // the panel subscribed first (when its element was defined); a microtask later it has the event too
  installHook().subscribe(() => queueMicrotask(draw));
  return () => chart?.plot;
}
