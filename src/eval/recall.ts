// One recall record on a session: the history replayed as finished turns (each ended as the memory
// policy ends it), then the question: the answer's negative log-likelihood under teacher forcing, the
// memory at that moment, and the greedy reply checked for the answer.
import { Chat } from '../engine/chat.js';
import type { MemoryStats, Session } from '../engine/session.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { answerInReply } from './answer.js';
import type { EvalRecord } from './records.js';

export interface RecallOptions {
  /** Ask the question alone (the `none` baseline). */
  dropHistory: boolean;
  maxNewTokens: number;
}

export interface RecallResult {
  /** History turns before the question. */
  turns: number;
  /**
   * Turns from the last user message that holds the answer (whole word) to the question: 1 when it was
   * the last history turn. Undefined when no user message holds it.
   */
  factDistance: number | undefined;
  correct: boolean;
  reply: string;
  /** Mean negative log-likelihood (nats per token) of the answer's tokens as the reply to the question. */
  answerNll: number;
  answerTokens: number;
  /** The session's memory once the question is read, before the reply. */
  memory: MemoryStats;
}

/** Evaluates `record` on `session`, which is reset first (its model, cache and memory policy are reused). */
export async function evaluateRecall(
  session: Session,
  tokenizer: TextTokenizer,
  record: EvalRecord,
  o: RecallOptions,
): Promise<RecallResult> {
  session.reset();
  const chat = new Chat(session, tokenizer);
  if (!o.dropHistory) for (const turn of record.history) await chat.append(turn.user, turn.assistant);
  const { prompt, reply: answerIds } = chat.turnIds(record.question, record.answer);
  // scoring feeds the answer: the memory before the question is restored for the reply
  const before = await session.exportMemory();
  const { nll, memory } = await scoreReply(session, prompt, answerIds);
  await session.importMemory(before);
  const stream = chat.send(record.question, { maxNewTokens: o.maxNewTokens, temperature: 0 });
  let step = await stream.next();
  while (!step.done) step = await stream.next();
  const reply = step.value.text;
  const factTurn = record.history.findLastIndex((t) => answerInReply(t.user, record.answer));
  return {
    turns: record.history.length,
    factDistance: factTurn < 0 ? undefined : record.history.length - factTurn,
    correct: answerInReply(reply, record.answer),
    reply,
    answerNll: nll / answerIds.length,
    answerTokens: answerIds.length,
    memory,
  };
}

/**
 * Total negative log-likelihood of `reply` after `prompt` (teacher forcing: one token fed per step, as
 * generation feeds them, so every policy's eviction and compression rules apply unchanged) and the
 * memory stats once the prompt is read.
 */
async function scoreReply(
  session: Session,
  prompt: readonly number[],
  reply: readonly number[],
): Promise<{ nll: number; memory: MemoryStats }> {
  let [logits] = await session.logits(prompt);
  const memory = session.stats();
  let nll = 0;
  for (let j = 0; j < reply.length; j++) {
    if (j > 0) [logits] = await session.logits([...session.cachedIds, reply[j - 1]!]);
    nll -= logProbability(logits!, reply[j]!);
  }
  return { nll, memory };
}

/** log softmax(logits)[id], in f64. */
export function logProbability(logits: Float32Array, id: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return logits[id]! - max - Math.log(sum);
}
