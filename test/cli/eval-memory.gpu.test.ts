// `ccmem eval-memory` as a subprocess on a random ChatML model with random adapters: the JSON line, the KV
// sizes each policy must have for records whose token counts the test computes from the chat template,
// the answer's teacher-forced NLL against an in-process forward, the answer-matching rule on the replies,
// and bad input.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeAdapter } from '../../src/adapters/files.js';
import { Session } from '../../src/engine/session.js';
import { answerInReply } from '../../src/eval/answer.js';
import { logProbability } from '../../src/eval/recall.js';
import type { EvalRecord } from '../../src/eval/records.js';
import { loadModel } from '../../src/model/load.js';
import { type ChatMessage, TextTokenizer } from '../../src/model/tokenizer.js';
import type { ModelConfig } from '../../src/model/types.js';
import { randomAdapter } from '../../src/reference/random-adapter.js';
import { chatTokenizerFiles, writeChatModelDir } from '../helpers/chatModel.js';
import { testGpu } from '../helpers/gpu.js';

const BIN = resolve('bin/ccmem.mjs');
const work = mkdtempSync(join(tmpdir(), 'ccmem-eval-memory-'));
const modelDir = join(work, 'model');
const dataFile = join(work, 'records.jsonl');
const { tokenizer: tokenizerJson, config: tokenizerConfig } = chatTokenizerFiles();
const tokenizer = TextTokenizer.create(tokenizerJson, tokenizerConfig);
let config: ModelConfig;

const RECORDS: EvalRecord[] = [
  {
    history: [
      { user: 'Hi! My name is Ada.', assistant: 'Nice to meet you, Ada.' },
      { user: 'It rained all day here.', assistant: 'Rain is good for the garden.' },
      { user: 'I like green tea.', assistant: 'Green tea is lovely.' },
    ],
    question: 'What is my name?',
    answer: 'Ada',
  },
  {
    history: [{ user: 'I live in room 42.', assistant: 'Got it: room 42.' }],
    question: 'Which room is mine?',
    answer: '42',
  },
  { history: [], question: 'What is my job?', answer: 'baker' },
];

function ccmem(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeRecords(file: string, records: EvalRecord[]): void {
  writeFileSync(file, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
}

interface Breakdown {
  policy: string;
  n: number;
  accuracy: number;
  meanKvSlots: number;
  meanKvBytes: number;
  meanFullContextBytes: number;
  meanAnswerNll: number;
  byTurns: Record<string, { n: number; accuracy: number; meanAnswerNll: number }>;
  byFactDistance: Record<string, { n: number; accuracy: number; meanAnswerNll: number }>;
  records: {
    turns: number;
    factDistance: number | null;
    correct: boolean;
    reply: string;
    answerNll: number;
    kvSlots: number;
  }[];
}

function evaluate(memory: string, ...flags: string[]): Breakdown {
  const r = ccmem('eval-memory', '--model', modelDir, '--memory', memory, '--data', dataFile, ...flags, '--json');
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines).toHaveLength(1); // progress goes to stderr
  expect(r.stderr).toMatch(/3\/3/);
  return JSON.parse(lines[0]!);
}

const messages = (r: EvalRecord): ChatMessage[] =>
  r.history.flatMap((t) => [
    { role: 'user' as const, content: t.user },
    { role: 'assistant' as const, content: t.assistant },
  ]);

/** Tokens of the whole conversation up to the reply to the question: what a full cache holds then. */
function fullTokens(r: EvalRecord): number[] {
  const text = tokenizer.applyChatTemplate([...messages(r), { role: 'user', content: r.question }], {
    addGenerationPrompt: true,
  });
  return tokenizer.encode(text);
}

/** Tokens of the question's turn alone: the text after the last history reply. */
function questionTokens(r: EvalRecord): number {
  const turns = messages(r);
  if (turns.length === 0) return fullTokens(r).length;
  const before = tokenizer.applyChatTemplate(turns.slice(0, -1), { addGenerationPrompt: true }) + turns.at(-1)!.content;
  const all = tokenizer.applyChatTemplate([...turns, { role: 'user', content: r.question }], {
    addGenerationPrompt: true,
  });
  return tokenizer.encode(all.slice(before.length)).length;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

beforeAll(() => {
  // the CLI runs the compiled dist/; rebuild so it matches the sources
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  config = writeChatModelDir(modelDir, { seed: 31 });
  writeRecords(dataFile, RECORDS);
});

function writeRandomAdapter(name: string, o: Parameters<typeof randomAdapter>[1]): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, data] of Object.entries(writeAdapter(randomAdapter(config, o))))
    writeFileSync(join(dir, file), data);
  return dir;
}

