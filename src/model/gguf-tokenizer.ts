// The tokenizer of a GGUF file, rebuilt from its tokenizer.ggml.* metadata as the tokenizer.json and
// tokenizer_config.json that TextTokenizer consumes: 'llama' (SentencePiece: pieces with "▁", scores,
// byte fallback; as BPE whose merges rank a merged piece by its score, the way Hugging Face converts
// Llama tokenizers) and 'gpt2' (byte-level BPE with its merges, the pre-tokenizer named by
// tokenizer.ggml.pre). Control tokens become special added tokens, user-defined ones plain added tokens;
// the chat template is tokenizer.chat_template.
import { modelFormat, unsupportedModel } from '../errors.js';
import type { GgufValue } from './gguf-read.js';
import { mergesFromScores, TextTokenizer } from './tokenizer.js';

/** llama.cpp's token types (enum llama_token_type). */
const TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
/** Pre-tokenizers of the tokenizer.ggml.pre names whose splitting equals a Hugging Face pre-tokenizer here. */
const PRE_TOKENIZERS: Record<string, unknown> = {
  default: BYTE_LEVEL,
  gpt2: BYTE_LEVEL,
  'gpt-2': BYTE_LEVEL,
  // digits one by one, then GPT-2's regex (llama.cpp's LLAMA_VOCAB_PRE_TYPE_SMOLLM)
  smollm: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, BYTE_LEVEL] },
};

type Meta = Map<string, GgufValue>;

/** The file's tokenizer, or undefined when it has none (no tokenizer.ggml.tokens, or model "none"). */
export function ggufTokenizer(meta: Meta, where: string): TextTokenizer | undefined {
  const model = meta.get('tokenizer.ggml.model');
  const tokens = meta.get('tokenizer.ggml.tokens');
  if (model === undefined || model === 'none' || model === 'no_vocab' || tokens === undefined) return undefined;
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) {
    throw modelFormat(`${where}: tokenizer.ggml.tokens must be a list of strings`);
  }
  const pieces = tokens as string[];
  const types = numbers(meta, 'tokenizer.ggml.token_type', pieces.length, where) ?? pieces.map(() => TYPE.NORMAL);
  const id = (key: string) => {
    const v = meta.get(`tokenizer.ggml.${key}`);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= pieces.length) {
      throw modelFormat(`${where}: tokenizer.ggml.${key} ${JSON.stringify(v)} is not a token id`);
    }
    return v;
  };
  const flag = (key: string, fallback: boolean) => {
    const v = meta.get(`tokenizer.ggml.${key}`);
    return typeof v === 'boolean' ? v : fallback;
  };
  const vocab: Record<string, number> = {};
  pieces.forEach((p, i) => {
    if (Object.hasOwn(vocab, p))
      throw modelFormat(`${where}: token ${i} ${JSON.stringify(p)} repeats token ${vocab[p]}`);
    vocab[p] = i;
  });
  const spm = model === 'llama';
  if (!spm && model !== 'gpt2') {
    throw unsupportedModel(`${where}: tokenizer.ggml.model "${String(model)}" is not supported (llama, gpt2)`);
  }
  const bos = id('bos_token_id');
  const eos = id('eos_token_id');
  const unk = id('unknown_token_id') ?? (spm ? types.indexOf(TYPE.UNKNOWN) : -1);
  const addedTokens = pieces.flatMap((content, i) =>
    types[i] === TYPE.CONTROL || types[i] === TYPE.USER_DEFINED || i === bos || i === eos || i === unk
      ? [
          {
            id: i,
            content,
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: types[i] !== TYPE.USER_DEFINED,
          },
        ]
      : [],
  );
  const addSpacePrefix = spm && flag('add_space_prefix', true);
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    ...(spm ? spmParts(meta, pieces, types, vocab, unk, addSpacePrefix, where) : bpeParts(meta, vocab, where)),
    post_processor: null, // BOS and EOS come from add_bos_token / add_eos_token below
  };
  const text = (i: number | undefined) => (i === undefined || i < 0 ? undefined : pieces[i]);
  const config = {
    bos_token: text(bos),
    eos_token: text(eos),
    unk_token: text(unk),
    pad_token: text(id('padding_token_id')),
    // llama.cpp's defaults: SentencePiece vocabularies add BOS, byte-level BPE ones do not
    add_bos_token: flag('add_bos_token', spm),
    add_eos_token: flag('add_eos_token', false),
    clean_up_tokenization_spaces: false,
  };
  const template = meta.get('tokenizer.chat_template');
  return TextTokenizer.create(json, config, typeof template === 'string' ? template : undefined, where);
}

function numbers(meta: Meta, key: string, length: number, where: string): number[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === 'number')) {
    throw modelFormat(`${where}: ${key} must be ${length} numbers, one per token`);
  }
  return v as number[];
}

function bpeParts(meta: Meta, vocab: Record<string, number>, where: string) {
  const pre = meta.get('tokenizer.ggml.pre') ?? 'default';
  const preTokenizer = typeof pre === 'string' ? PRE_TOKENIZERS[pre] : undefined;
  if (!preTokenizer) {
    throw unsupportedModel(
      `${where}: tokenizer.ggml.pre "${String(pre)}" is not supported (${Object.keys(PRE_TOKENIZERS).join(', ')})`,
    );
  }
  const merges = meta.get('tokenizer.ggml.merges');
  if (!Array.isArray(merges) || !merges.every((m) => typeof m === 'string' && m.split(' ').length === 2)) {
    throw modelFormat(`${where}: tokenizer.ggml.merges must be a list of "left right" strings`);
  }
  return {
    normalizer: null,
    pre_tokenizer: preTokenizer,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges as string[],
    },
  };
}

/**
 * SentencePiece as BPE: one merge per way of splitting a normal piece into two normal pieces, ranked by the
 * merged piece's score (ties keep the leftmost split first); unknown characters fall back to byte pieces.
 */
function spmParts(
  meta: Meta,
  pieces: string[],
  types: number[],
  vocab: Record<string, number>,
  unk: number,
  addSpacePrefix: boolean,
  where: string,
) {
  const scores = numbers(meta, 'tokenizer.ggml.scores', pieces.length, where);
  if (!scores) throw modelFormat(`${where}: a SentencePiece vocabulary needs tokenizer.ggml.scores`);
  const mergeable = (i: number | undefined): i is number =>
    i !== undefined && (types[i] === TYPE.NORMAL || types[i] === TYPE.USER_DEFINED);
  const merges = mergesFromScores(pieces, vocab, scores, mergeable);
  const replaceSpace = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  const decoders: unknown[] = [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
  ];
  if (addSpacePrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  return {
    normalizer: addSpacePrefix
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replaceSpace] }
      : replaceSpace,
    pre_tokenizer: null,
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk >= 0 ? pieces[unk] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
