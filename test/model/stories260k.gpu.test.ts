// Conformance on a real pretrained model: stories260K converted from llama2.c reproduces llama2.c's own
// greedy output exactly, and the f16 weight paths agree with f32 on every forced-decoding position.
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { loadModel } from '../../src/model/load.js';
import { testGpu, weightFormats } from '../helpers/gpu.js';
import { argmax } from '../helpers/gpuModel.js';
import { storiesGolden, storiesModelDir } from '../helpers/stories.js';

describe('stories260K (real weights)', () => {
  it('greedy decoding reproduces llama2.c token for token, and the text', async () => {
    const gpu = await testGpu();
    const golden = storiesGolden();
    const model = await loadModel(gpu, storiesModelDir(), { format: 'f32' });
    expect(model.tokenizer!.encode(golden.prompt, { addSpecialTokens: true })).toEqual(golden.prompt_ids);
    const session = new Session(model, { capacity: 128 }); // llama2.c's 128 steps
    const stream = session.generate(golden.prompt_ids, { maxNewTokens: golden.greedy_ids.length, temperature: 0 });
    let streamed = '';
    let next = await stream.next();
    while (!next.done) {
      streamed += next.value.delta;
      next = await stream.next();
    }
    const result = next.value;
    expect(result.ids).toEqual(golden.greedy_ids);
    expect(result.finishReason).toBe('length');
    expect(streamed).toBe(result.text);
    expect(`${golden.prompt}${result.text}\n`).toBe(golden.text); // run.c ends its output with a newline
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('f16 weights agree with f32 on the top-1 token at all 128 forced-decoding positions', async () => {
    const gpu = await testGpu();
    const golden = storiesGolden();
    const sequence = [...golden.prompt_ids, ...golden.greedy_ids].slice(0, 128);
    const top1: Record<string, number[]> = {};
    for (const format of weightFormats(gpu)) {
      const model = await loadModel(gpu, storiesModelDir(), { format });
      const session = new Session(model, { capacity: 128, chunk: 64, logitRows: 64 });
      top1[format] = (await session.logits(sequence, { all: true })).map(argmax);
      session.dispose();
      gpu.releaseOwner(model.owner);
    }
    expect(top1.f32!.slice(golden.prompt_ids.length - 1)).toEqual(golden.greedy_ids);
    for (const format of weightFormats(gpu).filter((f) => f !== 'f32')) {
      const agree = top1[format]!.filter((id, i) => id === top1.f32![i]).length;
      expect(agree, `${format} top-1 agreement over 128 positions`).toBe(128);
    }
  });
});
