import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { loadConfig } from '../../src/model/config.js';
import { convertLlama2c, type Llama2cVocab, parseLlama2cTokenizer } from '../../src/model/llama2c.js';
import { checkAgainstConfig, readTensorBytes, readWeightIndex, toF32 } from '../../src/model/safetensors.js';
import { memorySource } from '../../src/model/source.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { referenceGreedy } from '../../src/reference/llama.js';

const DIR = resolve('../shared/fixtures/stories260K');
const bin = new Uint8Array(readFileSync(`${DIR}/stories260K.bin`));
const tokBin = new Uint8Array(readFileSync(`${DIR}/tok512.bin`));
const golden = JSON.parse(readFileSync(`${DIR}/golden.json`, 'utf8')).cases[0] as {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  text: string;
};
const files = convertLlama2c(bin, tokBin);
const src = memorySource(files, 'stories260K');
const tokenizer = await TextTokenizer.load(src);

/** A direct port of llama2.c run.c encode(): the behaviour tokenizer.json must reproduce. */
function llama2cEncode({ pieces, scores }: Llama2cVocab, text: string): number[] {
  const lookup = new Map(pieces.map((p, i) => [p, i]));
  const tokens = [1];
  if (text !== '') tokens.push(lookup.get(' ')!);
  for (const ch of text) {
    const id = lookup.get(ch);
    if (id !== undefined) tokens.push(id);
    else for (const b of new TextEncoder().encode(ch)) tokens.push(b + 3);
  }
  for (;;) {
    let best = -1e10;
    let at = -1;
    let bestId = -1;
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = lookup.get(pieces[tokens[i]!]! + pieces[tokens[i + 1]!]!);
      if (id !== undefined && scores[id]! > best) [best, at, bestId] = [scores[id]!, i, id];
    }
    if (at < 0) return tokens;
    tokens.splice(at, 2, bestId);
  }
}

