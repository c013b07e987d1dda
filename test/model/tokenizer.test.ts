import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { convertLlama2c } from '../../src/model/llama2c.js';
import { memorySource, openSource } from '../../src/model/source.js';
import { type ChatMessage, TextTokenizer } from '../../src/model/tokenizer.js';
import { typedError } from '../helpers/checks.js';

const FIXTURES = resolve('../shared/fixtures');
const smolJson = readFileSync(`${FIXTURES}/smollm2-135m/tokenizer.json`, 'utf8');
// SmolLM2-135M-Instruct's ChatML template, as published in its tokenizer_config.json
const CHATML =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const smolConfig = { bos_token: '<|im_start|>', eos_token: { content: '<|im_end|>' }, chat_template: CHATML };

const smol = await TextTokenizer.load(
  memorySource({ 'tokenizer.json': smolJson, 'tokenizer_config.json': JSON.stringify(smolConfig) }, 'smol'),
);
const stories = await TextTokenizer.load(
  memorySource(
    convertLlama2c(
      readFileSync(`${FIXTURES}/stories260K/stories260K.bin`),
      readFileSync(`${FIXTURES}/stories260K/tok512.bin`),
    ),
  ),
);

const TEXTS = [
  'Hello world',
  'The year 2024 had 366 days.',
  '  leading and trailing spaces  ',
  'naïve café, Ünïcödé — “quotes” …',
  '日本語のテキスト and 中文',
  'emoji 🙂👍🏽 flags 🇫🇷',
  'def f(x):\n\treturn x ** 2  # comment\n',
  '',
];

/** Everything a stream decoder emits for `ids`, push by push, then the flush. */
function streamed(tok: TextTokenizer, ids: number[], skipSpecialTokens = false): string[] {
  const s = tok.streamDecoder({ skipSpecialTokens });
  return [...ids.map((id) => s.push(id)), s.flush()];
}

describe('TextTokenizer on the real SmolLM2 tokenizer', () => {
  it('round-trips text through encode and decode', () => {
    for (const text of TEXTS) expect(smol.decode(smol.encode(text)), JSON.stringify(text)).toBe(text);
    expect(smol.vocabSize).toBe(49152);
  });

  it('splits words byte-level style and digits one by one', () => {
    const ids = smol.encode('Hello world');
    expect(ids).toHaveLength(2);
    expect(smol.decode([ids[1]!])).toBe(' world');
    expect(smol.encode('12345')).toHaveLength(5);
  });

  it('recognises special tokens and skips them on request', () => {
    expect(smol.bosTokenId).toBe(1);
    expect(smol.eosTokenIds).toEqual([2]);
    const ids = smol.encode('<|im_start|>user\nHi<|im_end|>');
    expect(ids[0]).toBe(1);
    expect(ids.at(-1)).toBe(2);
    expect(smol.decode(ids)).toBe('<|im_start|>user\nHi<|im_end|>');
    expect(smol.decode(ids, { skipSpecialTokens: true })).toBe('user\nHi');
  });

  it('renders the ChatML template with and without the generation prompt', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'Thanks!' },
    ];
    expect(smol.hasChatTemplate()).toBe(true);
    const system =
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n';
    const body =
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n';
    expect(smol.applyChatTemplate(messages)).toBe(system + body);
    const prompt = smol.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, messages[0]!], {
      addGenerationPrompt: true,
    });
    expect(prompt).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(smol.encode(prompt).filter((id) => id === 1)).toHaveLength(3);
  });

  it('follows add_bos_token / add_eos_token from tokenizer_config.json', () => {
    const cfg = { ...smolConfig, add_bos_token: true, add_eos_token: true };
    const tok = TextTokenizer.create(JSON.parse(smolJson), cfg);
    const plain = smol.encode('Hi there');
    expect(tok.encode('Hi there')).toEqual([1, ...plain, 2]);
    expect(tok.encode('Hi there', { addSpecialTokens: false })).toEqual(plain);
  });

  it('has no chat template or special ids without tokenizer_config.json', async () => {
    const bare = await TextTokenizer.load(openSource(`${FIXTURES}/smollm2-135m`));
    expect(bare.hasChatTemplate()).toBe(false);
    expect(bare.bosTokenId).toBeUndefined();
    expect(bare.eosTokenIds).toEqual([]);
    expect((await typedError(() => bare.applyChatTemplate([{ role: 'user', content: 'x' }]))).code).toBe(
      'INVALID_INPUT',
    );
  });

  it('reads chat_template.jinja and reports template errors', async () => {
    const viaFile = await TextTokenizer.load(
      memorySource({ 'tokenizer.json': smolJson, 'chat_template.jinja': '{{ messages[0].content }}!' }),
    );
    expect(viaFile.applyChatTemplate([{ role: 'user', content: 'hey' }])).toBe('hey!');
    const strict = TextTokenizer.create(JSON.parse(smolJson), {
      chat_template:
        "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}ok",
    });
    const e = await typedError(() => strict.applyChatTemplate([{ role: 'assistant', content: 'x' }]));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/first message must be from the user/);
    const broken = await typedError(() =>
      TextTokenizer.create(JSON.parse(smolJson), { chat_template: '{% for x in %}' }),
    );
    expect(broken.code).toBe('MODEL_FORMAT');
    const badRole = await typedError(() =>
      smol.applyChatTemplate([{ role: 'tool', content: 'x' } as unknown as ChatMessage]),
    );
    expect(badRole.code).toBe('INVALID_INPUT');
  });

  it('rejects ids outside the vocabulary and unusable files', async () => {
    expect((await typedError(() => smol.decode([5, 49152]))).message).toMatch(
      /token id 49152 is outside the vocabulary/,
    );
    expect((await typedError(() => smol.streamDecoder().push(-1))).code).toBe('INVALID_INPUT');
    expect(smol.decode([])).toBe('');
    const missing = await typedError(() => TextTokenizer.load(memorySource({}, 'nothing')));
    expect(missing.message).toMatch(/nothing: missing file tokenizer.json/);
    const unusable = await typedError(() =>
      TextTokenizer.load(memorySource({ 'tokenizer.json': '{"model": {}}' }, 'odd')),
    );
    expect(unusable.code).toBe('MODEL_FORMAT');
    expect(unusable.message).toMatch(/odd\/tokenizer.json/);
  });
});

