// Text <-> token ids over @huggingface/tokenizers (tokenizer.json) and chat templates over @huggingface/jinja
// (tokenizer_config.json, optional, or chat_template.jinja), plus a streaming detokenizer for generation.

import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { invalidInput, modelFormat } from '../errors.js';
import type { FileSource } from './source.js';

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
    private readonly template: Template | undefined,
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
    let template: Template | undefined;
    if (chatTemplate !== undefined) {
      try {
        template = new Template(chatTemplate);
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

  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    for (const id of ids) this.checkId(id);
    if (ids.length === 0) return '';
    return this.tok.decode(ids, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  /** Renders `messages`; `fallbackTemplate` (jinja) is used when the tokenizer has no template of its own. */
  applyChatTemplate(
    messages: ChatMessage[],
    options: { addGenerationPrompt?: boolean; fallbackTemplate?: string } = {},
  ): string {
    const template =
      this.template ?? (options.fallbackTemplate === undefined ? undefined : new Template(options.fallbackTemplate));
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
      throw invalidInput(`the chat template rejected the messages: ${(e as Error).message}`);
    }
  }

  /**
   * Streaming detokenizer. Decodes a short window of recent ids and emits what it adds beyond the window's
   * already-emitted part, so leading-space stripping and byte-fallback sequences come out as in one decode();
   * text ending in U+FFFD (an incomplete UTF-8 sequence) is held back until completed or flushed.
   */
  streamDecoder(options: { skipSpecialTokens?: boolean } = {}): { push(id: number): string; flush(): string } {
    let window: number[] = [];
    let emittedCount = 0; // window[0, emittedCount) is already emitted, kept as decoding context
    const step = (final: boolean): string => {
      const before = this.decode(window.slice(0, emittedCount), options);
      const now = this.decode(window, options);
      if (now.length <= before.length || (!final && now.endsWith('\uFFFD'))) return '';
      window = window.slice(emittedCount);
      emittedCount = window.length;
      return now.slice(before.length);
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

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw invalidInput(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }
}
