// A chat over a Session: each user turn is rendered with the model's chat template (or a plain
// "User: / Assistant:" format for base models), only the text that the cache does not hold yet is
// tokenized and fed, and with a ccm policy each finished turn (query + reply) is compressed into memory.
import { invalidInput } from '../errors.js';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer.js';
import type { GenerateOptions, GenerationResult, Session, TokenEvent } from './session.js';

/** For models without a chat template (e.g. stories260K): prefix-stable, so turns render incrementally. */
export const PLAIN_CHAT_TEMPLATE =
  "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n" +
  "{% elif m.role == 'user' %}User: {{ m.content }}\n{% else %}Assistant:{{ m.content }}\n{% endif %}{% endfor %}" +
  '{% if add_generation_prompt %}Assistant:{% endif %}';

export interface ChatState {
  messages: ChatMessage[];
  /** The text the session's cache and memory represent, as rendered. */
  rendered: string;
  last: GenerationResult | undefined;
}

export interface ChatOptions {
  system?: string;
}

export class Chat {
  private readonly messages: ChatMessage[] = [];
  /** The text the session's cache (and memory) represents, as rendered. */
  private rendered = '';
  private last: GenerationResult | undefined;

  constructor(
    readonly session: Session,
    private readonly tokenizer: TextTokenizer,
    options: ChatOptions = {},
  ) {
    if (options.system) this.messages.push({ role: 'system', content: options.system });
  }

  get history(): readonly ChatMessage[] {
    return this.messages;
  }

  lastResult(): GenerationResult | undefined {
    return this.last;
  }

  /** The transcript state that renders the next turn (saved beside the session's memory export). */
  state(): ChatState {
    return { messages: this.messages.map((m) => ({ ...m })), rendered: this.rendered, last: this.last };
  }

  /** Restores state() output, after the session's memory was imported. */
  restore(s: ChatState): void {
    this.messages.splice(0, this.messages.length, ...s.messages.map((m) => ({ ...m })));
    this.rendered = s.rendered;
    this.last = s.last;
  }

  /** Streams the reply to `text`; the turn is then compressed into memory when the policy is a ccm one. */
  async *send(text: string, options: GenerateOptions = {}): AsyncGenerator<TokenEvent, GenerationResult> {
    if (!text) throw invalidInput('the message is empty');
    const next: ChatMessage[] = [...this.messages, { role: 'user', content: text }];
    const full = this.render(next, true);
    if (!full.startsWith(this.rendered)) {
      throw invalidInput('the chat template does not render turns incrementally; use the full policy');
    }
    const first = this.rendered === '';
    const turnIds = this.tokenizer.encode(full.slice(this.rendered.length), { addSpecialTokens: first });
    // the previous reply's last token is still unfed when it was cut short (not an EOS)
    const pending = this.session.pendingId;
    const carry = pending !== undefined && this.last?.finishReason === 'length' ? [pending] : [];
    const stream = this.session.generate([...this.session.cachedIds, ...carry, ...turnIds], options);
    let step = await stream.next();
    while (!step.done) {
      yield step.value;
      step = await stream.next();
    }
    const result = step.value;
    // a reply cut by the token limit keeps its last token (not yet fed); a final EOS is never fed
    // (ccm.md section 5), nor a stop string (the session dropped it)
    await this.session.endTurn({ feedPending: result.finishReason === 'length' });
    this.messages.push({ role: 'user', content: text }, { role: 'assistant', content: result.text });
    this.rendered = full + result.text;
    this.last = result;
    return result;
  }

  private render(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    return this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt, fallbackTemplate: PLAIN_CHAT_TEMPLATE });
  }
}