describe('streamDecoder', () => {
  it('holds back a multi-byte character split across byte-fallback tokens', () => {
    const ids = stories.encode('日', { addSpecialTokens: false }); // not in the 512-token vocab: 3 byte tokens
    expect(ids).toEqual([410, 0xe6 + 3, 0x97 + 3, 0xa5 + 3]); // dummy space, then E6 97 A5
    expect(streamed(stories, [1, 265, ...ids.slice(1), 265], true)).toEqual(['', 'the', '', '', '日', ' the', '']);
  });

  it('flushes an incomplete sequence as U+FFFD, like decode()', () => {
    const ids = [1, 265, 0xe6 + 3, 0x97 + 3];
    expect(streamed(stories, ids, true)).toEqual(['', 'the', '', '', '\uFFFD']);
    expect(stories.decode(ids, { skipSpecialTokens: true })).toBe('the\uFFFD');
  });

  it('strips the leading space once, as one decode() does', () => {
    expect(streamed(stories, [1, 403, 407, 261, 378], true)).toEqual(['', 'Once', ' upon', ' a', ' time', '']);
    expect(streamed(stories, [1, 403], false)).toEqual(['<s>', ' Once', '']);
  });

  it('holds back byte-level pieces of an emoji (SmolLM2)', () => {
    const ids = smol.encode('🙂');
    expect(ids.length).toBeGreaterThan(1);
    const parts = streamed(smol, ids);
    expect(parts.slice(0, -2).every((p) => p === '')).toBe(true);
    expect(parts.join('')).toBe('🙂');
  });

  it('emits exactly decode(all ids), never a partial character, on random text', () => {
    const text = fc.array(
      fc.oneof(
        fc.constantFrom(...TEXTS),
        fc.string({ unit: 'grapheme', maxLength: 6 }),
        fc.constantFrom('é', '日本', '🙂', ' ', '\n'),
      ),
      { maxLength: 8 },
    );
    fc.assert(
      fc.property(text, fc.boolean(), (parts, skip) => {
        for (const tok of [smol, stories]) {
          const ids = tok.encode(parts.join(''));
          const out = streamed(tok, ids, skip);
          expect(out.join('')).toBe(tok.decode(ids, { skipSpecialTokens: skip }));
          if (!parts.join('').includes('\uFFFD')) expect(out.some((p) => p.includes('\uFFFD'))).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });
});
