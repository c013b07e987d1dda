// `ccmem convert llama2c` (llama2.c checkpoint -> Hugging Face folder) and `ccmem convert gguf`
// (Hugging Face folder -> GGUF, so llama.cpp peers run the very same weights).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidInput } from '../errors.js';
import { loadConfig } from '../model/config.js';
import { writeGguf } from '../model/gguf.js';
import { convertLlama2c } from '../model/llama2c.js';
import { checkAgainstConfig, readTensorBytes, readWeightIndex, toF32 } from '../model/safetensors.js';
import { openSource } from '../model/source.js';
import { required } from './args.js';
import type { CliValues } from './main.js';

export async function convertLlama2cCommand(file: string | undefined, values: CliValues): Promise<void> {
  const bin = await readFile(required(file, 'convert llama2c FILE.bin'));
  const tok = values.tokenizer ? await readFile(values.tokenizer) : undefined;
  const out = required(values.out, '--out');
  const files = convertLlama2c(new Uint8Array(bin), tok && new Uint8Array(tok));
  await mkdir(out, { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(join(out, name), data);
}

export async function convertGgufCommand(dir: string | undefined, values: CliValues): Promise<void> {
  const dtype = values.dtype ?? 'f16';
  if (dtype !== 'f32' && dtype !== 'f16') throw invalidInput(`--dtype must be f32 or f16, got ${dtype}`);
  const src = openSource(required(dir, 'convert gguf DIR'));
  const config = await loadConfig(src);
  const index = await readWeightIndex(src);
  checkAgainstConfig(index, config);
  const tensors = new Map<string, Float32Array>();
  for (const info of index.values()) tensors.set(info.name, toF32(info, await readTensorBytes(src, info)));
  const vocab = (await src.exists('tokenizer.json'))
    ? ggufVocab(await src.json('tokenizer.json'), config.vocabSize)
    : undefined;
  await writeFile(required(values.out, '--out'), writeGguf({ config, tensors }, { dtype, ...vocab }));
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
