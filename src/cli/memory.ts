// `ccmem memory-logits` and `ccmem chat`: a session with a context-memory policy (and a CCM or sentinel
// adapter; a sentinel adapter's LoRA is merged into the model as it loads).

import type { GpuAdapter } from '../adapters/gpu.js';
import { Chat } from '../engine/chat.js';
import { Session } from '../engine/session.js';
import { invalidInput } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import {
  type MemoryOptions,
  type MemoryRequest,
  memoryForAdapter,
  POLICY_NAMES,
  type PolicyName,
} from '../memory/policy.js';
import type { LoadedModel } from '../model/load.js';
import { loadModelWithAdapter } from '../model/load-adapter.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { parseIds, parseNumber, required } from './args.js';
import type { CliValues } from './command.js';
import { readJsonFile } from './files.js';
import { stopNote } from './finish.js';
import { stderrProgress } from './progress.js';
import { openGpu, sampling, sourceOptions } from './run.js';

interface MemorySetup {
  gpu: Gpu;
  model: LoadedModel;
  adapter: GpuAdapter | undefined;
  memory: MemoryOptions;
}

export async function setup(values: CliValues): Promise<MemorySetup> {
  const policy = required(values.memory, '--memory') as PolicyName;
  if (!POLICY_NAMES.includes(policy)) throw invalidInput(`--memory must be one of ${POLICY_NAMES.join(', ')}`);
  const { gpu, format } = await openGpu(values);
  const spec = required(values.model, '--model');
  const compTokens = parseNumber(values['comp-tokens'], '--comp-tokens', true);
  const loaded = await loadModelWithAdapter(gpu, spec, values.adapter, {
    format,
    ...sourceOptions(values, spec),
    memory: { policy, compTokens }, // a PEFT adapter takes its mode and COMP count from these flags
  });
  stderrProgress().clear();
  const { model, gpuAdapter: adapter } = loaded;
  return {
    gpu,
    model,
    adapter,
    memory: memoryForAdapter(memoryRequest(policy, values, model), loaded.adapter?.config),
  };
}

/** The memory options the flags ask for; memoryForAdapter then checks them against the adapter. */
function memoryRequest(policy: PolicyName, values: CliValues, model: LoadedModel): MemoryRequest {
  const int = (flag: IntFlag) => parseNumber(values[flag], `--${flag}`, true);
  const stream = { window: int('window'), chunk: int('stream-chunk'), maxMemory: int('max-memory') };
  switch (policy) {
    case 'full':
      return { policy };
    case 'window':
      return { policy, window: int('window'), sinks: int('sinks'), evictChunk: int('evict-chunk') };
    case 'sentinel': {
      const sentenceEnds = model.tokenizer && sentenceEndIds(model.tokenizer, model.config.vocabSize);
      return { policy, recent: int('recent'), maxSpan: int('max-span'), sentenceEnds };
    }
    case 'ccm-stream':
      return { policy, compTokens: int('comp-tokens'), ...stream };
    default: {
      const onPositionLimit = values['on-position-limit'];
      if (onPositionLimit !== undefined && onPositionLimit !== 'error' && onPositionLimit !== 'stream') {
        throw invalidInput(`--on-position-limit must be error or stream, got ${onPositionLimit}`);
      }
      return { policy, compTokens: int('comp-tokens'), budget: int('budget'), onPositionLimit, ...stream };
    }
  }
}

type IntFlag =
  | 'window'
  | 'sinks'
  | 'evict-chunk'
  | 'budget'
  | 'comp-tokens'
  | 'stream-chunk'
  | 'max-memory'
  | 'recent'
  | 'max-span';

/** Ids whose text ends a sentence (. ! ? or a newline): the automatic sentinel spans end there. */
function sentenceEndIds(tokenizer: TextTokenizer, vocab: number): Set<number> {
  const ends = new Set<number>();
  for (let id = 0; id < vocab; id++) {
    if (/[.!?\n]$/.test(tokenizer.decode([id], { skipSpecialTokens: true }))) ends.add(id);
  }
  return ends;
}

export async function memoryLogitsCommand(values: CliValues): Promise<void> {
  const { gpu, model, adapter, memory } = await setup(values);
  if (!memory.policy.startsWith('ccm')) {
    throw invalidInput('memory-logits needs --memory ccm-concat, ccm-merge or ccm-stream');
  }
  const chunks = required(values.chunks, '--chunks')
    .split('/')
    .map((c) => parseIds(c, '--chunks'));
  const input = parseIds(required(values.input, '--input'), '--input');
  const total = chunks.reduce((n, c) => n + c.length, 0) + input.length;
  // a stream needs room for its window whatever the text; the others hold the text
  const capacity = memory.policy === 'ccm-stream' ? undefined : Math.min(model.config.maxPositions, total + 64);
  const session = new Session(model, { capacity, memory, adapter });
  for (const chunk of chunks) {
    await session.feed(chunk);
    await session.endTurn();
  }
  const [logits] = await session.logits([...session.cachedIds, ...input]); // streaming keeps recent tokens
  console.log(JSON.stringify({ logits: Array.from(logits!), memory: session.stats() }));
  gpu.destroy();
}

export async function chatCommand(values: CliValues): Promise<void> {
  const turns = await readJsonFile(required(values.turns, '--turns'), '--turns');
  if (!Array.isArray(turns) || !turns.every((t) => typeof t === 'string' && t.length > 0)) {
    throw invalidInput('--turns must be a JSON list of non-empty user messages');
  }
  const { gpu, model, adapter, memory } = await setup(values);
  if (!model.tokenizer) throw invalidInput(`${model.id} has no tokenizer.json: chat needs one`);
  const capacity = parseNumber(values.capacity, '--capacity', true);
  const session = new Session(model, { capacity, memory, adapter });
  const chat = new Chat(session, model.tokenizer);
  const maxNewTokens = parseNumber(values['max-new-tokens'], '--max-new-tokens', true) ?? 64;
  for (const text of turns as string[]) {
    const stream = chat.send(text, { maxNewTokens, ...sampling(values) });
    let step = await stream.next();
    let atEnd = session.stats();
    while (!step.done) {
      if (!values.json) process.stdout.write(step.value.delta);
      atEnd = session.stats(); // nothing is fed after the last token: this is the state the reply ended in
      step = await stream.next();
    }
    const { text: reply, ids, finishReason } = step.value;
    if (values.json) console.log(JSON.stringify({ reply, ids, finishReason, memory: session.stats() }));
    else process.stdout.write('\n');
    const note = stopNote(step.value, maxNewTokens, atEnd, model.config.maxPositions);
    if (note) console.error(note);
  }
  gpu.destroy();
}
