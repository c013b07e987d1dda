// A stacked column chart with one overlaid line, as an SVG string (no charting dependency: see
// docs/devtools.md). One column per sample, stacked bottom-up in series order.

export interface Series {
  label: string;
  color: string;
  values: readonly number[];
}

export interface ChartData {
  /** The x label of each column (turn numbers). */
  x: readonly number[];
  stacks: readonly Series[];
  line: Series;
}

const W = 360;
const H = 160;
const PAD = { left: 56, right: 8, top: 8, bottom: 20 };

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

export function stackedChartSvg(data: ChartData): string {
  const n = data.x.length;
  const totals = data.x.map((_, i) => data.stacks.reduce((s, series) => s + (series.values[i] ?? 0), 0));
  const top = Math.max(1, ...totals, ...data.line.values) * 1.05;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, n);
  const xAt = (i: number) => PAD.left + step * (i + 0.5);
  const yAt = (v: number) => PAD.top + plotH * (1 - v / top);
  const parts: string[] = [];
  for (const f of [0, 0.5, 1]) {
    const y = yAt(top * f).toFixed(1);
    parts.push(
      `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" stroke="currentColor" stroke-opacity="0.15"/>`,
      `<text x="${PAD.left - 4}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatBytes(top * f)}</text>`,
    );
  }
  const barW = Math.max(1, step * 0.7);
  data.x.forEach((turn, i) => {
    let base = 0;
    const tip = [`turn ${turn}`];
    for (const s of data.stacks) {
      const v = s.values[i] ?? 0;
      const y0 = yAt(base);
      const y1 = yAt(base + v);
      parts.push(
        `<rect x="${(xAt(i) - barW / 2).toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" ` +
          `height="${(y0 - y1).toFixed(1)}" fill="${s.color}"/>`,
      );
      tip.push(`${s.label}: ${formatBytes(v)}`);
      base += v;
    }
    tip.push(`${data.line.label}: ${formatBytes(data.line.values[i] ?? 0)}`);
    parts.push(
      `<rect x="${(xAt(i) - step / 2).toFixed(1)}" y="${PAD.top}" width="${step.toFixed(1)}" height="${plotH}" ` +
        `fill="transparent"><title>${tip.join('\n')}</title></rect>`,
    );
  });
  const points = data.line.values.map((v, i) => `${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}`).join(' ');
  parts.push(
    `<polyline points="${points}" fill="none" stroke="${data.line.color}" stroke-width="2" stroke-dasharray="4 3"/>`,
  );
  for (const i of n ? [0, n - 1] : []) {
    parts.push(`<text x="${xAt(i).toFixed(1)}" y="${H - 6}" text-anchor="middle">${data.x[i]}</text>`);
  }
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="GPU bytes by tag over turns">${parts.join('')}</svg>`;
}
