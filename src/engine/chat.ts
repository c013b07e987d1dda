// A chat over a Session: each user turn is rendered with the model's chat template (or a plain
// "User: / Assistant:" format for base models), only the text that the cache does not hold yet is
// tokenized and fed, and with a ccm policy each finished turn (query + reply) is compressed into memory.
// A turn can also be appended with its reply given (a transcript replayed, e.g. by `ccmem eval-memory`).
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

/** A user turn about to be fed: the ids for the session and the rendered text they bring it to. */
interface Turn {
  text: string;
  /** The conversation rendered up to the generation prompt of this turn. */
  full: string;
  /** The session's cached ids (plus a carried pending id) and this turn's ids. */
  prompt: number[];
  /** The given reply's ids (append). */
  reply: number[];
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
    const turn = this.openTurn(text, '');
    const stream = this.session.generate(turn.prompt, options);
    let step = await stream.next();
    while (!step.done) {
      yield step.value;
      step = await stream.next();
    }
    const result = step.value;
    // a reply cut by the token limit keeps its last token (not yet fed); a final EOS is never fed
    // (ccm.md section 5), nor a stop string (the session dropped it)
    await this.closeTurn(turn, result.text, result.finishReason === 'length');
    this.last = result;
    return result;
  }

  /**
   * Adds a finished turn whose reply is given instead of generated (e.g. a transcript to replay): the
   * user turn and `reply` are fed as if the model had generated the reply and then ended it with EOS
   * (never fed), and the turn is ended as send ends it (compressed under ccm, spans under sentinel).
   */
  async append(text: string, reply: string): Promise<void> {
    const turn = this.openTurn(text, reply);
    await this.session.feed([...turn.prompt.slice(this.session.cachedIds.length), ...turn.reply]);
    await this.closeTurn(turn, reply, false);
    this.last = undefined;
  }

  /**
   * The ids send(text) would give the session (its cached ids included) and the ids append(text, reply)
   * would feed after them for `reply`. Changes nothing: e.g. for scoring a reply under teacher forcing.
   */
  turnIds(text: string, reply = ''): { prompt: number[]; reply: number[] } {
    const { prompt, reply: replyIds } = this.openTurn(text, reply);
    return { prompt, reply: replyIds };
  }

  /**
   * Renders the conversation plus the user turn `text` and tokenizes what the cache does not hold yet.
   * The reply's ids are those of the rendered turn and reply tokenized together, after the turn's own
   * (tokens that straddle the boundary, which a chat template's markers normally prevent, fall back to
   * the reply tokenized alone).
   */
  private openTurn(text: string, reply: string): Turn {
    if (!text) throw invalidInput('the message is empty');
    const full = this.render([...this.messages, { role: 'user', content: text }], true);
    if (!full.startsWith(this.rendered)) {
      throw invalidInput('the chat template does not render turns incrementally; use the full policy');
    }
    const delta = full.slice(this.rendered.length);
    const addSpecialTokens = this.rendered === '';
    const turnIds = this.tokenizer.encode(delta, { addSpecialTokens });
    let replyIds: number[] = [];
    if (reply) {
      const joint = this.tokenizer.encode(delta + reply, { addSpecialTokens });
      const clean = turnIds.every((id, i) => joint[i] === id);
      replyIds = clean ? joint.slice(turnIds.length) : this.tokenizer.encode(reply, { addSpecialTokens: false });
    }
    // the previous reply's last token is still unfed when it was cut short (not an EOS)
    const pending = this.session.pendingId;
    const carry = pending !== undefined && this.last?.finishReason === 'length' ? [pending] : [];
    return { text, full, prompt: [...this.session.cachedIds, ...carry, ...turnIds], reply: replyIds };
  }

  /** Ends the turn in the session and records it (query and reply) in the transcript. */
  private async closeTurn(turn: Turn, reply: string, feedPending: boolean): Promise<void> {
    await this.session.endTurn({ feedPending });
    this.messages.push({ role: 'user', content: turn.text }, { role: 'assistant', content: reply });
    this.rendered = turn.full + reply;
  }

  private render(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    return this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt, fallbackTemplate: PLAIN_CHAT_TEMPLATE });
  }
}
