// The `ccmem` command line (Node). External checks call it: keep flags and JSON keys stable.
//   ccmem generate --model DIR|URL (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N] [--temperature T]
//                  [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S] [--format F] [--json]
//   ccmem logits --model DIR --prompt-ids 1,2,3 [--all] --json
//   ccmem convert llama2c FILE.bin [--tokenizer TOK.bin] --out DIR
//   ccmem convert gguf DIR --out FILE.gguf [--dtype f32|f16]
//   ccmem memory-logits --model DIR --adapter DIR --memory ccm-concat|ccm-merge|ccm-stream --comp-tokens N
//                       --chunks 1,2,3/4,5 --input 9,10 --json
//   ccmem chat --model DIR [--adapter DIR] --memory POLICY [policy options] --turns FILE.json
//              [--max-new-tokens N] [--temperature T] --json
//   ccmem eval-memory --model DIR [--adapter DIR] --memory POLICY|none [policy options] --data FILE.jsonl
//                     [--max-new-tokens N] [--breakdown] --json
import { parseArgs } from 'node:util';
import { CcmemError, invalidInput } from '../errors.js';
import { convertGgufCommand, convertLlama2cCommand } from './convert.js';
import { evalMemoryCommand } from './eval-memory.js';
import { chatCommand, memoryLogitsCommand } from './memory.js';
import { generateCommand, logitsCommand } from './run.js';

const USAGE = `usage:
  ccmem generate --model DIR|URL (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N] [--temperature T]
                 [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S] [--format auto|f32|f16|f16p] [--json]
  ccmem logits --model DIR --prompt-ids 1,2,3 [--all] [--json]
  ccmem convert llama2c FILE.bin [--tokenizer TOK.bin] --out DIR
  ccmem convert gguf DIR --out FILE.gguf [--dtype f32|f16]
  ccmem memory-logits --model DIR --adapter DIR --memory ccm-concat|ccm-merge|ccm-stream [--comp-tokens N]
                      --chunks 1,2,3/4,5/6,7,8 --input 9,10 [--json]
  ccmem chat --model DIR [--adapter DIR] --memory full|window|ccm-concat|ccm-merge|ccm-stream|sentinel
             --turns FILE.json [--window N] [--sinks N] [--evict-chunk N] [--budget N] [--comp-tokens N]
             [--on-position-limit error|stream] [--stream-chunk N] [--max-memory N] [--recent N] [--max-span N]
             [--capacity N] [--max-new-tokens N] [--temperature T] [--seed S] [--json]
  ccmem eval-memory --model DIR [--adapter DIR] --memory full|window|ccm-concat|ccm-merge|sentinel|none
                    [policy options as for chat] --data FILE.jsonl [--max-new-tokens N] [--breakdown] [--json]`;

const OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-ids': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  format: { type: 'string' },
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  tokenizer: { type: 'string' },
  out: { type: 'string' },
  dtype: { type: 'string' },
  adapter: { type: 'string' },
  memory: { type: 'string' },
  'comp-tokens': { type: 'string' },
  chunks: { type: 'string' },
  input: { type: 'string' },
  turns: { type: 'string' },
  window: { type: 'string' },
  sinks: { type: 'string' },
  'evict-chunk': { type: 'string' },
  budget: { type: 'string' },
  'on-position-limit': { type: 'string' },
  'stream-chunk': { type: 'string' },
  'max-memory': { type: 'string' },
  recent: { type: 'string' },
  'max-span': { type: 'string' },
  capacity: { type: 'string' },
  data: { type: 'string' },
  breakdown: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type CliValues = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw invalidInput(`${(e as Error).message}\n${USAGE}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parse(argv);
    const [command, sub, file] = positionals;
    if (values.help || !command) {
      console.log(USAGE);
      return values.help ? 0 : 2;
    }
    if (command === 'generate') await generateCommand(values);
    else if (command === 'logits') await logitsCommand(values);
    else if (command === 'memory-logits') await memoryLogitsCommand(values);
    else if (command === 'chat') await chatCommand(values);
    else if (command === 'eval-memory') await evalMemoryCommand(values);
    else if (command === 'convert' && sub === 'llama2c') await convertLlama2cCommand(file, values);
    else if (command === 'convert' && sub === 'gguf') await convertGgufCommand(file, values);
    else throw invalidInput(`unknown command "${positionals.join(' ')}"\n${USAGE}`);
    return 0;
  } catch (e) {
    if (e instanceof CcmemError) {
      console.error(`ccmem: error [${e.code}]: ${e.message}`);
      return 2;
    }
    console.error(e);
    return 1;
  }
}
