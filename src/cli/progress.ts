// A one-line progress bar on stderr for downloads, model loads and conversions. Drawn only when stderr is
// a terminal (the CLI's wrapper process passes that on in CCMEM_STDERR_TTY, see entry.ts), so logs,
// pipes and --json consumers see nothing of it; stdout never carries it.

export interface ProgressOutput {
  /** Terminal width; 0 when stderr is not a terminal (then nothing is drawn). */
  readonly columns: number;
  write(text: string): void;
}

export type ProgressUnit = 'bytes' | 'items';

const REDRAW_MS = 100;
const BAR = 20;

export class ProgressBar {
  private drawn = false;
  private lastDraw = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly out: ProgressOutput = stderrOutput(),
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** `done` of `total` (0: unknown) for `label`; redrawn at most every 100 ms, and always when complete. */
  update(label: string, done: number, total: number, unit: ProgressUnit = 'bytes'): void {
    if (this.out.columns <= 0) return;
    const t = this.now();
    if (t - this.lastDraw < REDRAW_MS && !(total > 0 && done >= total)) return;
    this.lastDraw = t;
    this.drawn = true;
    this.out.write(`\r${progressLine(label, done, total, unit, this.out.columns - 1)}\x1b[K`);
  }

  /** Removes the bar (before other output, and when the work is done). */
  clear(): void {
    if (!this.drawn) return;
    this.drawn = false;
    this.lastDraw = Number.NEGATIVE_INFINITY;
    this.out.write('\r\x1b[K');
  }
}

/**
 * "label [#####.....]  45% 12.3/27.1 MB" (without a total: "label 12.3 MB"), at most `width` characters:
 * the label is cut from its start (a wrapped line would not be redrawn in place), then the bar dropped.
 */
export function progressLine(label: string, done: number, total: number, unit: ProgressUnit, width = Infinity): string {
  const [scale, name] = unit === 'bytes' ? byteUnit(Math.max(total, done)) : [1, ''];
  const amount = (n: number) => (scale === 1 ? String(n) : (n / scale).toFixed(1));
  const suffix = name && ` ${name}`;
  let bar = '';
  let figures = `${amount(done)}${suffix}`;
  if (total > 0) {
    const share = Math.min(1, done / total);
    const filled = Math.round(share * BAR);
    bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] `;
    figures = `${`${Math.floor(share * 100)}%`.padStart(4)} ${amount(done)}/${amount(total)}${suffix}`;
  }
  const full = `${label} ${bar}${figures}`;
  if (full.length <= width) return full;
  const room = width - bar.length - figures.length - 1;
  if (room >= 8) return `…${label.slice(label.length - room + 1)} ${bar}${figures}`;
  return figures.trimStart().slice(0, Math.max(0, width));
}

function byteUnit(n: number): [number, string] {
  if (n >= 1e9) return [1e9, 'GB'];
  if (n >= 1e6) return [1e6, 'MB'];
  return n >= 1e3 ? [1e3, 'kB'] : [1, 'B'];
}

/** stderr, with the terminal width when it is a terminal, here or in the wrapper process. */
export function stderrOutput(): ProgressOutput {
  const inherited = Math.max(Number(process.env.CCMEM_STDERR_TTY) || 0, 0);
  const columns = process.stderr.isTTY ? process.stderr.columns || 80 : inherited;
  return { columns, write: (text) => process.stderr.write(text) };
}

let shared: ProgressBar | undefined;

/** The CLI's one progress bar on stderr. */
export function stderrProgress(): ProgressBar {
  shared ??= new ProgressBar();
  return shared;
}
