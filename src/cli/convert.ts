// `ccmem convert llama2c` (llama2.c checkpoint -> Hugging Face folder) and `ccmem convert gguf`
// (Hugging Face folder -> GGUF, so llama.cpp peers run the very same weights; matrices F32, F16, or
// quantized with llama.cpp's reference Q8_0/Q4_0 quantizers).
import { join } from 'node:path';
import { invalidInput } from '../errors.js';
import { loadConfig } from '../model/config.js';
import { type GgufDType, writeGguf } from '../model/gguf.js';
import { convertLlama2c } from '../model/llama2c.js';
import { checkAgainstConfig, readTensorBytes, readWeightIndex, toF32 } from '../model/safetensors.js';
import { openSource } from '../model/source.js';
import { required } from './args.js';
import type { CliValues } from './command.js';
import { makeOutputFolder, readInputFile, writeOutputFile } from './files.js';
import { stderrProgress } from './progress.js';
import { sourceOptions } from './run.js';

export async function convertLlama2cCommand(file: string | undefined, values: CliValues): Promise<void> {
  const out = required(values.out, '--out');
  const path = required(file, 'convert llama2c FILE.bin');
  const progress = stderrProgress();
  const bin = await readInputFile(path, 'checkpoint', (loaded, total) =>
    progress.update(`reading ${path}`, loaded, total),
  );
  const tok = values.tokenizer ? await readInputFile(values.tokenizer, '--tokenizer') : undefined;
  const files = Object.entries(convertLlama2c(bin, tok));
  await makeOutputFolder(out, '--out');
  for (const [i, [name, data]] of files.entries()) {
    progress.update(`writing ${name}`, i, files.length, 'items');
    await writeOutputFile(join(out, name), data, '--out');
  }
  progress.clear();
}

const GGUF_DTYPES: readonly GgufDType[] = ['f32', 'f16', 'q8_0', 'q4_0'];

export async function convertGgufCommand(dir: string | undefined, values: CliValues): Promise<void> {
  const dtype = (values.dtype ?? 'f16') as GgufDType;
  if (!GGUF_DTYPES.includes(dtype))
    throw invalidInput(`--dtype must be one of ${GGUF_DTYPES.join(', ')}, got ${dtype}`);
  const out = required(values.out, '--out');
  const spec = required(dir, 'convert gguf DIR');
  const { revision, remoteHost } = sourceOptions(values, spec);
  const src = openSource(spec, { revision, remoteHost });
  const config = await loadConfig(src);
  const index = await readWeightIndex(src);
  checkAgainstConfig(index, config);
  const tensors = new Map<string, Float32Array>();
  const progress = stderrProgress();
  for (const info of index.values()) {
    progress.update(`converting ${info.name}`, tensors.size, index.size, 'items');
    tensors.set(info.name, toF32(info, await readTensorBytes(src, info)));
  }
  const vocab = (await src.exists('tokenizer.json'))
    ? ggufVocab(await src.json('tokenizer.json'), config.vocabSize)
    : undefined;
  progress.update(`writing ${out}`, index.size, index.size, 'items');
  await writeOutputFile(out, writeGguf({ config, tensors }, { dtype, ...vocab }), '--out');
  progress.clear();
}

/**
 * Token strings by id from a tokenizer.json, padded to the model's vocabulary, for the GGUF vocabulary;
 * undefined (the writer's placeholder vocabulary) when the tokenizer does not fit the model.
 */
function ggufVocab(tokenizer: unknown, vocabSize: number): { tokens: string[] } | undefined {
  const t = tokenizer as {
    model?: { vocab?: Record<string, number> };
    added_tokens?: { id: number; content: string }[];
  };
  const vocab = t.model?.vocab;
  if (!vocab || Array.isArray(vocab)) return undefined;
  const tokens: string[] = [];
  for (const [piece, id] of Object.entries(vocab)) tokens[id] = piece;
  for (const a of t.added_tokens ?? []) tokens[a.id] = a.content;
  if (tokens.length > vocabSize) return undefined;
  for (let i = 0; i < vocabSize; i++) tokens[i] ??= `<unused${i}>`;
  return { tokens };
}
