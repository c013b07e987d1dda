// Tokenizers rebuilt from GGUF metadata (src/model/gguf-tokenizer.ts) against the tokenizers they were
// written from: SmolLM2-135M's real byte-level BPE (tokenizer.json, as convert_hf_to_gguf writes it:
// tokens by id, merges, added tokens as control tokens, pre "smollm") and stories260K's SentencePiece
// vocabulary (tok512.bin with "▁" pieces and scores, against the llama2.c encoder's tokenizer.json):
// the same ids for every text, the same text back; bos/eos ids, the chat template, and typed errors.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeGguf, type GgufOptions, ggufMetadata, type MetaValue } from '../../src/model/gguf.js';
import { readGgufFile } from '../../src/model/gguf-read.js';
import { ggufTokenizer } from '../../src/model/gguf-tokenizer.js';
import { convertLlama2c, parseLlama2cTokenizer } from '../../src/model/llama2c.js';
import { memorySource } from '../../src/model/source.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { failureOf } from '../helpers/checks.js';
import { randomModel } from '../helpers/randomModel.js';

const FIXTURES = resolve('../shared/fixtures');
const TEXTS = [
  'Once upon a time, there was a little girl named Lily.',
  'The year 2024 had 366 days.',
  '  leading and trailing spaces  ',
  'naïve café, Ünïcödé — “quotes” …',
  '日本語のテキスト and 中文 🙂👍🏽',
  'def f(x):\n\treturn x ** 2  # comment\n',
  '',
];

/** The metadata of a GGUF file with these tokenizer options (no tensors), as the reader returns it. */
async function ggufMeta(
  vocabSize: number,
  options: Parameters<typeof ggufMetadata>[1],
  edit: (m: [string, MetaValue][]) => [string, MetaValue][] = (m) => m,
) {
  const config = {
    ...randomModel({ hidden: 8, layers: 1, heads: 2, kvHeads: 1, intermediate: 8, vocab: 4, seed: 1 }).config,
    vocabSize,
  };
  const bytes = encodeGguf(edit(ggufMetadata(config, options)), []);
  return (await readGgufFile(memorySource({ 'm.gguf': bytes }), 'm.gguf')).meta;
}

function expectSameTokenizer(got: TextTokenizer, want: TextTokenizer, texts: string[]) {
  for (const text of texts) {
    const ids = want.encode(text);
    expect(got.encode(text), text).toEqual(ids);
    expect(got.encode(text, { addSpecialTokens: false }), text).toEqual(want.encode(text, { addSpecialTokens: false }));
    expect(got.decode(ids), text).toEqual(want.decode(ids));
  }
}

