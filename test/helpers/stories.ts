// The real stories260K fixture (llama2.c checkpoint + tokenizer + golden greedy ids), converted once per
// test file into a Hugging Face folder in a temporary directory.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { convertLlama2c } from '../../src/model/llama2c.js';

export const FIXTURES = resolve('../shared/fixtures');

export interface GoldenCase {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  text: string;
}

export function storiesGolden(): GoldenCase {
  const golden = JSON.parse(readFileSync(join(FIXTURES, 'stories260K/golden.json'), 'utf8')) as { cases: GoldenCase[] };
  return golden.cases[0]!;
}

let files: Record<string, string | Uint8Array> | undefined;
let dir: string | undefined;

/** The Hugging Face files of the converted stories260K model (config.json, model.safetensors, ...). */
export function storiesFiles(): Record<string, string | Uint8Array> {
  files ??= convertLlama2c(
    readFileSync(join(FIXTURES, 'stories260K/stories260K.bin')),
    readFileSync(join(FIXTURES, 'stories260K/tok512.bin')),
  );
  return files;
}

/** A folder holding the converted stories260K model. */
export function storiesModelDir(): string {
  if (dir) return dir;
  const files = storiesFiles();
  dir = mkdtempSync(join(tmpdir(), 'ccmem-stories-'));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return dir;
}
