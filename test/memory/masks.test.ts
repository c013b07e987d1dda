// The training masks against the matrices of ccm.md section 6 and the sentinel rules of sentinel.md
// section 3, cell by cell; sentinel positions and labels on the worked example; the GPU mask packing
// read back through the attention kernel's CPU reference.
import { describe, expect, it } from 'vitest';
import { attentionRef } from '../../src/kernels/attention.ref.js';
import {
  ccmVisible,
  IGNORE_LABEL,
  packMask,
  sentinelIds,
  sentinelLabels,
  sentinelLayout,
  sentinelVisible,
  type Visible,
} from '../../src/memory/masks.js';
import { ccmTrainingLayout } from '../../src/memory/positions.js';
import { errorCode } from '../helpers/checks.js';
import { randomArray, rng } from '../helpers/gpu.js';

/** Rows "name  1 . 1 ..." of a printed mask: name -> the 0/1 cells. */
function parseMatrix(text: string): Map<string, boolean[]> {
  const rows = new Map<string, boolean[]>();
  for (const line of text.trim().split('\n')) {
    const [name, ...cells] = line.trim().split(/\s+/);
    rows.set(
      name!,
      cells.map((c) => c === '1'),
    );
  }
  return rows;
}

function expectRows(visible: Visible, names: string[], expected: Map<string, boolean[]>): void {
  for (const [name, cells] of expected) {
    const q = names.indexOf(name);
    expect(cells, `row ${name}`).toHaveLength(names.length);
    cells.forEach((want, k) => {
      expect(visible(q, k), `${name} -> ${names[k]}`).toBe(want);
    });
  }
}

describe('ccmVisible', () => {
  it('reproduces the concat matrix of ccm.md section 6 in every cell', () => {
    const layout = ccmTrainingLayout({ chunkLengths: [2, 2, 2], n: 1, mode: 'concat', inputLength: 2 });
    const names = 'a1 a2 C1 b1 b2 C2 c1 c2 C3 x y'.split(' ');
    const expected = parseMatrix(`
      a1   1  .  .  .  .  .  .  .  .  .  .
      a2   1  1  .  .  .  .  .  .  .  .  .
      C1   1  1  1  .  .  .  .  .  .  .  .
      b1   .  .  1  1  .  .  .  .  .  .  .
      b2   .  .  1  1  1  .  .  .  .  .  .
      C2   .  .  1  1  1  1  .  .  .  .  .
      c1   .  .  1  .  .  1  1  .  .  .  .
      c2   .  .  1  .  .  1  1  1  .  .  .
      C3   .  .  1  .  .  1  1  1  1  .  .
       x   .  .  1  .  .  1  .  .  1  1  .
       y   .  .  1  .  .  1  .  .  1  1  1`);
    expect(expected.size).toBe(names.length);
    expectRows(ccmVisible(layout), names, expected);
  });

  it('reproduces the merge matrix of ccm.md section 6 in every printed cell', () => {
    const layout = ccmTrainingLayout({ chunkLengths: [2, 2, 2], n: 1, mode: 'merge', inputLength: 2 });
    const names = 'a1 a2 C1 S1 b1 b2 C2 S2 c1 c2 C3 S3 x y'.split(' ');
    const expected = parseMatrix(`
      C1   1  1  1  .  .  .  .  .  .  .  .  .  .  .
      S1   1  1  1  1  .  .  .  .  .  .  .  .  .  .
      b1   .  .  .  1  1  .  .  .  .  .  .  .  .  .
      C2   .  .  .  1  1  1  1  .  .  .  .  .  .  .
      S2   .  .  .  1  1  1  1  1  .  .  .  .  .  .
      c1   .  .  .  .  .  .  .  1  1  .  .  .  .  .
      C3   .  .  .  .  .  .  .  1  1  1  1  .  .  .
       x   .  .  .  .  .  .  .  .  .  .  .  1  1  .`);
    expectRows(ccmVisible(layout), names, expected);
    // the rows the spec leaves out follow the same rule: own block, causal, plus the previous SUM group
    expectRows(
      ccmVisible(layout),
      names,
      parseMatrix(`
      a2   1  1  .  .  .  .  .  .  .  .  .  .  .  .
      b2   .  .  .  1  1  1  .  .  .  .  .  .  .  .
      c2   .  .  .  .  .  .  .  1  1  1  .  .  .  .
      S3   .  .  .  .  .  .  .  1  1  1  1  1  .  .
       y   .  .  .  .  .  .  .  .  .  .  .  1  1  1`),
    );
  });

  it('keeps BOS visible to every row only for sink adapters; separators open the next block', () => {
    const layout = ccmTrainingLayout({
      chunkLengths: [1, 1],
      n: 1,
      mode: 'concat',
      inputLength: 1,
      bos: true,
      sepLength: 1,
    });
    const names = 'B a C1 s b C2 s2 x'.split(' ');
    expect(layout.kinds.join(' ')).toBe('bos text comp sep text comp sep input');
    expectRows(
      ccmVisible(layout),
      names,
      parseMatrix(`
      C1  1  1  1  .  .  .  .  .
      s   .  .  1  1  .  .  .  .
      C2  .  .  1  1  1  1  .  .
      x   .  .  1  .  .  1  1  1`),
    );
    expectRows(
      ccmVisible(layout, { sink: true }),
      names,
      parseMatrix(`
      C1  1  1  1  .  .  .  .  .
      s   1  .  1  1  .  .  .  .
      C2  1  .  1  1  1  1  .  .
      x   1  .  1  .  .  1  1  1`),
    );
  });
});

