/// <reference types="vite/client" />
// A stacked column chart with one overlaid line, drawn by uPlot. uPlot has no stacked mode: each stack
// is plotted as the cumulative sum of itself and the stacks below it, as bars from zero, topmost first,
// so that each lower (shorter) bar is painted over the one above and only its own band stays visible.
import uPlot from 'uplot';
import { UPLOT_CSS as uPlotCss } from './uplot-css.gen.js';

export interface Series {
  label: string;
  color: string;
  values: readonly number[];
}

export interface ChartData {
  /** The x value of each column (turn numbers, increasing). */
  x: readonly number[];
  /** Columns whose turn was stopped midway (its tick and legend say so). */
  stopped?: readonly boolean[];
  /** Bottom-up. */
  stacks: readonly Series[];
  line: Series;
}

const HEIGHT = 200;
/** Marks a stopped turn's tick. */
const STOPPED_MARK = '×';

/** uPlot's stylesheet plus this chart's touches, for the shadow root that hosts the chart. */
export const CHART_CSS = `${uPlotCss}
.u-legend { font-size: 11px; }
.u-legend .u-series { pointer-events: none; } /* hiding one cumulative series would misdraw the stack */
.u-legend .u-series > * { padding: 1px 3px; }`;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u ? v.toFixed(v < 10 ? 2 : 1) : v} ${units[u]}`;
}

/** uPlot's data: [x, cumulative stacks topmost first, line]. */
export function stackedChartData(data: ChartData): uPlot.AlignedData {
  let below = data.x.map(() => 0);
  const cumulative = data.stacks.map((s) => {
    below = below.map((b, i) => b + (s.values[i] ?? 0));
    return below;
  });
  return [[...data.x], ...cumulative.reverse(), [...data.line.values]];
}

/** Byte ticks at powers of two (256 KiB, 512 KiB, ...), which formatBytes shows as round numbers. */
const BYTE_INCRS = Array.from({ length: 41 }, (_, i) => 2 ** i);

export interface StackedChart {
  readonly plot: uPlot;
  /** Replaces the chart's values (same series as at creation). */
  update(data: ChartData): void;
}

const AXIS_FONT = '11px system-ui, sans-serif';

/** Draws `data` into `target` (sized to its width, following resizes) and shows the last column's values. */
export function createStackedChart(target: HTMLElement, data: ChartData): StackedChart {
  const stacks = data.stacks.length;
  let stopped = new Set(data.x.filter((_, i) => data.stopped?.[i]));
  const bars = uPlot.paths.bars!({ size: [0.7, 48] });
  const textColor = (u: uPlot) => getComputedStyle(u.root).color;
  const grid = { stroke: 'rgba(127,127,127,.2)', width: 1 };
  // the legend shows each band's own bytes: its cumulative value minus the one below it
  const bandValue = (u: uPlot, v: number | null, si: number, i: number | null) => {
    if (v === null || i === null) return '–';
    const below = si < stacks ? (u.data[si + 1]?.[i] ?? 0) : 0;
    return formatBytes(v - below);
  };
  const observer = new ResizeObserver(([entry]) => {
    const width = Math.floor(entry?.contentRect.width ?? 0);
    if (width > 0 && width !== plot.width) plot.setSize({ width, height: HEIGHT });
  });
  const plot = new uPlot(
    {
      width: target.clientWidth || 360,
      height: HEIGHT,
      cursor: { drag: { x: false, y: false, setScale: false }, points: { show: false } },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      scales: {
        x: { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.05] },
      },
      axes: [
        {
          stroke: textColor,
          grid: { show: false },
          ticks: { show: false },
          label: 'turn',
          labelSize: 16,
          labelFont: AXIS_FONT,
          size: 22,
          incrs: [1, 2, 5, 10, 20, 50, 100],
          values: (_u, splits) => splits.map((t) => (stopped.has(t) ? `${t}${STOPPED_MARK}` : String(t))),
        },
        {
          stroke: textColor,
          grid,
          ticks: { show: false },
          label: 'GPU memory',
          labelSize: 16,
          labelFont: AXIS_FONT,
          size: 64,
          incrs: BYTE_INCRS,
          values: (_u, splits) => splits.map(formatBytes),
        },
      ],
      series: [
        { label: 'turn', value: (_u, v) => (v === null ? '–' : stopped.has(v) ? `${v} (stopped)` : String(v)) },
        ...[...data.stacks].reverse().map((s) => ({
          label: s.label,
          stroke: s.color,
          fill: s.color,
          fillTo: 0,
          width: 0,
          paths: bars,
          points: { show: false },
          value: bandValue,
        })),
        {
          label: data.line.label,
          stroke: data.line.color,
          width: 2,
          dash: [4, 3],
          points: { show: true, size: 5, fill: data.line.color, stroke: data.line.color },
          value: (_u, v) => (v === null ? '–' : formatBytes(v)),
        },
      ],
      hooks: { destroy: [() => observer.disconnect()] },
    },
    stackedChartData(data),
    target,
  );
  observer.observe(target);
  showLast(plot);
  return {
    plot,
    update(next) {
      stopped = new Set(next.x.filter((_, i) => next.stopped?.[i]));
      plot.setData(stackedChartData(next));
      showLast(plot);
    },
  };
}

/** The legend shows the last column until the cursor picks another. */
function showLast(plot: uPlot): void {
  const n = plot.data[0].length;
  if (n) plot.setLegend({ idx: n - 1 });
}
