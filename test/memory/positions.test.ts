// The CCM position rule and training layout against the worked examples of ccm.md sections 4 and 6,
// and the online positions against the layout on random shapes (the two are written independently).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ccmOnlinePositions, ccmTrainingLayout } from '../../src/memory/positions.js';
import { errorCode } from '../helpers/checks.js';

describe('ccmOnlinePositions', () => {
  it('reproduces the section 4 example: a1 a2 Ca Cb b1 Da Db x -> 0 1 2 3 2 3 4 3', () => {
    const p = ccmOnlinePositions([2, 1], 2, 1);
    expect(p).toEqual({
      steps: [
        { chunk: [0, 1], comp: [2, 3] },
        { chunk: [2], comp: [3, 4] },
      ],
      input: [3],
    });
    expect([...p.steps.flatMap((s) => [...s.chunk, ...s.comp]), ...p.input]).toEqual([0, 1, 2, 3, 2, 3, 4, 3]);
  });

  it('fails clearly when a position reaches max_position_embeddings', () => {
    expect(() => ccmOnlinePositions([2, 1], 2, 1, 5)).not.toThrow(); // largest position: Db at 4
    expect(errorCode(() => ccmOnlinePositions([2, 1], 2, 1, 4))).toBe('INVALID_INPUT');
    expect(errorCode(() => ccmOnlinePositions([2, 1], 2, 3, 5))).toBe('INVALID_INPUT'); // input 3 4 5
  });

  it('refuses malformed shapes', () => {
    expect(errorCode(() => ccmOnlinePositions([2], 0, 1))).toBe('INVALID_INPUT');
    expect(errorCode(() => ccmOnlinePositions([2, -1], 1, 1))).toBe('INVALID_INPUT');
    expect(errorCode(() => ccmOnlinePositions([2], 1, 1.5))).toBe('INVALID_INPUT');
  });
});

describe('ccmTrainingLayout', () => {
  it('reproduces the section 6 concat example (n = 1, three chunks of 2, input x y)', () => {
    const l = ccmTrainingLayout({ chunkLengths: [2, 2, 2], n: 1, mode: 'concat', inputLength: 2 });
    expect(l.positions).toEqual([0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7]);
    expect(l.kinds.join(' ')).toBe('text text comp text text comp text text comp input input');
    expect(l.chunk).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3]);
    expect(l.comp).toEqual([-1, -1, 0, -1, -1, 0, -1, -1, 0, -1, -1]);
    expect(l.sumGroups).toEqual([]);
  });

  it('reproduces the section 6 merge example, SUM groups = running means of the COMP rows', () => {
    const l = ccmTrainingLayout({ chunkLengths: [2, 2, 2], n: 1, mode: 'merge', inputLength: 2 });
    expect(l.positions).toEqual([0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6, 6, 6, 7]);
    expect(l.kinds.join(' ')).toBe('text text comp sum text text comp sum text text comp sum input input');
    expect(l.chunk).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
    // S1 = C1, S2 = mean(C1, C2), S3 = mean(C1, C2, C3)
    expect(l.sumGroups).toEqual([
      { sum: [3], comps: [[2]] },
      { sum: [7], comps: [[2, 6]] },
      { sum: [11], comps: [[2, 6, 10]] },
    ]);
  });

  it('places BOS in block 0 and separators at the start of the following block, all counted as text', () => {
    const l = ccmTrainingLayout({ chunkLengths: [1, 2], n: 2, mode: 'merge', inputLength: 1, bos: true, sepLength: 1 });
    expect(l.kinds.join(' ')).toBe('bos text comp comp sum sum sep text text comp comp sum sum sep input');
    expect(l.positions).toEqual([0, 1, 2, 3, 2, 3, 2, 3, 4, 5, 6, 5, 6, 5, 6]);
    expect(l.chunk).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
    expect(l.comp).toEqual([-1, -1, 0, 1, 0, 1, -1, -1, -1, 0, 1, 0, 1, -1, -1]);
    expect(l.sumGroups).toEqual([
      { sum: [4, 5], comps: [[2], [3]] },
      {
        sum: [11, 12],
        comps: [
          [2, 9],
          [3, 10],
        ],
      },
    ]);
  });

  it('agrees with the online positions when BOS and separators are read as part of the chunks', () => {
    const shape = fc.record({
      chunkLengths: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 5 }),
      n: fc.integer({ min: 1, max: 4 }),
      mode: fc.constantFrom('concat' as const, 'merge' as const),
      inputLength: fc.integer({ min: 0, max: 4 }),
      bos: fc.boolean(),
      sepLength: fc.integer({ min: 0, max: 2 }),
    });
    fc.assert(
      fc.property(shape, (o) => {
        const l = ccmTrainingLayout(o);
        const T = o.chunkLengths.length;
        // the recurrent chunks: BOS joins c(1), the separator before c(t) joins c(t), the last one joins I
        const chunks = o.chunkLengths.map((len, t) => len + (t === 0 ? Number(o.bos) : o.sepLength));
        const input = o.inputLength + (T > 0 ? o.sepLength : Number(o.bos));
        const online = ccmOnlinePositions(chunks, o.n, input);
        const rowsOf = (t: number, kinds: string[]) =>
          l.positions.filter((_, r) => l.chunk[r] === t && kinds.includes(l.kinds[r]!));
        online.steps.forEach((s, t) => {
          expect(rowsOf(t, ['bos', 'sep', 'text'])).toEqual(s.chunk);
          expect(rowsOf(t, ['comp'])).toEqual(s.comp);
          if (o.mode === 'merge') expect(rowsOf(t, ['sum'])).toEqual(s.comp);
        });
        expect(rowsOf(T, ['bos', 'sep', 'input'])).toEqual(online.input);
        expect(l.kinds.length).toBe(chunks.reduce((a, b) => a + b, 0) + input + T * o.n * (o.mode === 'merge' ? 2 : 1));
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  it('refuses malformed shapes', () => {
    const base = { chunkLengths: [2], n: 1, mode: 'concat' as const, inputLength: 1 };
    expect(errorCode(() => ccmTrainingLayout({ ...base, n: 0 }))).toBe('INVALID_INPUT');
    expect(errorCode(() => ccmTrainingLayout({ ...base, chunkLengths: [-2] }))).toBe('INVALID_INPUT');
    expect(errorCode(() => ccmTrainingLayout({ ...base, sepLength: 0.5 }))).toBe('INVALID_INPUT');
  });
});
