// The pure parts of `ccmem eval-memory`: the answer-matching rule and the record parser.
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { answerInReply } from '../../src/eval/answer.js';
import { logProbability } from '../../src/eval/recall.js';
import { parseRecords } from '../../src/eval/records.js';

describe('answerInReply', () => {
  it('matches whole words, ignoring case', () => {
    expect(answerInReply('Your name is ada.', 'Ada')).toBe(true);
    expect(answerInReply('ADA', 'ada')).toBe(true);
    expect(answerInReply('Hello, Adam.', 'Ada')).toBe(false);
    expect(answerInReply('Nevada', 'ada')).toBe(false);
    expect(answerInReply('You live in room 42!', '42')).toBe(true);
    expect(answerInReply('You live in room 142.', '42')).toBe(false);
    expect(answerInReply('Room 42b', '42')).toBe(false);
    expect(answerInReply('ada_lovelace', 'ada')).toBe(false);
    expect(answerInReply('Zoë is here', 'zoë')).toBe(true);
    expect(answerInReply('Zoëy', 'Zoë')).toBe(false);
  });

  it('matches phrases across any spacing, and regex characters literally', () => {
    expect(answerInReply('You like Ice\n cream a lot', 'ice cream')).toBe(true);
    expect(answerInReply('You like ice creamy things', 'ice cream')).toBe(false);
    expect(answerInReply('It is C++ (of course)', 'c++')).toBe(true);
    expect(answerInReply('It is Cxx', 'c++')).toBe(false);
    expect(answerInReply('anything', '   ')).toBe(false);
  });
});

describe('parseRecords', () => {
  const good = { history: [{ user: 'I am Ada.', assistant: 'Hi Ada.' }], question: 'Who am I?', answer: 'Ada' };

  it('reads one record a line, skipping blank lines', () => {
    const text = `${JSON.stringify(good)}\n\n${JSON.stringify({ ...good, history: [], extra: 3 })}\n`;
    expect(parseRecords(text, 'f.jsonl')).toEqual([good, { ...good, history: [] }]);
  });

  it.each([
    ['{"history": [', /f\.jsonl line 1: not JSON/],
    [`${JSON.stringify(good)}\n\n{"history": []`, /f\.jsonl line 3: not JSON/],
    ['[1, 2]', /line 1: expected an object/],
    [JSON.stringify({ ...good, history: {} }), /"history" must be a list/],
    [JSON.stringify({ ...good, history: [{ user: '', assistant: 'x' }] }), /history\[0\] must be/],
    [JSON.stringify({ ...good, history: [{ user: 'x' }] }), /history\[0\] must be/],
    [JSON.stringify({ ...good, question: ' ' }), /"question" must be non-empty/],
    [JSON.stringify({ ...good, answer: 7 }), /"answer" must be non-empty/],
    ['\n\n', /f\.jsonl: no records/],
  ])('refuses %s', (text, message) => {
    let error: unknown;
    try {
      parseRecords(text, 'f.jsonl');
    } catch (e) {
      error = e;
    }
    expect(isCcmemError(error, 'INVALID_INPUT')).toBe(true);
    expect((error as Error).message).toMatch(message);
  });
});

describe('logProbability', () => {
  it('is log softmax, stable for large logits', () => {
    const logits = Float32Array.of(1000, 1000, 1000 - Math.log(2)); // (f32 holds 1000 - ln 2 to about 3e-5)
    expect(logProbability(logits, 0)).toBeCloseTo(Math.log(0.4), 4);
    expect(logProbability(logits, 2)).toBeCloseTo(Math.log(0.2), 4);
  });
});
