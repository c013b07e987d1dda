// GGUF test files: stories260K with its SentencePiece vocabulary, and models with K-quant tensors (there
// is no K-quant quantizer here: random blocks with scales that keep the weights O(1 / sqrt(fan_in))) with
// the f32 Hugging Face tensors they hold.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToF16Bits } from '../../src/gpu/half.js';
import { parseConfig } from '../../src/model/config.js';
import { encodeGguf, ggufMetadata, type RawTensor, writeGguf } from '../../src/model/gguf.js';
import { ggufTensorName } from '../../src/model/gguf-model.js';
import { parseLlama2cTokenizer, rotateHalfRows } from '../../src/model/llama2c.js';
import { dequantize, QUANT_TYPES, type QuantType } from '../../src/model/quant.js';
import { readTensorBytes, readWeightIndex, toF32 } from '../../src/model/safetensors.js';
import { memorySource } from '../../src/model/source.js';
import { expectedShapes, layerTensorNames, type ModelConfig } from '../../src/model/types.js';
import { mulberry32 } from '../../src/util/random.js';
import { type RandomModelOptions, randomModel } from './randomModel.js';
import { FIXTURES, storiesFiles } from './stories.js';

/** Random blocks of a K-quant whose values stay O(1 / sqrt(cols)). */
function kQuantBlocks(type: 'Q4_K' | 'Q6_K', count: number, seed: number, cols: number): Uint8Array {
  const r = mulberry32(seed);
  const { blockSize, blockBytes } = QUANT_TYPES[type];
  const out = new Uint8Array((count / blockSize) * blockBytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  const v = new DataView(out.buffer);
  const scale = Math.sqrt(3 / cols);
  for (let b = 0; b < out.length / blockBytes; b++) {
    const at = b * blockBytes;
    if (type === 'Q4_K') {
      v.setUint16(at, f32ToF16Bits((2 * scale) / (63 * 15)), true); // d
      v.setUint16(at + 2, f32ToF16Bits(scale / 63), true); // dmin
    } else v.setUint16(at + 208, f32ToF16Bits(scale / (127 * 32)), true);
  }
  return out;
}

/** A file like a Q4_K_M one: matrices Q4_K, the down projections and the embedding Q6_K, norms F32. */
export function kQuantModel(opts: RandomModelOptions): {
  bytes: Uint8Array;
  config: ModelConfig;
  want: Map<string, Float32Array>;
} {
  const m = randomModel(opts);
  const c = m.config;
  const tensors: RawTensor[] = [];
  const want = new Map<string, Float32Array>();
  let seed = opts.seed * 100;
  for (const [hfName, shape] of expectedShapes(c)) {
    const name = ggufTensorName(hfName);
    const ne = [...shape].reverse();
    if (shape.length === 1) {
      const values = m.tensors.get(hfName)!;
      tensors.push({ name, ne, type: 0, bytes: new Uint8Array(values.slice().buffer) });
      want.set(hfName, values);
      continue;
    }
    const type: QuantType = /down|embed/.test(hfName) ? 'Q6_K' : 'Q4_K';
    const bytes = kQuantBlocks(type, shape[0]! * shape[1]!, seed++, shape[1]!);
    tensors.push({ name, ne, type: QUANT_TYPES[type].code, bytes });
    const values = dequantize(type, bytes);
    const n = layerTensorNames(Number(/\d+/.exec(hfName)?.[0] ?? 0));
    const heads = hfName === n.q ? c.numHeads : hfName === n.k ? c.numKvHeads : 0;
    want.set(hfName, heads ? rotateHalfRows(values, heads, c.headDim, shape[1]!) : values);
  }
  return { bytes: encodeGguf(ggufMetadata(c, { dtype: 'f32' }), tensors), config: c, want };
}

/** stories260K's Hugging Face tensors as an F32 GGUF file with its SentencePiece vocabulary ("▁" pieces, scores). */
export async function storiesGguf(): Promise<Uint8Array> {
  const src = memorySource(storiesFiles());
  const index = await readWeightIndex(src);
  const tensors = new Map<string, Float32Array>();
  for (const [name, info] of index) tensors.set(name, toF32(info, await readTensorBytes(src, info)));
  const config = parseConfig(JSON.parse(storiesFiles()['config.json'] as string));
  const tok = readFileSync(join(FIXTURES, 'stories260K/tok512.bin'));
  const { pieces, scores } = parseLlama2cTokenizer(tok, config.vocabSize);
  // llama2.c stores "▁" as a plain space; a GGUF SentencePiece vocabulary keeps "▁"
  const tokens = pieces.map((p, i) => (i < 3 ? ['<unk>', '<s>', '</s>'][i]! : p.replaceAll(' ', '▁')));
  return writeGguf({ config, tensors }, { dtype: 'f32', tokens, scores });
}
