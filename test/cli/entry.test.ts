// The CLI wrapper's stderr filter: Dawn's two limit notices (printed by native code on every GPU command,
// issue 11 item 11) are dropped wherever the pipe splits them; everything else passes unchanged and at once.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DawnNoticeFilter } from '../../src/cli/entry.js';

const NOTICES = ['Uniform', 'Storage'].map(
  (kind) =>
    `Warning: maxDynamic${kind}BuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n`,
);

/** The filter's output for `text` delivered in pieces cut at `cuts`. */
function filtered(text: string, cuts: number[]): string {
  const filter = new DawnNoticeFilter();
  let out = '';
  let at = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    out += filter.push(text.slice(at, cut));
    at = cut;
  }
  return out + filter.push(text.slice(at)) + filter.end();
}

describe('DawnNoticeFilter', () => {
  it('drops the notices as Dawn prints them and keeps the rest', () => {
    const text = `${NOTICES[0]}${NOTICES[1]}ccmem: error [FETCH]: nope\n`;
    expect(filtered(text, [])).toBe('ccmem: error [FETCH]: nope\n');
    expect(filtered(`${NOTICES[0]!.replace('1000000', '500000')}`, [])).toBe('');
  });

  it('any text with notices inserted, split anywhere, comes out as the text alone', () => {
    const piece = fc.oneof(
      fc.string({ unit: fc.constantFrom('a', 'W', ':', ' ', '\n', '\r', 'é', 'Warning: ', 'maxDynamic') }),
      fc.constantFrom('Warning: maxDynamicStorage is not a notice\n', '\r[####] 40%', 'Warning: max'),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(piece, fc.option(fc.constantFrom(...NOTICES), { nil: undefined }))),
        fc.array(fc.nat({ max: 400 })),
        (parts, cuts) => {
          // a notice always starts a line, as Dawn prints it
          const plain = parts.map(([p]) => p);
          const text = parts
            .map(([p, n], i) =>
              n && (i === 0 || plain.slice(0, i).join('').endsWith('\n') || p.endsWith('\n')) ? p + n : p,
            )
            .join('');
          const want = text.replaceAll(NOTICES[0]!, '').replaceAll(NOTICES[1]!, '');
          expect(
            filtered(
              text,
              cuts.filter((c) => c <= text.length),
            ),
          ).toBe(want);
        },
      ),
    );
  });

  it('passes a progress line on at once, and holds only what may still become a notice', () => {
    const f = new DawnNoticeFilter();
    expect(f.push('\rdownloading model.safetensors [##......]  10%')).toBe(
      '\rdownloading model.safetensors [##......]  10%',
    );
    expect(f.push('line\nWarn')).toBe('line\n');
    expect(f.push('ing: maxDynamicUniform')).toBe('');
    expect(
      f.push('BuffersPerPipelineLayout artificially reduced from 8 to 4 to fit dynamic offset allocation limit.\nok'),
    ).toBe('ok');
    expect(f.push('\nWarning: something else\n')).toBe('\nWarning: something else\n');
    expect(f.push('Warning: maxDynamic')).toBe('');
    expect(f.end()).toBe('Warning: maxDynamic');
  });
});
