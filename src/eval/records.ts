// The records `ccmem eval-memory` reads: one JSON object a line (JSONL), as train/data.py writes them:
// {"history": [{"user": "...", "assistant": "..."}, ...], "question": "...", "answer": "..."}.
import { invalidInput } from '../errors.js';

export interface EvalTurn {
  user: string;
  assistant: string;
}

export interface EvalRecord {
  history: EvalTurn[];
  question: string;
  answer: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/** Parses JSONL text (blank lines skipped); `where` names the file in errors, which give the line. */
export function parseRecords(text: string, where: string): EvalRecord[] {
  const records: EvalRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const at = `${where} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw invalidInput(`${at}: not JSON (${(e as Error).message})`);
    }
    records.push(checkRecord(value, at));
  });
  if (records.length === 0) throw invalidInput(`${where}: no records`);
  return records;
}

function checkRecord(v: unknown, at: string): EvalRecord {
  if (!isObject(v)) throw invalidInput(`${at}: expected an object {"history", "question", "answer"}`);
  const { history, question, answer } = v;
  if (!Array.isArray(history)) throw invalidInput(`${at}: "history" must be a list of {"user", "assistant"} turns`);
  history.forEach((t, k) => {
    // an empty reply is a turn whose assistant said nothing; an empty user message cannot be sent
    if (!isObject(t) || !nonEmpty(t.user) || typeof t.assistant !== 'string') {
      throw invalidInput(`${at}: history[${k}] must be {"user": non-empty text, "assistant": text}`);
    }
  });
  if (!nonEmpty(question)) throw invalidInput(`${at}: "question" must be non-empty text`);
  if (!nonEmpty(answer)) throw invalidInput(`${at}: "answer" must be non-empty text`);
  const turns = history.map((t) => ({ user: t.user as string, assistant: t.assistant as string }));
  return { history: turns, question, answer };
}
