import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { loadConfig, parseConfig } from '../../src/model/config.js';
import { memorySource, openSource } from '../../src/model/source.js';

const FIXTURES = resolve('../shared/fixtures');
const fixture = (name: string) => JSON.parse(readFileSync(`${FIXTURES}/${name}/config.json`, 'utf8'));

const base = {
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 100,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
};

function rejects(config: unknown, code: string, message: RegExp, generation?: unknown) {
  try {
    parseConfig(config, generation);
  } catch (e) {
    expect(isCcmemError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error(`accepted ${JSON.stringify(config)}`);
}

describe('parseConfig', () => {
  it('reads the real SmolLM2-135M config', () => {
    expect(parseConfig(fixture('smollm2-135m'))).toEqual({
      architecture: 'llama',
      hiddenSize: 576,
      intermediateSize: 1536,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      vocabSize: 49152,
      rmsNormEps: 1e-5,
      ropeTheta: 100000,
      ropeScaling: { type: 'none' },
      maxPositions: 8192,
      tieWordEmbeddings: true,
      attentionBias: false,
      bosTokenId: 1,
      eosTokenIds: [2],
      torchDtype: 'BF16',
    });
  });

  it('reads the real Llama-3.2-1B config with llama3 rope scaling', async () => {
    const c = await loadConfig(openSource(`${FIXTURES}/llama-3.2-1b`));
    expect(c).toMatchObject({
      hiddenSize: 2048,
      numLayers: 16,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      vocabSize: 128256,
      ropeTheta: 500000,
      maxPositions: 131072,
      tieWordEmbeddings: true,
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
  });

  it('applies defaults: kv heads = heads, head_dim = hidden / heads, no scaling, untied', () => {
    const c = parseConfig({ ...base, rms_norm_eps: undefined, max_position_embeddings: null });
    expect(c).toMatchObject({ numKvHeads: 4, headDim: 16, rmsNormEps: 1e-6, ropeTheta: 10000, maxPositions: 2048 });
    expect(c).toMatchObject({ ropeScaling: { type: 'none' }, tieWordEmbeddings: false, attentionBias: false });
    expect(c).toMatchObject({ bosTokenId: undefined, eosTokenIds: [], torchDtype: undefined });
  });

  it('honours an explicit head_dim and linear scaling ("type" key)', () => {
    const c = parseConfig({ ...base, head_dim: 32, rope_scaling: { type: 'linear', factor: 2 } });
    expect(c.headDim).toBe(32);
    expect(c.ropeScaling).toEqual({ type: 'linear', factor: 2 });
    expect(parseConfig({ ...base, rope_scaling: { rope_type: 'default' } }).ropeScaling).toEqual({ type: 'none' });
  });

  it('reads mistral and qwen2 (qwen2 always has q/k/v biases)', () => {
    const m = parseConfig({ ...base, model_type: 'mistral', num_key_value_heads: 2, sliding_window: null });
    expect(m).toMatchObject({ architecture: 'mistral', numKvHeads: 2, attentionBias: false });
    expect(parseConfig({ ...base, model_type: 'mistral', sliding_window: 4096 }).architecture).toBe('mistral');
    const q = parseConfig({
      ...base,
      model_type: 'qwen2',
      sliding_window: 64,
      use_sliding_window: false,
      torch_dtype: 'float16',
    });
    expect(q).toMatchObject({ architecture: 'qwen2', attentionBias: true, torchDtype: 'F16' });
  });

  it('merges generation_config eos ids without duplicates', () => {
    const c = parseConfig(
      { ...base, bos_token_id: 5, eos_token_id: [2, 7] },
      { eos_token_id: [7, 9], bos_token_id: 5 },
    );
    expect(c.eosTokenIds).toEqual([2, 7, 9]);
    expect(c.bosTokenId).toBe(5);
    expect(parseConfig({ ...base }, { bos_token_id: 3, eos_token_id: 4 })).toMatchObject({
      bosTokenId: 3,
      eosTokenIds: [4],
    });
  });

  it('rejects architectures and options the engine does not implement', () => {
    rejects({ ...base, model_type: 'gpt2' }, 'UNSUPPORTED_MODEL', /model_type "gpt2" is not supported/);
    rejects({ ...base, model_type: 'mixtral' }, 'UNSUPPORTED_MODEL', /model_type "mixtral"/);
    rejects(
      { ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } },
      'UNSUPPORTED_MODEL',
      /"llama".*rope_scaling type "yarn"/,
    );
    rejects({ ...base, rope_scaling: { type: 'dynamic', factor: 2 } }, 'UNSUPPORTED_MODEL', /"dynamic"/);
    rejects(
      { ...base, model_type: 'mistral', sliding_window: 128 },
      'UNSUPPORTED_MODEL',
      /model_type "mistral".*sliding_window 128 < max_position_embeddings 256/,
    );
    rejects(
      { ...base, model_type: 'qwen2', sliding_window: 128, use_sliding_window: true },
      'UNSUPPORTED_MODEL',
      /sliding_window 128/,
    );
    rejects({ ...base, hidden_act: 'gelu' }, 'UNSUPPORTED_MODEL', /hidden_act "gelu"/);
    rejects({ ...base, mlp_bias: true }, 'UNSUPPORTED_MODEL', /mlp_bias/);
    rejects({ ...base, quantization_config: { quant_method: 'gptq' } }, 'UNSUPPORTED_MODEL', /quantization_config/);
    rejects({ ...base, model_type: 'mistral', attention_bias: true }, 'UNSUPPORTED_MODEL', /attention_bias/);
  });

  it('rejects missing or invalid fields, naming them', () => {
    rejects([], 'MODEL_FORMAT', /expected a JSON object/);
    rejects({ ...base, model_type: undefined }, 'MODEL_FORMAT', /missing "model_type"/);
    for (const key of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size']) {
      rejects(
        { ...base, [key]: undefined },
        'MODEL_FORMAT',
        new RegExp(`${key} must be a positive integer, found undefined`),
      );
    }
    rejects({ ...base, hidden_size: 64.5 }, 'MODEL_FORMAT', /hidden_size must be a positive integer, found 64.5/);
    rejects({ ...base, vocab_size: '100' }, 'MODEL_FORMAT', /vocab_size must be a positive integer, found "100"/);
    rejects({ ...base, num_key_value_heads: 3 }, 'MODEL_FORMAT', /4 is not a multiple of num_key_value_heads 3/);
    rejects(
      { ...base, num_attention_heads: 5 },
      'MODEL_FORMAT',
      /hidden_size 64 is not divisible by num_attention_heads 5/,
    );
    rejects({ ...base, head_dim: 3 }, 'MODEL_FORMAT', /head dimension 3 must be even/);
    rejects({ ...base, rms_norm_eps: -1 }, 'MODEL_FORMAT', /rms_norm_eps must be a positive number, found -1/);
    rejects({ ...base, rope_theta: 'big' }, 'MODEL_FORMAT', /rope_theta must be a positive number/);
    rejects({ ...base, tie_word_embeddings: 'yes' }, 'MODEL_FORMAT', /tie_word_embeddings must be true or false/);
    rejects({ ...base, rope_scaling: 2 }, 'MODEL_FORMAT', /rope_scaling must be an object or null/);
    rejects(
      { ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } },
      'MODEL_FORMAT',
      /rope_scaling.low_freq_factor/,
    );
    rejects({ ...base, eos_token_id: [2, 'x'] }, 'MODEL_FORMAT', /config.json: eos_token_id must be a token id/);
    rejects(base, 'MODEL_FORMAT', /generation_config.json: eos_token_id/, { eos_token_id: -1 });
  });
});

describe('loadConfig', () => {
  it('names the source in errors and reads generation_config.json when present', async () => {
    const src = memorySource(
      { 'config.json': JSON.stringify(base), 'generation_config.json': '{"eos_token_id": [3, 4]}' },
      'dir',
    );
    expect((await loadConfig(src)).eosTokenIds).toEqual([3, 4]);
    const bad = memorySource({ 'config.json': JSON.stringify({ ...base, model_type: 'gpt2' }) }, 'dir');
    await expect(loadConfig(bad)).rejects.toThrow(/^dir\/config.json: model_type "gpt2"/);
    await expect(loadConfig(memorySource({}, 'empty'))).rejects.toThrow(/empty: missing file config.json/);
  });
});
