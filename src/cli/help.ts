// The CLI's help text (every command and flag with its one-line description) and the "did you mean"
// suggestion for a mistyped command or flag.
import type { Command } from './command.js';
import { FLAGS, flagSyntax } from './flags.js';

const ENVIRONMENT = [
  ['HF_ENDPOINT', 'the host hub ids are fetched from (default https://huggingface.co), e.g. a mirror'],
  ['CCMEM_DEBUG=1', "print an unexpected error's stack, and Dawn's own stderr messages"],
] as const;

export function mainHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'ccmem: Llama-family models on WebGPU (Dawn in Node), with a compressed context memory.',
    '',
    'usage: ccmem COMMAND [flags]      ccmem COMMAND --help: the command and its flags',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    ...commands.map((c) => `  ccmem ${c.name} ${c.usage.replaceAll('\n', '\n  ')}`),
    '',
    environmentHelp(),
    '',
    'Errors print one line "ccmem: error [CODE]: message" and exit with status 2 (an unexpected one: status 1).',
  ].join('\n');
}

export function commandHelp(command: Command): string {
  const rows = command.flags.map((name) => [flagSyntax(name, FLAGS[name]), FLAGS[name].description] as const);
  rows.push([flagSyntax('help', FLAGS.help), FLAGS.help.description]);
  const width = Math.max(...rows.map(([syntax]) => syntax.length));
  return [
    `ccmem ${command.name}: ${command.summary}`,
    '',
    `usage: ccmem ${command.name} ${command.usage}`,
    '',
    'flags:',
    ...rows.map(([syntax, description]) => `  ${syntax.padEnd(width)}  ${description}`),
    '',
    environmentHelp(),
  ].join('\n');
}

function environmentHelp(): string {
  const width = Math.max(...ENVIRONMENT.map(([name]) => name.length));
  return ['environment:', ...ENVIRONMENT.map(([name, what]) => `  ${name.padEnd(width)}  ${what}`)].join('\n');
}

/**
 * The candidate closest to a mistyped `word`: one it starts (a cut-off name), or the nearest by edit
 * distance (transpositions count once) within about a third of its length; undefined when none is close.
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  if (w.length >= 3) {
    const starts = candidates.filter((c) => c.startsWith(w));
    if (starts.length === 1) return starts[0];
  }
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(w.length / 3));
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d <= bestDistance && (best === undefined || d < bestDistance)) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => {
    const row = new Array<number>(b.length + 1).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
