// `ccmem memory-logits` and `ccmem chat`: a session with a context-memory policy (and a CCM adapter).
import { readFile } from 'node:fs/promises';
import { Chat } from '../engine/chat.js';
import { Session } from '../engine/session.js';
import { invalidInput } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { type MemoryOptions, POLICY_NAMES, type PolicyName } from '../memory/policy.js';
import { type Adapter, checkAdapter, loadAdapter } from '../model/adapter.js';
import { uploadAdapter } from '../model/adapter-gpu.js';
import type { GpuAdapter } from '../model/gpu-adapter.js';
import type { LoadedModel } from '../model/load.js';
import { parseIds, parseNumber, required } from './args.js';
import type { CliValues } from './main.js';
import { open, sampling } from './run.js';

interface MemorySetup {
  gpu: Gpu;
  model: LoadedModel;
  adapter: GpuAdapter | undefined;
  memory: MemoryOptions;
}

async function setup(values: CliValues): Promise<MemorySetup> {
  const policy = required(values.memory, '--memory') as PolicyName;
  if (!POLICY_NAMES.includes(policy)) throw invalidInput(`--memory must be one of ${POLICY_NAMES.join(', ')}`);
  const cpuAdapter = values.adapter ? await loadAdapter(values.adapter) : undefined;
  const { gpu, model } = await open(values);
  let adapter: GpuAdapter | undefined;
  if (cpuAdapter) {
    checkAdapter(cpuAdapter, model.config);
    adapter = await uploadAdapter(gpu, cpuAdapter, `adapter:${values.adapter}`);
  }
  return { gpu, model, adapter, memory: memoryOptions(policy, values, cpuAdapter) };
}

function memoryOptions(policy: PolicyName, values: CliValues, adapter: Adapter | undefined): MemoryOptions {
  const int = (flag: 'window' | 'sinks' | 'evict-chunk' | 'budget' | 'comp-tokens') =>
    parseNumber(values[flag], `--${flag}`, true);
  if (policy === 'full') return { policy };
  if (policy === 'window') {
    return { policy, window: int('window') ?? 256, sinks: int('sinks'), evictChunk: int('evict-chunk') };
  }
  if (!adapter || adapter.config.method !== 'ccm') throw invalidInput(`--memory ${policy} needs a CCM --adapter`);
  const mode = policy === 'ccm-concat' ? 'concat' : 'merge';
  if (adapter.config.mode !== mode) {
    throw invalidInput(`the adapter was trained for ccm-${adapter.config.mode}, not ${policy}`);
  }
  const n = int('comp-tokens') ?? adapter.config.compTokens;
  if (n !== adapter.config.compTokens) {
    throw invalidInput(`--comp-tokens ${n}, but the adapter was trained with ${adapter.config.compTokens}`);
  }
  return { policy, compTokens: n, sink: adapter.config.sink, budget: int('budget') };
}

export async function memoryLogitsCommand(values: CliValues): Promise<void> {
  const { gpu, model, adapter, memory } = await setup(values);
  if (!memory.policy.startsWith('ccm')) throw invalidInput('memory-logits needs --memory ccm-concat or ccm-merge');
  const chunks = required(values.chunks, '--chunks')
    .split('/')
    .map((c) => parseIds(c, '--chunks'));
  const input = parseIds(required(values.input, '--input'), '--input');
  const total = chunks.reduce((n, c) => n + c.length, 0) + input.length;
  const session = new Session(model, { capacity: Math.min(model.config.maxPositions, total + 64), memory, adapter });
  for (const chunk of chunks) {
    await session.feed(chunk);
    await session.endTurn();
  }
  const [logits] = await session.logits(input);
  console.log(JSON.stringify({ logits: Array.from(logits!), memory: session.stats() }));
  gpu.destroy();
}

export async function chatCommand(values: CliValues): Promise<void> {
  const turns = JSON.parse(await readFile(required(values.turns, '--turns'), 'utf8')) as unknown;
  if (!Array.isArray(turns) || !turns.every((t) => typeof t === 'string' && t.length > 0)) {
    throw invalidInput('--turns must be a JSON list of non-empty user messages');
  }
  const { gpu, model, adapter, memory } = await setup(values);
  if (!model.tokenizer) throw invalidInput(`${model.id} has no tokenizer.json: chat needs one`);
  const capacity = parseNumber(values.capacity, '--capacity', true);
  const session = new Session(model, { capacity, memory, adapter });
  const chat = new Chat(session, model.tokenizer);
  for (const text of turns as string[]) {
    const stream = chat.send(text, {
      maxNewTokens: parseNumber(values['max-new-tokens'], '--max-new-tokens', true) ?? 64,
      ...sampling(values),
    });
    let step = await stream.next();
    while (!step.done) {
      if (!values.json) process.stdout.write(step.value.delta);
      step = await stream.next();
    }
    const { text: reply, ids } = step.value;
    if (values.json) console.log(JSON.stringify({ reply, ids, memory: session.stats() }));
    else process.stdout.write('\n');
  }
  gpu.destroy();
}
