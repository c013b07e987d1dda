// `ccmem eval-memory`: recall accuracy and memory size of a context-memory policy over JSONL records
// (train/data.py's chats: facts stated, small talk, then a question about one fact). One session, reset
// between records; progress on stderr, the result on stdout.
import { Session } from '../engine/session.js';
import { invalidInput } from '../errors.js';
import { evaluateRecall, type RecallResult } from '../eval/recall.js';
import { parseRecords } from '../eval/records.js';
import { POLICY_NAMES } from '../memory/policy.js';
import { parseNumber, required } from './args.js';
import type { CliValues } from './command.js';
import { readTextFile } from './files.js';
import { setup } from './memory.js';

/** The memory policies, plus `none`: the question without its history (full policy, nothing to keep). */
const EVAL_POLICIES = [...POLICY_NAMES, 'none'] as const;

/** Default reply length: enough for a sentence that states the answer. */
const DEFAULT_MAX_NEW_TOKENS = 32;

export interface EvalSummary {
  policy: string;
  n: number;
  accuracy: number;
  /** Cache slots (sink + memory + working) once the question is read, before the reply. */
  meanKvSlots: number;
  meanKvBytes: number;
  /** What a full-context cache would hold for the same tokens at that moment. */
  meanFullContextBytes: number;
  /** Mean over records of the answer's per-token negative log-likelihood (nats) as the reply. */
  meanAnswerNll: number;
  seconds: number;
}

export async function evalMemoryCommand(values: CliValues): Promise<void> {
  const policy = required(values.memory, '--memory');
  if (!(EVAL_POLICIES as readonly string[]).includes(policy)) {
    throw invalidInput(`--memory must be one of ${EVAL_POLICIES.join(', ')}`);
  }
  const file = required(values.data, '--data');
  const records = parseRecords(await readTextFile(file, '--data'), file);
  const maxNewTokens = parseNumber(values['max-new-tokens'], '--max-new-tokens', true) ?? DEFAULT_MAX_NEW_TOKENS;
  if (maxNewTokens < 1) throw invalidInput(`--max-new-tokens must be at least 1, got ${maxNewTokens}`);
  const capacity = parseNumber(values.capacity, '--capacity', true);
  if ((policy.startsWith('ccm') || policy === 'sentinel') && !values.adapter) {
    throw invalidInput(`--memory ${policy} needs --adapter DIR (an adapter trained for it)`);
  }
  const dropHistory = policy === 'none';
  const { gpu, model, adapter, memory } = await setup({ ...values, memory: dropHistory ? 'full' : policy });
  const tokenizer = model.tokenizer;
  if (!tokenizer) throw invalidInput(`${model.id} has no tokenizer.json: eval-memory needs one`);
  const session = new Session(model, { capacity, memory, adapter });
  const t0 = performance.now();
  const results: RecallResult[] = [];
  for (const [i, record] of records.entries()) {
    results.push(await evaluateRecall(session, tokenizer, record, { dropHistory, maxNewTokens }));
    const correct = results.filter((r) => r.correct).length;
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    process.stderr.write(`eval-memory ${policy}: ${i + 1}/${records.length}, ${correct} correct, ${seconds} s\n`);
  }
  const summary = summarize(policy, results, (performance.now() - t0) / 1000);
  const out = values.breakdown ? { ...summary, ...breakdown(results) } : summary;
  if (values.json) console.log(JSON.stringify(out));
  else console.log(describe(summary));
  gpu.destroy();
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function summarize(policy: string, results: RecallResult[], seconds: number): EvalSummary {
  const s = (r: RecallResult) => r.memory.slots;
  return {
    policy,
    n: results.length,
    accuracy: mean(results.map((r) => (r.correct ? 1 : 0))),
    meanKvSlots: mean(results.map((r) => s(r).sink + s(r).memory + s(r).working)),
    meanKvBytes: mean(results.map((r) => r.memory.bytes)),
    meanFullContextBytes: mean(results.map((r) => r.memory.fullContextBytes)),
    meanAnswerNll: mean(results.map((r) => r.answerNll)),
    seconds,
  };
}

/**
 * --breakdown: accuracy by the number of history turns before the question and by the distance from the
 * turn that stated the answer (train/data.py states it in exactly one user message), and every record.
 */
function breakdown(results: RecallResult[]) {
  const records = results.map((r) => ({
    turns: r.turns,
    factDistance: r.factDistance ?? null,
    correct: r.correct,
    reply: r.reply,
    answerNll: r.answerNll,
    kvSlots: r.memory.slots.sink + r.memory.slots.memory + r.memory.slots.working,
  }));
  return {
    byTurns: groupBy(results, (r) => r.turns),
    byFactDistance: groupBy(results, (r) => r.factDistance),
    records,
  };
}

function groupBy(results: RecallResult[], key: (r: RecallResult) => number | undefined) {
  const groups = new Map<number, RecallResult[]>();
  for (const r of results) {
    const k = key(r);
    if (k !== undefined) groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const entries = [...groups].sort(([a], [b]) => a - b);
  return Object.fromEntries(
    entries.map(([k, rs]) => [
      k,
      {
        n: rs.length,
        accuracy: mean(rs.map((r) => (r.correct ? 1 : 0))),
        meanAnswerNll: mean(rs.map((r) => r.answerNll)),
      },
    ]),
  );
}

function describe(s: EvalSummary): string {
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  return (
    `${s.policy}: accuracy ${s.accuracy.toFixed(3)} over ${s.n} records; answer NLL ${s.meanAnswerNll.toFixed(3)}\n` +
    `KV at the question: ${s.meanKvSlots.toFixed(1)} slots, ${kib(s.meanKvBytes)} ` +
    `(full context ${kib(s.meanFullContextBytes)}); ${s.seconds.toFixed(1)} s`
  );
}
