// Every flag of the `ccmem` command line with a one-line description (the help text and the "did you mean"
// suggestions read this table). External checks call the CLI: keep names stable.

export interface Flag {
  readonly type: 'string' | 'boolean';
  /** What the value looks like in the help, e.g. N or DIR. */
  readonly value?: string;
  readonly description: string;
  readonly short?: string;
}

const string = (value: string, description: string): Flag => ({ type: 'string', value, description });
const boolean = (description: string): Flag => ({ type: 'boolean', description });

export const FLAGS = {
  model: string(
    'DIR|URL|HUB_ID|FILE.gguf',
    'the model: a Hugging Face folder, an http(s) folder URL, a hub id org/name, or a GGUF file (path, URL, org/name/FILE.gguf)',
  ),
  revision: string('REV', "a hub id's branch, tag or commit (default main); the host is $HF_ENDPOINT"),
  format: string(
    'auto|f32|f16|f16p',
    'weight format on the GPU (default auto: f32 stays f32, f16/bf16 and quantized GGUF become f16)',
  ),
  prompt: string('TEXT', "the prompt, tokenized with the model's special tokens (BOS for Llama)"),
  'prompt-ids': string('1,2,3', 'the prompt as token ids, fed exactly as given (no BOS added)'),
  'max-new-tokens': string('N', 'most tokens to generate (default 128; chat: 64 per turn; eval-memory: 32)'),
  temperature: string('T', 'sampling temperature (default 0: greedy)'),
  'top-k': string('K', 'sample among the K most likely tokens (default 0: off)'),
  'top-p': string('P', 'sample among the most likely tokens whose probabilities sum to P (default 1: off)'),
  'repetition-penalty': string('R', 'penalize tokens already in the context by R (default 1: off)'),
  seed: string('S', 'random seed: the same seed samples the same text (default random)'),
  json: boolean('print JSON on stdout (one line per result)'),
  all: boolean('print the logits of every position, not only the last'),
  tokenizer: string('TOK.bin', 'the llama2.c tokenizer to convert with the checkpoint (default none)'),
  out: string('PATH', 'where to write the conversion: a folder (llama2c) or a .gguf file (gguf)'),
  dtype: string('f32|f16|q8_0|q4_0', "the GGUF file's matrix type (default f16; q8_0/q4_0: rows in blocks of 32)"),
  adapter: string('DIR|URL|HUB_ID', 'a context-memory adapter: the ccmem format or the official PEFT layout'),
  memory: string('POLICY', 'context-memory policy: full, window, ccm-concat, ccm-merge, ccm-stream or sentinel'),
  'comp-tokens': string('N', "COMP tokens per compression step (default the adapter's, a PEFT one's from its rows)"),
  chunks: string('1,2/3,4', 'token ids of the chunks to compress one after another, separated by /'),
  input: string('9,10', 'token ids fed after the memory: the logits are those of its last position'),
  turns: string('FILE.json', 'a JSON list of user messages, one chat turn each'),
  window: string('N', 'window: tokens kept, sinks included (default the cache); ccm-stream: slots (default 160)'),
  sinks: string('N', 'window: first tokens kept forever (default 4)'),
  'evict-chunk': string('N', 'window: tokens evicted at once when the window is full (default (window - sinks)/8)'),
  budget: string('N', 'ccm-concat: most memory slots, oldest evicted first (default unbounded)'),
  'on-position-limit': string('error|stream', 'ccm: past the model positions, fail or go on as ccm-stream (error)'),
  'stream-chunk': string('N', 'ccm-stream: oldest tokens compressed at once (default 64, less in a small cache)'),
  'max-memory': string('N', 'ccm-stream: most COMP slots kept (default 8, rounded up to the COMP count)'),
  recent: string('N', 'sentinel: recent tokens never compressed (default 32)'),
  'max-span': string('N', 'sentinel: longest compressed span (default 25)'),
  data: string('FILE.jsonl', 'eval-memory: the chat records to evaluate, one JSON object per line'),
  breakdown: boolean('eval-memory --json: also accuracy by history length and by distance to the fact, per record'),
  capacity: string('N', "KV cache slots of the chat (default min(2048, the model's positions))"),
  help: { type: 'boolean', short: 'h', description: 'show the commands, or one command and its flags' },
} as const satisfies Record<string, Flag>;

export type FlagName = keyof typeof FLAGS;

/** Flags every command takes. */
export const COMMON_FLAGS: readonly FlagName[] = ['help'];
/** Flags of commands that load a model onto the GPU. */
export const MODEL_FLAGS: readonly FlagName[] = ['model', 'revision', 'format'];
export const SAMPLING_FLAGS: readonly FlagName[] = ['temperature', 'top-k', 'top-p', 'repetition-penalty', 'seed'];
/** The policy flags of the ccm policies (memory-logits runs only those). */
export const CCM_FLAGS: readonly FlagName[] = [
  'comp-tokens',
  'budget',
  'on-position-limit',
  'window',
  'stream-chunk',
  'max-memory',
];
export const POLICY_FLAGS: readonly FlagName[] = [
  'window',
  'sinks',
  'evict-chunk',
  'budget',
  'comp-tokens',
  'on-position-limit',
  'stream-chunk',
  'max-memory',
  'recent',
  'max-span',
  'capacity',
];

/** "--name VALUE" as the help writes it. */
export function flagSyntax(name: string, flag: Flag): string {
  return flag.value ? `--${name} ${flag.value}` : `--${name}`;
}