function expectCode(f: () => unknown, code: string, message: RegExp) {
  try {
    f();
  } catch (e) {
    expect(isCcmemError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected an error');
}

describe('convertLlama2c on stories260K', () => {
  it('writes a Hugging Face folder whose config and weights agree', async () => {
    expect(Object.keys(files).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const config = await loadConfig(src);
    expect(config).toMatchObject({
      architecture: 'llama',
      hiddenSize: 64,
      intermediateSize: 172,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      vocabSize: 512,
      maxPositions: 512,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      tieWordEmbeddings: true,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
    const index = await readWeightIndex(src);
    checkAgainstConfig(index, config);
    expect(index.has('lm_head.weight')).toBe(false);
    // the embedding is the first array after the 28-byte header, copied unchanged
    const embed = toF32(
      index.get('model.embed_tokens.weight')!,
      await readTensorBytes(src, index.get('model.embed_tokens.weight')!),
    );
    expect(embed).toEqual(new Float32Array(bin.slice(28, 28 + 512 * 64 * 4).buffer));
  });

  it('reproduces llama2.c greedy decoding (checks the q/k RoPE row permutation)', async () => {
    const config = await loadConfig(src);
    const index = await readWeightIndex(src);
    const tensors = new Map<string, Float32Array>();
    for (const info of index.values()) tensors.set(info.name, toF32(info, await readTensorBytes(src, info)));
    const got = referenceGreedy({ config, tensors }, golden.prompt_ids, 24);
    expect(got).toEqual(golden.greedy_ids.slice(0, 24));
  });

  it('encodes the golden prompt and decodes the golden continuation', () => {
    expect(tokenizer.encode(golden.prompt)).toEqual(golden.prompt_ids);
    expect(tokenizer.bosTokenId).toBe(1);
    expect(tokenizer.eosTokenIds).toEqual([2]);
    expect(tokenizer.vocabSize).toBe(512);
    // run.c prints the prompt's pieces, then the generated ones, then a final newline
    const all = [...golden.prompt_ids, ...golden.greedy_ids];
    expect(`${tokenizer.decode(all, { skipSpecialTokens: true })}\n`).toBe(golden.text);
    expect(tokenizer.decode(all.slice(0, 3))).toBe('<s> Once upon');
  });

  it('encodes like llama2.c on other texts, including byte fallback', () => {
    const vocab = parseLlama2cTokenizer(tokBin, 512);
    for (const text of ['', ' ', 'a', 'Hello  world!\n', 'Lily said, "I\'m happy."', 'naïve café – 日本 🙂', '▁x']) {
      const ids = tokenizer.encode(text);
      expect(ids, text).toEqual(llama2cEncode(vocab, text));
      expect(tokenizer.decode(ids, { skipSpecialTokens: true }), text).toBe(text);
    }
  });

  it('matches the llama2.c encoder on random texts built from vocabulary pieces', () => {
    const vocab = parseLlama2cTokenizer(tokBin, 512);
    const piece = fc.oneof(
      fc.constantFrom(...vocab.pieces.slice(259)),
      fc.constantFrom(' ', '  ', '\n', 'é', '日', '🙂'),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (parts) => {
        const text = parts.join('');
        const ids = tokenizer.encode(text);
        expect(ids).toEqual(llama2cEncode(vocab, text));
        expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes without the leading space after BOS only once', () => {
    const ids = tokenizer.encode(' two spaces');
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe(' two spaces');
  });
});

describe('convertLlama2c rejects broken files', () => {
  it('truncated checkpoint and header', () => {
    expectCode(
      () => convertLlama2c(bin.slice(0, bin.length - 4)),
      'MODEL_FORMAT',
      /truncated: 1056536 bytes, the header implies 1056540/,
    );
    expectCode(() => convertLlama2c(bin.slice(0, 20)), 'MODEL_FORMAT', /truncated: 20 bytes/);
  });

  it('trailing bytes, corrupt header fields, newer export versions', () => {
    const longer = new Uint8Array(bin.length + 8);
    longer.set(bin);
    expectCode(() => convertLlama2c(longer), 'MODEL_FORMAT', /header implies 1056540/);
    const corrupt = bin.slice();
    new DataView(corrupt.buffer).setInt32(12, 7, true); // n_heads 7 does not divide dim 64
    expectCode(() => convertLlama2c(corrupt), 'MODEL_FORMAT', /dim 64 must split into 7 heads/);
    new DataView(corrupt.buffer).setInt32(12, 0, true);
    expectCode(() => convertLlama2c(corrupt), 'MODEL_FORMAT', /n_heads = 0/);
    const v1 = bin.slice();
    new DataView(v1.buffer).setUint32(0, 0x616b3432, true);
    new DataView(v1.buffer).setInt32(4, 1, true);
    expectCode(() => convertLlama2c(v1), 'UNSUPPORTED_MODEL', /version 1 export/);
  });

  it('an unshared classifier becomes lm_head', async () => {
    const unshared = new Uint8Array(bin.length + 512 * 64 * 4);
    unshared.set(bin);
    const view = new DataView(unshared.buffer);
    view.setInt32(20, -512, true);
    for (let i = 0; i < 512 * 64; i++) view.setFloat32(bin.length + i * 4, i, true);
    const s = memorySource(convertLlama2c(unshared), 'unshared');
    const config = await loadConfig(s);
    expect(config.tieWordEmbeddings).toBe(false);
    const index = await readWeightIndex(s);
    checkAgainstConfig(index, config);
    const head = toF32(index.get('lm_head.weight')!, await readTensorBytes(s, index.get('lm_head.weight')!));
    expect(head[1000]).toBe(1000);
  });

  it('truncated or mismatched tokenizer', () => {
    expectCode(
      () => convertLlama2c(bin, tokBin.slice(0, 3000)),
      'MODEL_FORMAT',
      /tokenizer truncated at token \d+ of 512/,
    );
    const extra = new Uint8Array(tokBin.length + 4);
    extra.set(tokBin);
    expectCode(() => convertLlama2c(bin, extra), 'MODEL_FORMAT', /4 bytes left after 512 tokens/);
    const badLen = tokBin.slice();
    new DataView(badLen.buffer).setInt32(8, 9999, true); // token 0's length
    expectCode(() => convertLlama2c(bin, badLen), 'MODEL_FORMAT', /token 0 has length 9999/);
  });
});
