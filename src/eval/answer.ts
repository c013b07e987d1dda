// The recall check of `ccmem eval-memory`: is the expected answer in the reply, as a whole word?

const WORD_CHAR = String.raw`[\p{L}\p{N}\p{M}_]`;

/**
 * Whether `answer` appears in `reply` as a whole word (or phrase; any run of spaces matches any run),
 * ignoring case: "Ada" is in "Your name is ada." but not in "Adam", "42" is in "room 42" but not in "142".
 */
export function answerInReply(reply: string, answer: string): boolean {
  const words = answer.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return false;
  const body = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, String.raw`\$&`)).join(String.raw`\s+`);
  return new RegExp(`(?<!${WORD_CHAR})${body}(?!${WORD_CHAR})`, 'iu').test(reply);
}