describe('ccmem eval-memory', () => {
  let full: Breakdown;

  it('full: the JSON line, KV slots of the whole rendered chat, NLL as a forward computes it', async () => {
    full = evaluate('full', '--max-new-tokens', '8', '--breakdown');
    expect(full).toMatchObject({
      policy: 'full',
      n: 3,
      accuracy: expect.any(Number),
      meanKvSlots: expect.any(Number),
      meanKvBytes: expect.any(Number),
      meanFullContextBytes: expect.any(Number),
      meanAnswerNll: expect.any(Number),
    });
    expect(full.records.map((r) => r.kvSlots)).toEqual(RECORDS.map((r) => fullTokens(r).length));
    expect(full.meanKvBytes).toBe(full.meanFullContextBytes);
    expect(full.byTurns).toEqual({
      0: { n: 1, accuracy: expect.any(Number), meanAnswerNll: full.records[2]!.answerNll },
      1: { n: 1, accuracy: expect.any(Number), meanAnswerNll: full.records[1]!.answerNll },
      3: { n: 1, accuracy: expect.any(Number), meanAnswerNll: full.records[0]!.answerNll },
    });
    // the answer is stated by the first user message of records 0 (3 turns back) and 1 (1 turn back)
    expect(full.records.map((r) => r.factDistance)).toEqual([3, 1, null]);
    expect(Object.keys(full.byFactDistance)).toEqual(['1', '3']);
    expect(full.meanAnswerNll).toBeCloseTo(mean(full.records.map((r) => r.answerNll)), 10);

    // the answer's NLL, from one forward over the rendered chat plus the answer's tokens
    const gpu = await testGpu();
    const model = await loadModel(gpu, modelDir, { format: 'f32' });
    const session = new Session(model, { capacity: 256, logitRows: 256 });
    for (const [i, r] of RECORDS.entries()) {
      const prompt = fullTokens(r);
      const answer = tokenizer.encode(r.answer);
      const rows = await session.logits([...prompt, ...answer], { all: true });
      const nll = -mean(answer.map((id, j) => logProbability(rows[prompt.length - 1 + j]!, id)));
      expect(full.records[i]!.answerNll).toBeCloseTo(nll, 3);
    }
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('none: only the question is in the cache', () => {
    const none = evaluate('none', '--max-new-tokens', '8', '--breakdown');
    expect(none.records.map((r) => r.kvSlots)).toEqual(RECORDS.map((r) => fullTokens({ ...r, history: [] }).length));
    expect(none.meanKvSlots).toBeLessThan(full.meanKvSlots);
  });

  it('ccm-concat: sink + n slots per history turn + the question; ccm-merge: sink + n + the question', () => {
    const concat = writeRandomAdapter('concat', { rank: 4, alpha: 8, compTokens: 2, sink: true, seed: 5 });
    const ccm = evaluate('ccm-concat', '--adapter', concat, '--max-new-tokens', '8', '--breakdown');
    const slots = (r: EvalRecord, memory: number) => (r.history.length ? 1 + memory : 0) + questionTokens(r);
    expect(ccm.records.map((r) => r.kvSlots)).toEqual(RECORDS.map((r) => slots(r, 2 * r.history.length)));
    expect(ccm.meanKvSlots).toBeLessThan(full.meanKvSlots);
    // the full-context equivalent counts the same tokens as full holds
    expect(ccm.meanFullContextBytes).toBe(full.meanFullContextBytes);

    const merge = writeRandomAdapter('merge', { rank: 4, alpha: 8, compTokens: 2, mode: 'merge', sink: true, seed: 6 });
    const merged = evaluate('ccm-merge', '--adapter', merge, '--max-new-tokens', '8', '--breakdown');
    expect(merged.records.map((r) => r.kvSlots)).toEqual(RECORDS.map((r) => slots(r, r.history.length ? 2 : 0)));
  });

  it('window and sentinel keep fewer slots than full', () => {
    const window = evaluate('window', '--window', '20', '--sinks', '2', '--max-new-tokens', '8', '--breakdown');
    expect(Math.max(...window.records.map((r) => r.kvSlots))).toBeLessThanOrEqual(20); // the window counts the sinks
    expect(window.meanKvSlots).toBeLessThan(full.meanKvSlots);
    const sentinelDir = writeRandomAdapter('sentinel', { method: 'sentinel', rank: 4, compTokens: 1, seed: 7 });
    const sentinel = evaluate('sentinel', '--adapter', sentinelDir, '--recent', '4', '--max-new-tokens', '8');
    expect(sentinel.meanKvSlots).toBeLessThan(full.meanKvSlots);
  });

  it('an answer counts when the reply holds it as a whole word, in any case', () => {
    // answers taken from the greedy replies full gave (the replies do not depend on the answer)
    const word = (reply: string) => reply.match(/(?<![\p{L}\p{N}\p{M}_])[A-Za-z]{2,}(?![\p{L}\p{N}\p{M}_])/u)?.[0];
    const picked = full.records.map((r) => word(r.reply));
    expect(picked.filter(Boolean).length, JSON.stringify(full.records)).toBeGreaterThan(0);
    const cases = RECORDS.flatMap((r, i) => {
      const w = picked[i];
      if (!w) return [];
      return [
        { record: { ...r, answer: w.toUpperCase() }, reply: full.records[i]!.reply },
        { record: { ...r, answer: `${w}zq` }, reply: full.records[i]!.reply },
      ];
    });
    const file = join(work, 'answers.jsonl');
    writeRecords(
      file,
      cases.map((c) => c.record),
    );
    const r = ccmem('eval-memory', '--model', modelDir, '--memory', 'full', '--data', file, '--max-new-tokens', '8');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith(`full: accuracy 0.500 over ${cases.length} records`), r.stdout).toBe(true);
    const out = JSON.parse(
      ccmem(
        'eval-memory',
        '--model',
        modelDir,
        '--memory',
        'full',
        '--data',
        file,
        '--max-new-tokens',
        '8',
        '--breakdown',
        '--json',
      ).stdout,
    ) as Breakdown;
    expect(out.records.map((x) => x.reply)).toEqual(cases.map((c) => c.reply));
    expect(out.records.map((x) => x.correct)).toEqual(cases.map((c) => answerInReply(c.reply, c.record.answer)));
    expect(out.records.map((x) => x.correct)).toEqual(cases.map((_, k) => k % 2 === 0));
  });

  it('bad input: one typed error line and exit 2', () => {
    const bad = join(work, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify(RECORDS[0])}\n{"history": [], "question": "Hi?"\n`);
    const cases: [string[], RegExp][] = [
      [['--memory', 'full', '--data', join(work, 'missing.jsonl')], /--data.*missing\.jsonl/],
      [['--memory', 'full', '--data', bad], /bad\.jsonl line 2: not JSON/],
      [['--memory', 'ccm-concat', '--data', dataFile], /ccm-concat needs --adapter/],
      [['--memory', 'lru', '--data', dataFile], /--memory must be one of/],
    ];
    for (const [flags, message] of cases) {
      const r = ccmem('eval-memory', '--model', modelDir, ...flags, '--json');
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('ccmem: error'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^ccmem: error \[INVALID_INPUT\]: /);
      expect(errors[0]).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });
});