describe('GGUF tokenizer: gpt2 byte-level BPE (SmolLM2-135M)', async () => {
  const json = JSON.parse(readFileSync(`${FIXTURES}/smollm2-135m/tokenizer.json`, 'utf8'));
  const vocab = json.model.vocab as Record<string, number>;
  const tokens: string[] = [];
  for (const [piece, id] of Object.entries(vocab)) tokens[id] = piece;
  const special = new Set(
    (json.added_tokens as { id: number; special: boolean }[]).filter((t) => t.special).map((t) => t.id),
  );
  const template = '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}';
  const meta = await ggufMeta(
    tokens.length,
    {
      dtype: 'f32',
      tokenizerModel: 'gpt2',
      tokens,
      merges: json.model.merges,
      pre: 'smollm',
      bosId: 1,
      eosId: 2,
      chatTemplate: template,
    },
    (m) =>
      m.map(([k, v]) => [
        k,
        k === 'tokenizer.ggml.token_type' ? { array: 'i32', value: tokens.map((_, i) => (special.has(i) ? 3 : 1)) } : v,
      ]),
  );
  const got = ggufTokenizer(meta, 'smol.gguf')!;
  const want = TextTokenizer.create(json, { bos_token: '<|im_start|>', eos_token: '<|im_end|>' });

  it('encodes and decodes as the original tokenizer.json', () => {
    expectSameTokenizer(got, want, [...TEXTS, 'special <|im_start|>user\nhi<|im_end|> tokens']);
    expect(got.encode('x')).toEqual(want.encode('x', { addSpecialTokens: false })); // gpt2: no BOS by default
  });

  it('bos/eos ids and the chat template', () => {
    expect([got.bosTokenId, got.eosTokenIds, got.vocabSize]).toEqual([1, [2], 49152]);
    expect(got.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('<|im_start|>user\nhi<|im_end|>\n');
  });
});

describe('GGUF tokenizer: llama SentencePiece (stories260K)', async () => {
  const tok = readFileSync(`${FIXTURES}/stories260K/tok512.bin`);
  const { pieces, scores } = parseLlama2cTokenizer(tok, 512);
  // llama2.c stores "▁" as a plain space; a GGUF SentencePiece vocabulary keeps "▁"
  const tokens = pieces.map((p, i) => (i < 3 ? ['<unk>', '<s>', '</s>'][i]! : p.replaceAll(' ', '▁')));
  const meta = await ggufMeta(512, { dtype: 'f32', tokens, scores, bosId: 1, eosId: 2 });
  const got = ggufTokenizer(meta, 'stories.gguf')!;
  const files = convertLlama2c(readFileSync(`${FIXTURES}/stories260K/stories260K.bin`), tok);
  const want = await TextTokenizer.load(memorySource(files));

  it('encodes and decodes as the llama2.c encoder (BOS first, byte fallback)', () => {
    expectSameTokenizer(got, want, TEXTS);
    expect(got.encode('Once')[0]).toBe(1);
  });

  it('bos/eos ids; no chat template', () => {
    expect([got.bosTokenId, got.eosTokenIds, got.hasChatTemplate()]).toEqual([1, [2], false]);
  });

  it('typed errors: no scores, unknown models and pre-tokenizers, repeated pieces', async () => {
    const without = (key: string) => (m: [string, MetaValue][]) => m.filter(([k]) => k !== key);
    const noScores = await ggufMeta(512, { dtype: 'f32', tokens, scores }, without('tokenizer.ggml.scores'));
    expect(await failureOf((async () => ggufTokenizer(noScores, 'x'))())).toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringMatching(/needs tokenizer.ggml.scores/),
    });
    const set = (key: string, value: MetaValue) => (m: [string, MetaValue][]) =>
      m.map(([k, v]): [string, MetaValue] => [k, k === key ? value : v]);
    const bert = await ggufMeta(
      512,
      { dtype: 'f32', tokens, scores },
      set('tokenizer.ggml.model', { type: 'string', value: 'bert' }),
    );
    expect(await failureOf((async () => ggufTokenizer(bert, 'x'))())).toMatchObject({
      code: 'UNSUPPORTED_MODEL',
      message: expect.stringMatching(/"bert"/),
    });
    const repeated = await ggufMeta(512, {
      dtype: 'f32',
      tokens: tokens.map((t, i) => (i === 300 ? tokens[299]! : t)),
      scores,
    });
    expect(await failureOf((async () => ggufTokenizer(repeated, 'x'))())).toMatchObject({
      message: expect.stringMatching(/repeats token 299/),
    });
    const bpe = { dtype: 'f32', tokenizerModel: 'gpt2', tokens, merges: ['a b'], pre: 'tekken' } satisfies GgufOptions;
    expect(await failureOf((async () => ggufTokenizer(await ggufMeta(512, bpe), 'x'))())).toMatchObject({
      code: 'UNSUPPORTED_MODEL',
      message: expect.stringMatching(/tokenizer.ggml.pre "tekken"/),
    });
    expect(ggufTokenizer(await ggufMeta(512, { dtype: 'f32' }, without('tokenizer.ggml.tokens')), 'x')).toBeUndefined();
  });
});
