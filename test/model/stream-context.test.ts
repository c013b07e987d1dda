// The streaming detokenizer decodes generated ids in the context of their prompt: what it emits equals
// decode(prompt + generated) minus decode(prompt), on a SentencePiece vocabulary (stories260K, whose
// decoder strips the first piece's space) and a byte-level BPE one (SmolLM2, characters split across
// byte tokens), never showing part of a character.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { convertLlama2c } from '../../src/model/llama2c.js';
import { memorySource } from '../../src/model/source.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { FIXTURES } from '../helpers/stories.js';

const smol = await TextTokenizer.load(
  memorySource({
    'tokenizer.json': readFileSync(`${FIXTURES}/smollm2-135m/tokenizer.json`, 'utf8'),
    'tokenizer_config.json': JSON.stringify({ bos_token: '<|im_start|>', eos_token: '<|im_end|>' }),
  }),
);
const stories = await TextTokenizer.load(
  memorySource(
    convertLlama2c(
      readFileSync(`${FIXTURES}/stories260K/stories260K.bin`),
      readFileSync(`${FIXTURES}/stories260K/tok512.bin`),
    ),
  ),
);

/** Every piece the decoder emits for `ids` after `context`, push by push, then the flush. */
function streamed(tok: TextTokenizer, context: number[], ids: number[], skipSpecialTokens = true): string[] {
  const s = tok.streamDecoder({ skipSpecialTokens, context });
  return [...ids.map((id) => s.push(id)), s.flush()];
}

/** decode(context + ids) minus decode(context): the text `ids` add after their context. */
function inContext(tok: TextTokenizer, context: number[], ids: number[], skipSpecialTokens = true): string {
  const before = tok.decode(context, { skipSpecialTokens });
  const all = tok.decode([...context, ...ids], { skipSpecialTokens });
  expect(all.startsWith(before)).toBe(true);
  return all.slice(before.length);
}

const hasLoneSurrogate = (s: string) =>
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

describe('streamDecoder with a context (SentencePiece, stories260K)', () => {
  const prompt = stories.encode('The cat'); // BOS, " The", " cat"
  const reply = stories.encode('and a boy went', { addSpecialTokens: false }); // " and", " a", ...

  it('keeps the space before the first generated token', () => {
    expect(stories.decode([reply[0]!])).toBe('and'); // decoded alone, the first piece loses its space
    const parts = streamed(stories, prompt, reply);
    expect(parts[0]).toBe(' and');
    expect(parts.join('')).toBe(' and a boy went');
    expect(parts.join('')).toBe(inContext(stories, prompt, reply));
  });

  it('decodes after a prompt that is only BOS as one decode() of the whole does (no leading space)', () => {
    const ids = stories.encode('Once upon a time', { addSpecialTokens: false });
    expect(streamed(stories, [1], ids).join('')).toBe('Once upon a time');
    expect(streamed(stories, [1], ids, false).join('')).toBe(' Once upon a time'); // after "<s>"
  });

  it('finds text before trailing special tokens and ignores ids beyond the vocabulary', () => {
    const ids = stories.encode('and then', { addSpecialTokens: false });
    // BOS and EOS are skipped: the context's text is "... cat", so " and" keeps its space
    expect(streamed(stories, [...prompt, 2, 1, 2], ids).join('')).toBe(' and then');
    // a padded embedding's id 600 has no text: the context after it is empty
    expect(streamed(stories, [...prompt, 600], ids).join('')).toBe('and then');
    expect(streamed(stories, [...prompt, 600, 265], ids).join('')).toBe(' and then'); // " the" after it
  });

  it('holds a byte-fallback character split across tokens, in context', () => {
    const ids = stories.encode('日', { addSpecialTokens: false }).slice(1); // E6 97 A5 (no dummy space)
    expect(streamed(stories, prompt, [...ids, 265])).toEqual(['', '', '日', ' the', '']);
  });
});

describe('streamDecoder with a context (byte-level BPE, SmolLM2)', () => {
  it('splits "é" and an emoji across byte tokens and emits each character whole', () => {
    const prompt = smol.encode('<|im_start|>assistant\nIl était');
    const reply = smol.encode(' une fée 🙂!', { addSpecialTokens: false });
    const parts = streamed(smol, prompt, reply);
    expect(parts.join('')).toBe(' une fée 🙂!');
    expect(parts.join('')).toBe(inContext(smol, prompt, reply));
    expect(parts.some(hasLoneSurrogate)).toBe(false);
    expect(parts.some((p) => p.includes('\uFFFD'))).toBe(false);
    // the emoji's four bytes come as more than one token: all but the last emit nothing
    const emoji = smol.encode('🙂', { addSpecialTokens: false });
    expect(emoji.length).toBeGreaterThan(1);
    expect(streamed(smol, prompt, emoji)).toEqual([...emoji.slice(0, -1).map(() => ''), '🙂', '']);
  });

  it('completes a character whose first bytes end the context', () => {
    const bytes = smol.encode('🙂', { addSpecialTokens: false });
    const prompt = [...smol.encode('smile '), ...bytes.slice(0, 1)];
    expect(smol.decode(prompt).endsWith('\uFFFD')).toBe(true);
    expect(streamed(smol, prompt, [...bytes.slice(1), ...smol.encode('!')]).join('')).toBe('🙂!');
  });
});

describe('streamDecoder: any split of any text', () => {
  const TEXTS = [
    'Hello world',
    'naïve café, “quotes” …',
    '日本語 and 中文',
    'emoji 🙂👍🏽 🇫🇷',
    ' a  b ',
    '\n\tx = 1\n',
  ];
  const text = fc.array(
    fc.oneof(
      fc.constantFrom(...TEXTS),
      fc.string({ unit: 'grapheme', maxLength: 5 }),
      fc.constantFrom('é', '日', '🙂', ' ', '<|im_start|>', '<|im_end|>'),
    ),
    { minLength: 1, maxLength: 8 },
  );

  it('emits decode(all) minus decode(context), only whole characters', () => {
    fc.assert(
      fc.property(text, fc.nat(), fc.boolean(), (parts, at, skip) => {
        for (const tok of [smol, stories]) {
          const ids = tok.encode(parts.join(''));
          const split = at % (ids.length + 1);
          const context = ids.slice(0, split);
          const out = streamed(tok, context, ids.slice(split), skip);
          const all = tok.decode(ids, { skipSpecialTokens: skip });
          const before = tok.decode(context, { skipSpecialTokens: skip });
          // split inside a character: the context decodes it as U+FFFD, the stream emits it whole
          const known = all.startsWith(before) ? before : before.replace(/\uFFFD+$/, '');
          expect(known + out.join('')).toBe(all);
          expect(out.some(hasLoneSurrogate)).toBe(false);
          if (!all.includes('\uFFFD')) expect(out.some((p) => p.includes('\uFFFD'))).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });
});
