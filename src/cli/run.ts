// `ccmem generate` and `ccmem logits`: load a model on Dawn (Node), run one request, print text or JSON.

import { Session } from '../engine/session.js';
import { invalidInput } from '../errors.js';
import { acquireGpu, type Gpu } from '../gpu/device.js';
import { nodeGpu } from '../gpu/node.js';
import type { WeightFormat } from '../gpu/tensor.js';
import { type LoadedModel, type LoadOptions, loadModel } from '../model/load.js';
import { isUrlOrHubId } from '../model/source.js';
import { parseIds, parseNumber, required } from './args.js';
import type { CliValues } from './command.js';
import { stopNote } from './finish.js';
import { stderrProgress } from './progress.js';

const FORMATS = ['auto', 'f32', 'f16', 'f16p'] as const;

/** The Dawn device and the weight format the flags ask for. */
export async function openGpu(values: CliValues): Promise<{ gpu: Gpu; format: WeightFormat | 'auto' }> {
  const format = (values.format ?? 'auto') as WeightFormat | 'auto';
  if (!FORMATS.includes(format)) throw invalidInput(`--format must be one of ${FORMATS.join(', ')}`);
  return { gpu: await acquireGpu({ gpu: await nodeGpu() }), format };
}

/**
 * How to fetch model `spec`: a hub id's --revision on the host HF_ENDPOINT names (default huggingface.co),
 * with a progress bar on a terminal's stderr.
 */
export function sourceOptions(
  values: CliValues,
  spec: string,
): Pick<LoadOptions, 'revision' | 'remoteHost' | 'onProgress'> {
  const verb = isUrlOrHubId(spec) ? 'downloading' : 'reading';
  return {
    revision: values.revision,
    remoteHost: process.env.HF_ENDPOINT || undefined,
    onProgress: ({ file, loaded, total }) => stderrProgress().update(`${verb} ${file}`, loaded, total),
  };
}

async function open(values: CliValues): Promise<{ gpu: Gpu; model: LoadedModel }> {
  const { gpu, format } = await openGpu(values);
  const spec = required(values.model, '--model');
  const model = await loadModel(gpu, spec, { format, ...sourceOptions(values, spec) });
  stderrProgress().clear();
  return { gpu, model };
}

function promptIds(values: CliValues, model: LoadedModel): number[] {
  if (values['prompt-ids'] !== undefined) {
    if (values.prompt !== undefined) throw invalidInput('give --prompt or --prompt-ids, not both');
    return parseIds(values['prompt-ids'], '--prompt-ids');
  }
  const text = required(values.prompt, '--prompt or --prompt-ids');
  if (!model.tokenizer) throw invalidInput(`${model.id} has no tokenizer.json: use --prompt-ids`);
  return model.tokenizer.encode(text, { addSpecialTokens: true });
}

/** The sampling flags shared by generate and chat (temperature 0, greedy, by default). */
export function sampling(values: CliValues) {
  return {
    temperature: parseNumber(values.temperature, '--temperature') ?? 0,
    topK: parseNumber(values['top-k'], '--top-k', true),
    topP: parseNumber(values['top-p'], '--top-p'),
    repetitionPenalty: parseNumber(values['repetition-penalty'], '--repetition-penalty'),
    seed: parseNumber(values.seed, '--seed', true),
  };
}

export async function generateCommand(values: CliValues): Promise<void> {
  const { gpu, model } = await open(values);
  const ids = promptIds(values, model);
  const maxNewTokens = parseNumber(values['max-new-tokens'], '--max-new-tokens', true) ?? 128;
  const session = new Session(model, { capacity: Math.min(model.config.maxPositions, ids.length + maxNewTokens + 1) });
  const stream = session.generate(ids, { maxNewTokens, ...sampling(values) });
  if (!values.json && values.prompt !== undefined) process.stdout.write(values.prompt);
  let next = await stream.next();
  while (!next.done) {
    if (!values.json) process.stdout.write(next.value.delta);
    next = await stream.next();
  }
  const result = next.value;
  if (values.json) {
    const { prefillTokensPerSecond, decodeTokensPerSecond } = result.usage;
    console.log(
      JSON.stringify({
        ids: result.ids,
        text: result.text,
        finishReason: result.finishReason,
        timings: { prefillTokensPerSecond, decodeTokensPerSecond },
      }),
    );
  } else {
    process.stdout.write('\n');
  }
  const note = stopNote(result, maxNewTokens, session.stats(), model.config.maxPositions);
  if (note) console.error(note);
  gpu.destroy();
}

export async function logitsCommand(values: CliValues): Promise<void> {
  const { gpu, model } = await open(values);
  const ids = parseIds(required(values['prompt-ids'], '--prompt-ids'), '--prompt-ids');
  const all = Boolean(values.all);
  const session = new Session(model, {
    capacity: Math.min(model.config.maxPositions, ids.length + 1),
    logitRows: all ? 64 : 1,
  });
  const rows = await session.logits(ids, { all });
  const logits = all ? rows.map((r) => Array.from(r)) : Array.from(rows.at(-1) ?? []);
  console.log(JSON.stringify({ logits }));
  gpu.destroy();
}
