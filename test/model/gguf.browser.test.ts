// A GGUF file in headless Chromium: stories260K written as one F32 GGUF file (its SentencePiece vocabulary
// with "▁" pieces and scores), served over HTTP by the dev server and loaded by URL inside a module worker
// on SwiftShader WebGPU (the header read in ranges, the tokenizer from the metadata), reproduces llama2.c's
// greedy output exactly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateReport, GenerateRequest } from '../browser/generate/worker.js';
import { type BrowserEnv, runInWorker, type ServedModel, serveModel, startBrowserEnv } from '../helpers/browser.js';
import { storiesGguf } from '../helpers/ggufModel.js';
import { storiesGolden } from '../helpers/stories.js';

describe('a GGUF file in a browser worker', () => {
  let env: BrowserEnv | undefined;
  let served: ServedModel | undefined;
  beforeAll(async () => {
    env = await startBrowserEnv();
    served = serveModel(env, 'stories260K-gguf', { 'stories260K.gguf': await storiesGguf() });
  });
  afterAll(async () => {
    served?.remove();
    await env?.close();
  });

  it('stories260K.gguf loads by URL and reproduces llama2.c greedy decoding token for token', async () => {
    const golden = storiesGolden();
    const request: GenerateRequest = {
      modelUrl: `${served!.url}stories260K.gguf`,
      prompt: golden.prompt,
      promptIds: golden.prompt_ids,
      maxNewTokens: golden.greedy_ids.length,
      capacity: 128,
    };
    const r = await env!.withPage('/test/browser/generate/', (page) =>
      runInWorker<GenerateReport>(page, request, 150_000),
    );
    expect(r.weightFormat).toBe('f32');
    expect(r.encodedPrompt).toEqual(golden.prompt_ids);
    expect(r.ids).toEqual(golden.greedy_ids);
    expect(`${golden.prompt}${r.text}\n`).toBe(golden.text);
    expect(Object.keys(r.ledgerAfter.byOwner).filter((o) => o !== 'gpu')).toEqual([]);
  });
});