describe('packMask', () => {
  it('sets bit j % 32 of word j / 32 of row t exactly where t may attend to j', () => {
    const r = rng(3);
    const queries = 5;
    const keys = 70; // three words per row, the last partial
    const cells = Array.from({ length: queries * keys }, () => r() < 0.5);
    cells[31] = true; // bit 31 of a word (sign bit of an i32)
    const words = packMask(queries, keys, (t, j) => cells[t * keys + j]!);
    expect(words).toHaveLength(queries * 3);
    for (let t = 0; t < queries; t++) {
      for (let j = 0; j < 96; j++) {
        const bit = (words[t * 3 + Math.floor(j / 32)]! >>> (j % 32)) & 1;
        expect(bit, `row ${t} key ${j}`).toBe(j < keys && cells[t * keys + j] ? 1 : 0);
      }
    }
  });

  it('is the format the attention kernel reference reads: a packed causal mask changes nothing', () => {
    const [queries, keys, heads, kvHeads, headDim] = [6, 40, 4, 2, 8];
    const args = {
      q: randomArray(queries * heads * headDim, 1),
      k: randomArray(keys * kvHeads * headDim, 2),
      v: randomArray(keys * kvHeads * headDim, 3),
      queries,
      keys,
      heads,
      kvHeads,
      headDim,
    };
    const past = keys - queries;
    const mask = packMask(queries, keys, (t, j) => j <= past + t);
    expect(attentionRef({ ...args, mask })).toEqual(attentionRef(args));
  });
});

describe('sentinel masks', () => {
  // a b CL s1 s2 s3 CR c d CL t1 t2 CR e: text indices 0..9, spans [2, 5) and [7, 9)
  const layout = sentinelLayout(10, [
    [2, 5],
    [7, 9],
  ]);
  const names = 'a b L s1 s2 s3 R c d L2 t1 t2 R2 e'.split(' ');

  it('lays out the worked example with its exact positions', () => {
    expect(layout.kinds.join(' ')).toBe('text text open span span span close text text open span span close text');
    expect(layout.positions).toEqual([0, 1, 1, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9]);
    expect(layout.text).toEqual([0, 1, -1, 2, 3, 4, -1, 5, 6, -1, 7, 8, -1, 9]);
    expect(layout.span).toEqual([-1, -1, 0, 0, 0, 0, 0, -1, -1, 1, 1, 1, 1, -1]);
  });

  it('follows the four visibility rules of sentinel.md section 3 in every cell', () => {
    const expected = parseMatrix(`
      a   1 . . . . . . . . . . . . .
      b   1 1 . . . . . . . . . . . .
      L   . . 1 . . . . . . . . . . .
      s1  1 1 . 1 . . . . . . . . . .
      s2  1 1 . 1 1 . . . . . . . . .
      s3  1 1 . 1 1 1 . . . . . . . .
      R   . . 1 1 1 1 1 . . . . . . .
      c   1 1 . . . . 1 1 . . . . . .
      d   1 1 . . . . 1 1 1 . . . . .
      L2  . . . . . . . . . 1 . . . .
      t1  1 1 . . . . 1 1 1 . 1 . . .
      t2  1 1 . . . . 1 1 1 . 1 1 . .
      R2  . . . . . . . . . 1 1 1 1 .
      e   1 1 . . . . 1 1 1 . . . 1 1`);
    expect(expected.size).toBe(names.length);
    expectRows(sentinelVisible(layout), names, expected);
  });

  it('redirects labels past sentinels and ignores sentinel rows', () => {
    const ids = sentinelIds(layout, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19], 100, 101);
    expect(ids).toEqual([10, 11, 100, 12, 13, 14, 101, 15, 16, 100, 17, 18, 101, 19]);
    const X = IGNORE_LABEL;
    // b predicts s1 (not CL); s3 predicts c (not CR); the last token predicts nothing
    expect(sentinelLabels(ids, layout.kinds)).toEqual([11, 12, X, 13, 14, 15, X, 16, 17, X, 18, 19, X, X]);
  });

  it('handles a span at the start and adjacent spans', () => {
    const l = sentinelLayout(4, [
      [0, 2],
      [2, 4],
    ]);
    expect(l.kinds.join(' ')).toBe('open span span close open span span close');
    expect(l.positions).toEqual([0, 0, 1, 1, 1, 2, 3, 3]);
    expect(sentinelLabels([100, 5, 6, 101, 100, 7, 8, 101], l.kinds)).toEqual([
      IGNORE_LABEL,
      6,
      7,
      IGNORE_LABEL,
      IGNORE_LABEL,
      8,
      IGNORE_LABEL,
      IGNORE_LABEL,
    ]);
    // the second span's tokens see the first span only through its CR
    const v = sentinelVisible(l);
    expect([0, 1, 2, 3, 4, 5, 6].map((k) => v(6, k))).toEqual([false, false, false, true, false, true, true]);
  });

  it('refuses empty, overlapping, unordered or out-of-range spans and mismatched ids', () => {
    expect(errorCode(() => sentinelLayout(5, [[2, 2]]))).toBe('INVALID_INPUT');
    expect(
      errorCode(() =>
        sentinelLayout(5, [
          [0, 3],
          [2, 4],
        ]),
      ),
    ).toBe('INVALID_INPUT');
    expect(
      errorCode(() =>
        sentinelLayout(5, [
          [3, 4],
          [0, 2],
        ]),
      ),
    ).toBe('INVALID_INPUT');
    expect(errorCode(() => sentinelLayout(5, [[3, 6]]))).toBe('INVALID_INPUT');
    expect(errorCode(() => sentinelIds(layout, [1, 2, 3], 100, 101))).toBe('INVALID_INPUT');
    expect(errorCode(() => sentinelLabels([1, 2], layout.kinds))).toBe('INVALID_INPUT');
  });
});
