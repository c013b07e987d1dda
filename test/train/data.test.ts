// train/data.py, the recall-chat generator, through its CLI (plain python3: it is standard library only).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

interface ChatRecord {
  history: { user: string; assistant: string }[];
  question: string;
  answer: string;
}

const dir = mkdtempSync(join(tmpdir(), 'ccmem-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function generateRaw(split: string, seed: number, count: number): string {
  const out = join(dir, `${split}-${seed}-${count}.jsonl`);
  const args = ['train/data.py', '--split', split, '--seed', String(seed), '--count', String(count), '--out', out];
  const res = spawnSync('python3', args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`train/data.py failed: ${res.stderr}`);
  return readFileSync(out, 'utf8');
}

const generate = (split: string, seed: number, count: number): ChatRecord[] =>
  generateRaw(split, seed, count)
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ChatRecord);

// answers are single words or numbers (checked below), so they need no regex escaping
const wordPattern = (word: string) => new RegExp(`(?<!\\w)${word}(?!\\w)`, 'gi');
const wholeWord = (word: string, text: string) => text.search(wordPattern(word)) >= 0;

/** The user turns that state the record's answer. */
const statedAt = (r: ChatRecord) => {
  const pattern = wordPattern(r.answer);
  return r.history.flatMap((t, i) => (t.user.search(pattern) >= 0 ? [i] : []));
};

// the kinds of pet and of numbered thing that phrasings name (train/data.py's PET_KINDS, NUMBER_THINGS)
const kindWords = /\b(dog|cat|rabbit|hamster|parrot|turtle|goldfish|ferret|flat|room|locker)\b/g;
/** A phrasing with its pet or numbered thing blanked, so a finite train sample covers every phrasing. */
const blankKinds = (text: string) => text.replace(kindWords, '{k}');
/** A statement with its value blanked out: the phrasing it was made from. */
const statementPhrasing = (r: ChatRecord) =>
  blankKinds(r.history[statedAt(r)[0]!]!.user.replace(wordPattern(r.answer), '{}'));

// the machine is shared with training runs: generous timeouts, modest counts
const TIMEOUT = 60_000;
const train = generate('train', 3, 2000);
const validation = generate('validation', 3, 400);
const test = generate('test', 3, 400);

describe('train/data.py', () => {
  it(
    'writes the requested number of records in the documented shape',
    () => {
      expect(train).toHaveLength(2000);
      for (const r of [...validation, ...test]) {
        expect(Object.keys(r).sort()).toEqual(['answer', 'history', 'question']);
        expect(r.history.length).toBeGreaterThanOrEqual(5);
        expect(r.history.length).toBeLessThanOrEqual(9);
        expect(r.answer).toMatch(/^\w+$/);
      }
    },
    TIMEOUT,
  );

  it(
    'is deterministic for (split, seed, count) and varies with the seed',
    () => {
      expect(generateRaw('test', 11, 50)).toBe(generateRaw('test', 11, 50));
      expect(generateRaw('test', 12, 50)).not.toBe(generateRaw('test', 11, 50));
    },
    TIMEOUT,
  );

  it(
    'draws the splits from disjoint value pools',
    () => {
      const values = (rs: ChatRecord[]) => new Set(rs.map((r) => r.answer.toLowerCase()));
      const [a, b, c] = [values(train), values(validation), values(test)];
      const shared = (x: Set<string>, y: Set<string>) => [...x].filter((v) => y.has(v));
      expect(shared(a, b)).toEqual([]);
      expect(shared(a, c)).toEqual([]);
      expect(shared(b, c)).toEqual([]);
      // numbers and words of every kind are asked
      expect([...c].some((v) => /^\d+$/.test(v)) && [...c].some((v) => /^[a-z]+$/i.test(v))).toBe(true);
    },
    TIMEOUT,
  );

  it(
    'states the asked fact once, at least four turns before the question',
    () => {
      for (const r of [...train, ...validation, ...test]) {
        const at = statedAt(r);
        const ok = at.length === 1 && r.history.length - at[0]! >= 4 && !wholeWord(r.answer, r.question);
        if (!ok) expect.fail(`asked fact stated at turns [${at}] of ${r.history.length}: ${JSON.stringify(r)}`);
      }
    },
    TIMEOUT,
  );

  it(
    'uses phrasings in test that train never uses, and validation none of them',
    () => {
      const trainQuestions = new Set(train.map((r) => blankKinds(r.question)));
      const trainStatements = new Set(train.map(statementPhrasing));
      const unseen = (rs: ChatRecord[]) => ({
        questions: rs.filter((r) => !trainQuestions.has(blankKinds(r.question))).length,
        statements: rs.filter((r) => !trainStatements.has(statementPhrasing(r))).length,
      });
      const inTest = unseen(test);
      expect(inTest.questions).toBeGreaterThan(test.length * 0.3);
      expect(inTest.statements).toBeGreaterThan(test.length * 0.3);
      expect(unseen(validation)).toEqual({ questions: 0, statements: 0 });
    },
    TIMEOUT,
  );
});
