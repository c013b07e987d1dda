// The stderr progress bar of downloads and conversions (issue 11 item 11): drawn in place on a terminal
// only, throttled, cut to the terminal width, cleared before other output.
import { describe, expect, it } from 'vitest';
import { ProgressBar, progressLine } from '../../src/cli/progress.js';

function bar(columns: number) {
  const writes: string[] = [];
  let now = 0;
  const progress = new ProgressBar({ columns, write: (t) => void writes.push(t) }, () => now);
  return { progress, writes, tick: (ms: number) => void (now += ms) };
}

describe('ProgressBar', () => {
  it('draws nothing when stderr is not a terminal', () => {
    const { progress, writes } = bar(0);
    progress.update('downloading model.safetensors', 5e6, 10e6);
    progress.clear();
    expect(writes).toEqual([]);
  });

  it('redraws one line in place at most every 100 ms, always at completion, and clears it', () => {
    const { progress, writes, tick } = bar(80);
    progress.update('downloading model.safetensors', 1e6, 4e6);
    tick(50);
    progress.update('downloading model.safetensors', 2e6, 4e6); // throttled
    tick(60);
    progress.update('downloading model.safetensors', 3e6, 4e6);
    progress.update('downloading model.safetensors', 4e6, 4e6); // complete: drawn at once
    expect(writes).toHaveLength(3);
    expect(writes[0]).toBe('\rdownloading model.safetensors [#####...............]  25% 1.0/4.0 MB\x1b[K');
    expect(writes[2]).toContain('100% 4.0/4.0 MB');
    progress.clear();
    expect(writes.at(-1)).toBe('\r\x1b[K');
    progress.clear(); // nothing drawn since: nothing to clear
    expect(writes).toHaveLength(4);
  });

  it('fits the terminal width: the label is cut first, then the bar dropped', () => {
    const { progress, writes } = bar(50);
    progress.update(`reading ${'x'.repeat(60)}.bin`, 1, 2, 'items');
    const line = writes[0]!.slice(1, -3);
    expect(line).toBe(`…${'x'.repeat(12)}.bin [##########..........]  50% 1/2`);
    expect(line.length).toBe(49);
    expect(progressLine('reading model.bin', 1e6, 2e6, 'bytes', 20)).toBe('50% 1.0/2.0 MB');
    expect(progressLine('reading model.bin', 1e6, 0, 'bytes', 12)).toBe('1.0 MB');
  });

  it('without a total shows the amount alone', () => {
    expect(progressLine('downloading a', 2.5e6, 0, 'bytes')).toBe('downloading a 2.5 MB');
    expect(progressLine('converting t', 3, 0, 'items')).toBe('converting t 3');
  });

  it('bytes in the unit of the total', () => {
    expect(progressLine('f', 512, 2048, 'bytes')).toBe('f [#####...............]  25% 0.5/2.0 kB');
    expect(progressLine('f', 12, 700, 'bytes')).toBe('f [....................]   1% 12/700 B');
    expect(progressLine('f', 1.5e9, 3e9, 'bytes')).toBe('f [##########..........]  50% 1.5/3.0 GB');
  });
});
