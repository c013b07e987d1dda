// End to end: a generation's deltas and text are its ids decoded in the context of the prompt, i.e.
// decode(prompt + ids) minus decode(prompt): on stories260K (SentencePiece) the first generated token keeps
// its space ("The cat" + " and", not "The catand"), and on the SmolLM2 byte-level vocabulary sampled
// pieces of multi-byte characters come out whole.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { loadModel } from '../../src/model/load.js';
import { memorySource } from '../../src/model/source.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { testGpu } from '../helpers/gpu.js';
import { gpuModel } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';
import { FIXTURES, storiesModelDir } from '../helpers/stories.js';

async function collect(stream: ReturnType<Session['generate']>) {
  const deltas: string[] = [];
  let next = await stream.next();
  while (!next.done) {
    deltas.push(next.value.delta);
    next = await stream.next();
  }
  return { deltas, result: next.value };
}

/** The text `ids` add after `prompt` (special tokens skipped, as generation does). */
function inContext(tok: TextTokenizer, prompt: number[], ids: number[]): string {
  const before = tok.decode(prompt, { skipSpecialTokens: true });
  const all = tok.decode([...prompt, ...ids], { skipSpecialTokens: true });
  expect(all.startsWith(before)).toBe(true);
  return all.slice(before.length);
}

describe('generated text is decoded in context', () => {
  it('stories260K: "The cat" continues with a space', async () => {
    const gpu = await testGpu();
    const model = await loadModel(gpu, storiesModelDir(), { format: 'f32' });
    const tok = model.tokenizer!;
    const session = new Session(model, { capacity: 128 });
    const prompt = tok.encode('The cat');
    const { deltas, result } = await collect(session.generate(prompt, { maxNewTokens: 24, temperature: 0 }));
    expect(result.text).toMatch(/^ \S/); // the "The catand a boy we"
    expect(result.text).toBe(inContext(tok, prompt, result.ids));
    expect(deltas.join('')).toBe(result.text);
    session.dispose();
    gpu.releaseOwner(model.owner);
  });

  it('SmolLM2 tokenizer on a random model: sampled byte pieces, text equals the in-context decoding', async () => {
    const gpu = await testGpu();
    const tok = await TextTokenizer.load(
      memorySource({
        'tokenizer.json': readFileSync(`${FIXTURES}/smollm2-135m/tokenizer.json`, 'utf8'),
        'tokenizer_config.json': JSON.stringify({ bos_token: '<|im_start|>', eos_token: '<|im_end|>' }),
      }),
    );
    const ref = randomModel({
      hidden: 16,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      intermediate: 24,
      vocab: tok.vocabSize,
      seed: 5,
      maxPositions: 128,
    });
    ref.config.eosTokenIds = []; // run every token
    const model = { ...(await gpuModel(gpu, ref, 'f32')), tokenizer: tok };
    const session = new Session(model, { capacity: 128 });
    const prompt = tok.encode('<|im_start|>assistant\nUne fée 🙂 dit');
    const { deltas, result } = await collect(session.generate(prompt, { maxNewTokens: 64, temperature: 1, seed: 3 }));
    expect(result.ids).toHaveLength(64);
    expect(result.text).toBe(inContext(tok, prompt, result.ids));
    expect(deltas.join('')).toBe(result.text);
    // the sample holds pieces of characters (decoded alone: U+FFFD); a delta that showed one early would
    // leave a U+FFFD in the text that the whole decoding does not have
    expect(result.ids.filter((id) => tok.decode([id]).includes('\uFFFD')).length).toBeGreaterThan(0);
    session.dispose();
    gpu.releaseOwner(model.owner);
  });
});
