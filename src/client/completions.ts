// An OpenAI-style facade: engine.chat.completions.create({ messages, stream, ... }). The worker keeps one
// facade conversation: a request whose messages extend it (the previous messages, the reply it gave,
// then a new user message) continues it and reuses its cache; any other request rebuilds it.
import type { FinishReason, GenerationResult } from '../engine/session.js';
import { invalidInput } from '../errors.js';
import { type CompletionInput, FACADE_CHAT, type SendOptions } from '../worker/protocol.js';
import type { Connection } from './connection.js';
import type { DevtoolsPublisher } from './devtools.js';
import { streamDeltas } from './stream.js';

export interface ChatCompletionMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatCompletionRequest {
  /** The conversation; the last message must be a user message. */
  messages: ChatCompletionMessage[];
  stream?: boolean | null;
  max_tokens?: number | null;
  /** Default 1, as OpenAI's (0: greedy). */
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  /** Ignored: the engine serves the model it loaded. */
  model?: string;
}

export type CompletionFinishReason = 'stop' | 'length';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string };
    finish_reason: CompletionFinishReason;
  }[];
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    /** cached_tokens: prompt tokens whose cache was reused from the previous request. */
    prompt_tokens_details: { cached_tokens: number };
  };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string };
    finish_reason: CompletionFinishReason | null;
  }[];
}

export interface CompletionLink {
  link(): Promise<Connection>;
  readonly modelId: string;
  readonly devtools: DevtoolsPublisher | undefined;
}

export class Completions {
  constructor(private readonly engine: CompletionLink) {}

  /**
   * Streaming: an async iterable of chunks (a first one with the role, then one per text piece, then one
   * with the finish reason). Otherwise one completion with usage. `signal` stops the reply (ABORTED).
   */
  create(
    body: ChatCompletionRequest & { stream: true },
    options?: { signal?: AbortSignal },
  ): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(
    body: ChatCompletionRequest & { stream?: false | null },
    options?: { signal?: AbortSignal },
  ): Promise<ChatCompletion>;
  create(
    body: ChatCompletionRequest,
    options?: { signal?: AbortSignal },
  ): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  async create(
    body: ChatCompletionRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const input: CompletionInput = { messages: body.messages, options: sendOptions(body) };
    const deltas = streamDeltas(
      async (onDelta) => {
        const conn = await this.engine.link();
        const result = await conn.call((r) => r.complete(input, body.stream ? onDelta : undefined));
        await this.publish(conn, result);
        return result;
      },
      () =>
        void this.engine
          .link()
          .then((c) => c.call((r) => r.abort(FACADE_CHAT)))
          .catch(() => undefined),
      options.signal,
    );
    const meta = { id: `chatcmpl-${randomId()}`, created: Math.floor(Date.now() / 1000), model: this.engine.modelId };
    if (body.stream) return chunks(deltas, meta);
    let step = await deltas.next();
    while (!step.done) step = await deltas.next();
    return completion(step.value, meta);
  }

  /** The facade's conversation on the devtools hook; a request that rebuilds it goes back to an earlier turn. */
  private async publish(conn: Connection, result: GenerationResult): Promise<void> {
    const { devtools } = this.engine;
    if (!devtools) return;
    try {
      devtools.publish(`${devtools.id}.completions`, await conn.call((r) => r.memory(FACADE_CHAT)), {
        speed: result.usage,
      });
    } catch {
      // a worker that died just now: nothing to show
    }
  }
}

type Meta = Pick<ChatCompletion, 'id' | 'created' | 'model'>;

function sendOptions(b: ChatCompletionRequest): SendOptions {
  if (!b || !Array.isArray(b.messages)) throw invalidInput('create() needs { messages: [...] }');
  const stop = b.stop ?? undefined;
  return {
    maxNewTokens: b.max_tokens ?? undefined,
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? undefined,
    seed: b.seed ?? undefined,
    stop: typeof stop === 'string' ? [stop] : stop,
  };
}

const finish = (r: FinishReason): CompletionFinishReason => (r === 'length' ? 'length' : 'stop');

async function* chunks(
  deltas: AsyncGenerator<string, GenerationResult>,
  meta: Meta,
): AsyncGenerator<ChatCompletionChunk> {
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], reason: CompletionFinishReason | null) => ({
    ...meta,
    object: 'chat.completion.chunk' as const,
    choices: [{ index: 0, delta, finish_reason: reason }],
  });
  let done = false;
  try {
    yield chunk({ role: 'assistant', content: '' }, null);
    let step = await deltas.next();
    for (; !step.done; step = await deltas.next()) yield chunk({ content: step.value }, null);
    done = true;
    yield chunk({}, finish(step.value.finishReason));
  } finally {
    if (!done) await deltas.return(undefined as never); // a consumer that stops early stops the reply
  }
}

function completion(r: GenerationResult, meta: Meta): ChatCompletion {
  const u = r.usage;
  return {
    ...meta,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: finish(r.finishReason) }],
    usage: {
      prompt_tokens: u.promptTokens,
      completion_tokens: u.completionTokens,
      total_tokens: u.promptTokens + u.completionTokens,
      prompt_tokens_details: { cached_tokens: u.reusedTokens },
    },
  };
}

const randomId = () => Math.random().toString(36).slice(2, 14);
