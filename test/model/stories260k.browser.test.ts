// End-to-end conformance in headless Chromium: stories260K, converted from llama2.c in this process and
// served over HTTP by the dev server, is loaded by byte ranges and decoded greedily with a Session inside
// a module worker on SwiftShader WebGPU (no shader-f16), and must reproduce llama2.c's output exactly.
import { describe, expect, it } from 'vitest';
import type { GenerateReport, GenerateRequest } from '../browser/generate/worker.js';
import { browserEnvWithStories, runInWorker } from '../helpers/browser.js';
import { storiesGolden } from '../helpers/stories.js';

describe('stories260K in a browser worker', () => {
  const { env, modelUrl } = browserEnvWithStories();

  it('loads over HTTP and reproduces llama2.c greedy decoding token for token', async () => {
    const golden = storiesGolden();
    const request: GenerateRequest = {
      modelUrl: modelUrl(),
      prompt: golden.prompt,
      promptIds: golden.prompt_ids,
      maxNewTokens: golden.greedy_ids.length,
      capacity: 128, // llama2.c's 128 steps
    };
    const r = await env().withPage('/test/browser/generate/', (page) =>
      runInWorker<GenerateReport>(page, request, 150_000),
    );
    console.info(
      `stories260K in Chromium/SwiftShader: load ${r.seconds.load.toFixed(1)} s, ` +
        `${r.ids.length} tokens in ${r.seconds.generate.toFixed(1)} s`,
    );

    expect(r.adapter.toLowerCase()).toContain('swiftshader');
    expect(r.f16).toBe(false);
    expect(r.weightFormat).toBe('f32');
    // The weights streamed in several ranged reads, never one whole-file GET.
    expect(r.weightRanges.length).toBeGreaterThan(1);
    for (const range of r.weightRanges) expect(range).toMatch(/^bytes=\d+-\d+$/);

    expect(r.encodedPrompt).toEqual(golden.prompt_ids);
    expect(r.ids).toEqual(golden.greedy_ids);
    expect(r.finishReason).toBe('length');
    expect(r.deltas).toHaveLength(golden.greedy_ids.length);
    expect(r.deltas.join('')).toBe(r.text);
    expect(`${golden.prompt}${r.text}\n`).toBe(golden.text); // run.c ends its output with a newline

    expect(r.ledgerDuring.byOwner[r.owners.model]).toBeGreaterThan(0);
    expect(r.ledgerDuring.byOwner[r.owners.session]).toBeGreaterThan(0);
    // Only the device's own uniform arena (owner 'gpu', alive as long as the device) may remain.
    expect(Object.keys(r.ledgerAfter.byOwner).filter((o) => o !== 'gpu')).toEqual([]);
    for (const tag of ['weights', 'kv', 'staging'] as const) expect(r.ledgerAfter.byTag[tag].current, tag).toBe(0);
  });
});
