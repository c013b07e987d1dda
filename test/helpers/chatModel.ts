// A random chat model folder for Chat and eval tests: a byte-level BPE tokenizer over printable ASCII
// and newline (no merges, so any generated run of text tokens is its own canonical encoding), ChatML
// special tokens and a ChatML chat template, as the project's trained chat model has; the weights come
// from randomModel (written with writeModelDir), except that greedy decoding never picks BOS or <|im_start|>.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../../src/model/types.js';
import { randomModel, writeModelDir } from './randomModel.js';

export const CHAT_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;
export const BOS_ID = 0;
export const EOS_ID = 2;

export const CHATML_TEMPLATE =
  '{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}' +
  '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

/** GPT-2's bytes_to_unicode: the character a byte-level BPE vocabulary uses for byte `b`. */
function byteChar(b: number): string {
  const printable = (x: number) => (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
  if (printable(b)) return String.fromCharCode(b);
  let shifted = 0;
  for (let x = 0; x < b; x++) if (!printable(x)) shifted++;
  return String.fromCharCode(256 + shifted);
}

/** Newline and the 95 printable ASCII bytes, after the three special tokens. */
const TEXT_BYTES = [10, ...Array.from({ length: 95 }, (_, i) => 32 + i)];
export const CHAT_VOCAB = CHAT_SPECIALS.length + TEXT_BYTES.length;

export function chatTokenizerFiles(): { tokenizer: unknown; config: Record<string, unknown> } {
  const vocab: Record<string, number> = {};
  CHAT_SPECIALS.forEach((s, id) => {
    vocab[s] = id;
  });
  TEXT_BYTES.forEach((b, i) => {
    vocab[byteChar(b)] = CHAT_SPECIALS.length + i;
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: CHAT_SPECIALS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
  const config = { bos_token: CHAT_SPECIALS[BOS_ID], eos_token: CHAT_SPECIALS[EOS_ID], chat_template: CHATML_TEMPLATE };
  return { tokenizer, config };
}

/** Writes a random ChatML model (config, weights, tokenizer) into `dir`; returns its config. */
export function writeChatModelDir(dir: string, o: { seed: number; maxPositions?: number }): ModelConfig {
  const ref = randomModel({
    hidden: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 48,
    vocab: CHAT_VOCAB,
    seed: o.seed,
    maxPositions: o.maxPositions ?? 512,
  });
  ref.config.bosTokenId = BOS_ID;
  ref.config.eosTokenIds = [EOS_ID];
  // zero LM-head rows: BOS and <|im_start|> get logit 0, below the best of ~100 random logits, so greedy
  // replies are plain text (or end with <|im_end|>) and re-tokenize to the ids generated
  const head = ref.tensors.get('lm_head.weight')!;
  for (const id of [BOS_ID, 1]) head.fill(0, id * ref.config.hiddenSize, (id + 1) * ref.config.hiddenSize);
  writeModelDir(dir, ref, 'F32');
  const { tokenizer, config } = chatTokenizerFiles();
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return ref.config;
}
