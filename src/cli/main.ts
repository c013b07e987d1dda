// The `ccmem` command line (Node): the commands, their flags, help, and errors as one line. External checks
// call it: keep commands, flags and JSON keys stable. bin/ccmem.mjs runs it through entry.ts.
import { parseArgs } from 'node:util';
import { CcmemError, invalidInput } from '../errors.js';
import type { CliValues, Command } from './command.js';
import { convertGgufCommand, convertLlama2cCommand } from './convert.js';
import { evalMemoryCommand } from './eval-memory.js';
import { CCM_FLAGS, COMMON_FLAGS, FLAGS, type FlagName, MODEL_FLAGS, POLICY_FLAGS, SAMPLING_FLAGS } from './flags.js';
import { commandHelp, mainHelp, suggest } from './help.js';
import { chatCommand, memoryLogitsCommand } from './memory.js';
import { stderrProgress } from './progress.js';
import { generateCommand, logitsCommand } from './run.js';

const memoryUsage = (policies: string) =>
  `--model DIR|URL|HUB_ID [--adapter DIR|URL|HUB_ID] --memory ${policies} [policy flags]`;

export const COMMANDS: readonly Command[] = [
  {
    name: 'generate',
    summary: 'continue a prompt and print the text (or ids and timings with --json)',
    usage:
      '--model DIR|URL|HUB_ID (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N] [--temperature T]\n' +
      '    [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S] [--format auto|f32|f16|f16p] [--json]',
    flags: [...MODEL_FLAGS, 'prompt', 'prompt-ids', 'max-new-tokens', ...SAMPLING_FLAGS, 'json'],
    run: generateCommand,
  },
  {
    name: 'logits',
    summary: 'print the logits of the last position of a prompt (every position with --all)',
    usage: '--model DIR|URL|HUB_ID --prompt-ids 1,2,3 [--all] [--json]',
    flags: [...MODEL_FLAGS, 'prompt-ids', 'all', 'json'],
    run: logitsCommand,
  },
  {
    name: 'convert llama2c',
    summary: 'convert a llama2.c checkpoint (and tokenizer) into a Hugging Face folder',
    usage: 'FILE.bin [--tokenizer TOK.bin] --out DIR',
    flags: ['tokenizer', 'out'],
    run: (values, [file]) => convertLlama2cCommand(file, values),
  },
  {
    name: 'convert gguf',
    summary: 'convert a Hugging Face model into a GGUF file (for llama.cpp)',
    usage: 'DIR|URL|HUB_ID --out FILE.gguf [--dtype f32|f16] [--revision REV]',
    flags: ['out', 'dtype', 'revision'],
    run: (values, [dir]) => convertGgufCommand(dir, values),
  },
  {
    name: 'memory-logits',
    summary: 'compress chunks into a CCM memory, then print the logits of an input read after it',
    usage: `${memoryUsage('ccm-concat|ccm-merge|ccm-stream')}\n    --chunks 1,2,3/4,5/6,7,8 --input 9,10 [--json]`,
    flags: [...MODEL_FLAGS, 'adapter', 'memory', ...CCM_FLAGS, 'chunks', 'input', 'json'],
    run: memoryLogitsCommand,
  },
  {
    name: 'chat',
    summary: 'chat turn by turn under a context-memory policy: one reply per message of a JSON list',
    usage:
      `${memoryUsage('full|window|ccm-concat|ccm-merge|ccm-stream|sentinel')}\n` +
      '    --turns FILE.json [--max-new-tokens N] [sampling flags] [--json]',
    flags: [...MODEL_FLAGS, 'adapter', 'memory', ...POLICY_FLAGS, 'turns', 'max-new-tokens', ...SAMPLING_FLAGS, 'json'],
    run: chatCommand,
  },
  {
    name: 'eval-memory',
    summary: 'recall accuracy and memory size of a context-memory policy over JSONL chat records',
    usage: `${memoryUsage('full|window|ccm-concat|ccm-merge|sentinel|none')}\n    --data FILE.jsonl [--max-new-tokens N] [--breakdown] [--json]`,
    flags: [...MODEL_FLAGS, 'adapter', 'memory', ...POLICY_FLAGS, 'data', 'breakdown', 'max-new-tokens', 'json'],
    run: (values) => evalMemoryCommand(values),
  },
];

