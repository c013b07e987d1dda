// Uploads a model's tensors to the GPU one at a time (read one tensor, convert, write, drop), so the JS
// heap never holds a second full copy of the weights. Matrices take the chosen weight format; norms and
// biases stay f32 (they are small and read on every row). A layer matrix the reader has as Q8_0/Q4_0
// blocks (readBlocks, GGUF files) stays in its blocks (QuantMatrix, read by kernels/matmul_q.ts).
import type { Gpu } from '../gpu/device.js';
import {
  canBlock,
  createTensor,
  encodeRows,
  storageBytes,
  type Tensor,
  uploadTensor,
  type WeightFormat,
} from '../gpu/tensor.js';
import { type QuantFormat, type QuantMatrix, uploadQuantMatrix } from '../kernels/matmul_q.js';
import { ropeInvFreq } from './rope-freq.js';
import { expectedShapes, GLOBAL_TENSOR_NAMES, layerTensorNames, type ModelConfig } from './types.js';

/** A layer matrix: float, or Q8_0/Q4_0 blocks. */
export type Weight = Tensor | QuantMatrix;

export interface LayerWeights {
  inputNorm: Tensor;
  q: Weight;
  k: Weight;
  v: Weight;
  o: Weight;
  qBias: Tensor | undefined;
  kBias: Tensor | undefined;
  vBias: Tensor | undefined;
  postNorm: Tensor;
  /** gate_proj and up_proj stacked, [2 * intermediate, hidden]: the fused gate/up + SwiGLU pass reads both. */
  gateUp: Weight;
  down: Weight;
}

export interface ModelWeights {
  format: WeightFormat;
  embed: Tensor;
  finalNorm: Tensor;
  /** The same tensor as `embed` when the embeddings are tied. */
  lmHead: Tensor;
  layers: LayerWeights[];
  invFreq: Tensor;
}

/** Returns one tensor's values as f32 (row-major, Hugging Face layout). */
export type TensorReader = (name: string) => Promise<Float32Array>;

/** One matrix as Q8_0/Q4_0 blocks in Hugging Face row order, or undefined when it has no such blocks. */
export type BlockReader = (name: string) => Promise<{ format: QuantFormat; blocks: Uint8Array } | undefined>;

export interface UploadOptions {
  format: WeightFormat;
  owner: string;
  onTensor?: (name: string, index: number, total: number) => void;
  /** Blocked matrix layout where it fits (Tensor.blocked); by default on CPU-emulated adapters only. */
  blocked?: boolean;
  /** Layer matrices that are to stay in their blocks; by default none. */
  readBlocks?: BlockReader;
}

export async function uploadWeights(
  gpu: Gpu,
  config: ModelConfig,
  read: TensorReader,
  options: UploadOptions,
): Promise<ModelWeights> {
  const { owner, format } = options;
  const total = expectedShapes(config).size;
  let done = 0;
  // CPU-emulated adapters read blocked matrices much faster (Tensor.blocked); GPUs read row-major ones
  const blocked = (shape: number[]) => (options.blocked ?? gpu.features.cpuEmulated) && canBlock(format, shape);
  const put = async (name: string, shape: number[], asMatrix: boolean): Promise<Tensor> => {
    const values = await read(name);
    const t = uploadTensor(
      gpu,
      {
        tag: 'weights',
        owner,
        label: name,
        shape,
        format: asMatrix ? format : 'f32',
        blocked: asMatrix && blocked(shape),
      },
      values,
    );
    options.onTensor?.(name, ++done, total);
    return t;
  };
  /** A layer matrix: its blocks when the reader keeps them, else as `put` uploads it. */
  const layerMatrix = async (name: string, shape: [number, number]): Promise<Weight> => {
    const q = await options.readBlocks?.(name);
    if (!q) return put(name, shape, true);
    const t = uploadQuantMatrix(gpu, { tag: 'weights', owner, label: name }, q.format, shape, q.blocks);
    options.onTensor?.(name, ++done, total);
    return t;
  };
  /** Matrices of one shape stacked row-wise into one tensor, uploaded one at a time. */
  const stack = async (label: string, names: string[], shape: [number, number]): Promise<Weight> => {
    const parts = await Promise.all(names.map((name) => options.readBlocks?.(name)));
    const blockFormat = parts[0]?.format;
    if (blockFormat && parts.every((p) => p?.format === blockFormat)) {
      // row-major blocks: the stacked matrix is the concatenation of the parts
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p!.blocks.byteLength, 0));
      let at = 0;
      for (const p of parts) {
        bytes.set(p!.blocks, at);
        at += p!.blocks.byteLength;
      }
      const t = uploadQuantMatrix(
        gpu,
        { tag: 'weights', owner, label },
        blockFormat,
        [names.length * shape[0], shape[1]],
        bytes,
      );
      for (const name of names) options.onTensor?.(name, ++done, total);
      return t;
    }
    // whole 32-row blocks per matrix, so the stack of blocked matrices is the blocked stack
    const b = blocked(shape);
    const t = createTensor(gpu, {
      tag: 'weights',
      owner,
      label,
      shape: [names.length * shape[0], shape[1]],
      format,
      blocked: b,
    });
    const bytesPerMatrix = storageBytes(format, shape);
    for (const [i, name] of names.entries()) {
      gpu.write(t.buffer, encodeRows(await read(name), shape, format, b), i * bytesPerMatrix);
      options.onTensor?.(name, ++done, total);
    }
    return t;
  };
  const { hiddenSize: d, intermediateSize: f, headDim: hd } = config;
  const qDim = config.numHeads * hd;
  const kvDim = config.numKvHeads * hd;
  const embed = await put(GLOBAL_TENSOR_NAMES.embed, [config.vocabSize, d], true);
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const n = layerTensorNames(i);
    const bias = async (name: string, dim: number) => (config.attentionBias ? put(name, [dim], false) : undefined);
    layers.push({
      inputNorm: await put(n.inputNorm, [d], false),
      q: await layerMatrix(n.q, [qDim, d]),
      k: await layerMatrix(n.k, [kvDim, d]),
      v: await layerMatrix(n.v, [kvDim, d]),
      o: await layerMatrix(n.o, [d, qDim]),
      qBias: await bias(n.qBias, qDim),
      kBias: await bias(n.kBias, kvDim),
      vBias: await bias(n.vBias, kvDim),
      postNorm: await put(n.postNorm, [d], false),
      gateUp: await stack(`model.layers.${i}.mlp.gate_up`, [n.gate, n.up], [f, d]),
      down: await layerMatrix(n.down, [d, f]),
    });
  }
  const finalNorm = await put(GLOBAL_TENSOR_NAMES.finalNorm, [d], false);
  const lmHead = config.tieWordEmbeddings ? embed : await put(GLOBAL_TENSOR_NAMES.lmHead, [config.vocabSize, d], true);
  const invFreq = uploadTensor(
    gpu,
    { tag: 'weights', owner, label: 'rope.inv_freq', shape: [hd / 2] },
    ropeInvFreq(hd, config.ropeTheta, config.ropeScaling),
  );
  return { format, embed, finalNorm, lmHead, layers, invFreq };
}

/** Bytes the weights will occupy on the GPU in `format` (checked against the device before loading). */
export function weightBytes(config: ModelConfig, format: WeightFormat): number {
  let bytes = storageBytes('f32', [config.headDim / 2]);
  for (const shape of expectedShapes(config).values()) bytes += storageBytes(shape.length > 1 ? format : 'f32', shape);
  return bytes;
}
