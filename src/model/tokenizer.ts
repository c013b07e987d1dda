// Text <-> token ids over @huggingface/tokenizers (tokenizer.json), chat templates (tokenizer_config.json,
// optional, or chat_template.jinja; rendered by template.ts), and a streaming detokenizer for generation.

import { Tokenizer } from '@huggingface/tokenizers';
import { invalidInput, isCcmemError, modelFormat } from '../errors.js';
import type { FileSource } from './source.js';
import { ChatTemplate } from './template.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

type Json = Record<string, unknown>;

const ROLES = new Set(['system', 'user', 'assistant']);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A special token in tokenizer_config.json: a string or a serialized AddedToken {content}. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

/** tokenizer_config.json's chat_template: a string, or a list of named templates (the "default" one). */
function chatTemplateOf(config: Json): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x) => isObject(x) && x.name === 'default') as Json | undefined;
    return typeof named?.template === 'string' ? named.template : undefined;
  }
  return undefined;
}

export class TextTokenizer {
  private readonly bos: number | undefined;
  private readonly eos: number[];
  private readonly size: number;
  private readonly cleanUpSpaces: boolean;

  private constructor(
    private readonly tok: Tokenizer,
    private readonly config: Json,
    private readonly template: ChatTemplate | undefined,
  ) {
    const id = (v: unknown) => {
      const text = tokenText(v);
      return text === undefined ? undefined : tok.token_to_id(text);
    };
    this.bos = id(config.bos_token);
    const eos = id(config.eos_token);
    this.eos = eos === undefined ? [] : [eos];
    this.size = tok.model?.vocab.length ?? 0;
    // transformers now defaults to false; cleanup (" ." -> ".") would also alter generated text
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
  }

  static async load(src: FileSource): Promise<TextTokenizer> {
    const json = await src.json('tokenizer.json');
    const config = (await src.exists('tokenizer_config.json')) ? await src.json('tokenizer_config.json') : {};
    if (!isObject(config)) throw modelFormat(`${src.id}/tokenizer_config.json: expected a JSON object`);
    const jinja =
      chatTemplateOf(config) === undefined && (await src.exists('chat_template.jinja'))
        ? await src.text('chat_template.jinja')
        : undefined;
    return TextTokenizer.create(json, config, jinja, src.id);
  }

