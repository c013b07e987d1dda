// Markdown pieces shared by the benchmark reports.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** A right-aligned markdown table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(3, h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padStart(widths[c]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => `${'-'.repeat(w - 1)}:`)), ...rows.map(line)].join('\n');
}

/** Replaces the block between `<!-- bench:NAME start -->` and `end -->` in `path` (appends it when absent). */
export function writeSection(path: string, name: string, section: string): void {
  const start = `<!-- bench:${name} start -->`;
  const end = `<!-- bench:${name} end -->`;
  let text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const block = `${start}\n${section}${end}\n`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  text = a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + end.length + 1) : `${text}\n${block}`;
  writeFileSync(path, text);
}