const OPTIONS = Object.fromEntries(
  Object.entries(FLAGS).map(([name, f]) => [name, 'short' in f ? { type: f.type, short: f.short } : { type: f.type }]),
) as { [K in FlagName]: { type: (typeof FLAGS)[K]['type']; short?: string } };

export async function main(argv: string[]): Promise<number> {
  try {
    const { command, values, args } = parse(argv);
    if (!command) {
      if (values.help) console.log(mainHelp(COMMANDS));
      else console.error(mainHelp(COMMANDS));
      return values.help ? 0 : 2;
    }
    if (values.help) {
      console.log(commandHelp(command));
      return 0;
    }
    for (const name of Object.keys(values)) {
      if (!command.flags.includes(name as FlagName) && !COMMON_FLAGS.includes(name as FlagName)) {
        console.error(`ccmem: warning: --${name} has no effect on ${command.name}`);
      }
    }
    await command.run(values, args);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}

/**
 * Prints a failure as one line on stderr and returns the exit status: 2 for a CcmemError (bad input, a
 * model or device problem), 1 for anything else (a bug; CCMEM_DEBUG=1 adds the stack).
 */
export function reportError(e: unknown): number {
  stderrProgress().clear();
  if (e instanceof CcmemError) {
    console.error(`ccmem: error [${e.code}]: ${oneLine(e.message)}`);
    return 2;
  }
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  if (process.env.CCMEM_DEBUG === '1') console.error(e);
  else console.error(`ccmem: internal error: ${oneLine(what)} (CCMEM_DEBUG=1 shows the stack)`);
  return 1;
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ');

/** The command the positionals name, its remaining positionals and the flag values, checked. */
function parse(argv: string[]): { command: Command | undefined; values: CliValues; args: string[] } {
  // A lenient pass finds the command first, so an unknown flag can be matched against that command's flags.
  const loose = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const command = findCommand(loose.positionals);
  const see = command ? `ccmem ${command.name} --help` : 'ccmem --help';
  for (const token of loose.tokens) {
    if (token.kind !== 'option' || token.name in OPTIONS) continue;
    const candidates = command ? [...command.flags, ...COMMON_FLAGS] : Object.keys(FLAGS);
    const guess = suggest(token.name, candidates);
    throw invalidInput(`unknown flag ${token.rawName}${guess ? ` (did you mean --${guess}?)` : ''}; see ${see}`);
  }
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw invalidInput(`${oneLine((e as Error).message)}; see ${see}`);
  }
  const values = parsed.values as CliValues;
  if (!command && parsed.positionals.length > 0 && !values.help) throw unknownCommand(parsed.positionals);
  const words = command ? command.name.split(' ').length : 0;
  return { command, values, args: parsed.positionals.slice(words) };
}

function findCommand(positionals: readonly string[]): Command | undefined {
  return COMMANDS.find((c) => {
    const words = c.name.split(' ');
    return words.every((w, i) => positionals[i] === w);
  });
}

function unknownCommand(positionals: readonly string[]): CcmemError {
  const [first = '', second] = positionals;
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => `"${c.name}"`);
  if (subs.length > 0) {
    const what = second === undefined ? `"${first}" needs one of` : `unknown command "${first} ${second}"; try`;
    return invalidInput(`${what} ${subs.join(', ')}; see ccmem --help`);
  }
  const guess = suggest(
    first,
    COMMANDS.map((c) => c.name.split(' ')[0]!),
  );
  return invalidInput(`unknown command "${first}"${guess ? ` (did you mean "${guess}"?)` : ''}; see ccmem --help`);
}