  /**
   * Builds a tokenizer from already-parsed files; `where` names them in errors. The chat template is
   * config.chat_template, else `chatTemplate` (the text of a chat_template.jinja file).
   */
  static create(tokenizerJson: unknown, config: Json = {}, chatTemplate?: string, where = 'tokenizer'): TextTokenizer {
    chatTemplate = chatTemplateOf(config) ?? chatTemplate;
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson as object, config);
    } catch (e) {
      throw modelFormat(`${where}/tokenizer.json: not a usable tokenizer (${(e as Error).message})`);
    }
    let template: ChatTemplate | undefined;
    if (chatTemplate !== undefined) {
      try {
        template = new ChatTemplate(chatTemplate);
      } catch (e) {
        throw modelFormat(`${where}: the chat template does not parse (${(e as Error).message})`);
      }
    }
    return new TextTokenizer(tok, config, template);
  }

  /** The tokenizer_config.json bos_token, if any. */
  get bosTokenId(): number | undefined {
    return this.bos;
  }

  /** The tokenizer_config.json eos_token, if any (the model config may name more end tokens). */
  get eosTokenIds(): number[] {
    return [...this.eos];
  }

  /** Highest token id + 1, added tokens included. */
  get vocabSize(): number {
    return this.size;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const addSpecial = options.addSpecialTokens ?? true;
    const { add_bos_token: addBos, add_eos_token: addEos } = this.config;
    // Llama-style configs say explicitly whether BOS/EOS are added; they override tokenizer.json's post-processor.
    if (typeof addBos !== 'boolean' && typeof addEos !== 'boolean') {
      return this.tok.encode(text, { add_special_tokens: addSpecial }).ids;
    }
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    if (addSpecial && addBos === true && this.bosTokenId !== undefined) ids.unshift(this.bosTokenId);
    if (addSpecial && addEos === true && this.eos[0] !== undefined) ids.push(this.eos[0]);
    return ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    for (const id of ids) this.checkId(id);
    if (ids.length === 0) return '';
    return this.tok.decode(ids as number[], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  /**
   * Renders `messages`; `fallbackTemplate` (jinja) is used when the tokenizer has no template of its own.
   * Rendering is bounded (template.ts, RENDER_LIMITS): a runaway template throws TEMPLATE_LIMIT.
   */
  applyChatTemplate(
    messages: ChatMessage[],
    options: { addGenerationPrompt?: boolean; fallbackTemplate?: string } = {},
  ): string {
    const template =
      this.template ??
      (options.fallbackTemplate === undefined ? undefined : new ChatTemplate(options.fallbackTemplate));
    if (!template) throw invalidInput('this tokenizer has no chat template');
    for (const m of messages) {
      if (!ROLES.has(m.role) || typeof m.content !== 'string') {
        throw invalidInput(`invalid chat message ${JSON.stringify(m)}: role must be system, user or assistant`);
      }
    }
    const c = this.config;
    try {
      return template.render({
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        bos_token: tokenText(c.bos_token) ?? '',
        eos_token: tokenText(c.eos_token) ?? '',
        unk_token: tokenText(c.unk_token) ?? '',
        pad_token: tokenText(c.pad_token) ?? '',
      });
    } catch (e) {
      if (isCcmemError(e, 'TEMPLATE_LIMIT')) throw e;
      throw invalidInput(`the chat template rejected the messages: ${(e as Error).message}`);
    }
  }

  /**
   * Streaming detokenizer for ids that follow `context` (e.g. generated ids after their prompt): what it
   * emits, push by push and then the flush, adds up to decode(context + ids) minus decode(context), the
   * ids decoded in context. (Decoded alone, a first generated SentencePiece "▁a" would lose its space.)
   * Each step decodes a short window, a tail of what came before plus the new ids, and emits what the new
   * ids add; text ending in U+FFFD (an incomplete UTF-8 sequence) is held back until completed or flushed.
   */
  streamDecoder(options: { skipSpecialTokens?: boolean; context?: readonly number[] } = {}): {
    push(id: number): string;
    flush(): string;
  } {
    const context = options.context ?? [];
    // ids beyond the tokenizer's vocabulary (a model may pad its embedding) have no text: context ends there
    const usable = context.slice(context.findLastIndex((id) => !this.inVocabulary(id)) + 1);
    const decode = (ids: readonly number[]) => this.decode(ids, { skipSpecialTokens: options.skipSpecialTokens });
    let window = textTail(usable, decode);
    let emittedCount = window.length; // window[0, emittedCount) is already emitted (or context)
    const step = (final: boolean): string => {
      const before = decode(window.slice(0, emittedCount));
      const now = decode(window);
      const known = commonPrefixLength(before, now);
      if (known === now.length || (!final && now.endsWith('\uFFFD'))) return '';
      window = textTail(window, decode);
      emittedCount = window.length;
      return now.slice(known);
    };
    return {
      push: (id) => {
        this.checkId(id);
        window.push(id);
        return step(false);
      },
      flush: () => step(true),
    };
  }

  private inVocabulary(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize;
  }

  private checkId(id: number): void {
    if (!this.inVocabulary(id)) {
      throw invalidInput(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }
}

/**
 * The shortest tail of `ids` (trying 1, 2, 4, ... ids) after which decoding goes on as after all of them,
 * or all of them: its text is not empty, since a decoder strips the space of the first piece it decodes
 * (SentencePiece, WordPiece) and skipped special tokens decode to nothing, and does not start with U+FFFD,
 * the sign of a tail that starts inside a multi-byte character (which later ids could be completing).
 */
function textTail(ids: readonly number[], decode: (ids: readonly number[]) => string): number[] {
  for (let n = 1; n < ids.length; n *= 2) {
    const text = decode(ids.slice(-n));
    if (text !== '' && !text.startsWith('\uFFFD')) return ids.slice(-n);
  }
  return [...ids];
}

/**
 * Where `a` and `b` first differ. The text before new ids is normally a prefix of the text with them; it
 * is not when the earlier ids end in an incomplete character that the new ids complete.
 */
function commonPrefixLength(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * A SentencePiece vocabulary's merges for a Hugging Face BPE model: one rule per way of splitting a
 * mergeable piece into two mergeable pieces, ranked by the merged piece's score (highest first; the sort
 * is stable, so the splits of one piece stay leftmost-first).
 */
export function mergesFromScores(
  pieces: readonly string[],
  vocab: Readonly<Record<string, number>>,
  scores: ArrayLike<number>,
  mergeable: (id: number | undefined) => id is number,
): [string, string][] {
  const merges: { pair: [string, string]; score: number }[] = [];
  pieces.forEach((piece, id) => {
    if (!mergeable(id)) return;
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      if (mergeable(vocab[left]) && mergeable(vocab[right])) merges.push({ pair: [left, right], score: scores[id]! });
    }
  });
  merges.sort((a, b) => b.score - a.score);
  return merges.map((m) => m.pair);
}
