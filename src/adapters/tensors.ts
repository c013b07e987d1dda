// An adapter's tensors: the layout its config implies (per layer and target an A and a B, then the
// embedding rows), their shapes in named sizes, and what is built on that: the list of tensors checked
// against a model, the check that an adapter fits a model, and the adapter's fingerprint.
import { modelFormat } from '../errors.js';
import type { ModelConfig } from '../model/types.js';
import { parseAdapterConfig } from './config.js';
import {
  type Adapter,
  type AdapterConfig,
  type BaseModelInfo,
  type LoraTarget,
  loraKey,
  type TensorNaming,
} from './types.js';

// Tensor shapes are written in named sizes. A size not known beforehand (a PEFT import does not say its
// head counts) is learned from the first tensor that has it; every later tensor must agree.
type Dim = 'rank' | 'rows' | 'hidden' | 'qWidth' | 'kvWidth';
export type Dims = Map<Dim, number>;
const DIM_LABEL: Record<Dim, string> = {
  rank: 'rank',
  rows: 'embedding rows',
  hidden: 'hidden size',
  qWidth: 'heads × head dim',
  kvWidth: 'KV heads × head dim',
};
const PROJECTION: Record<LoraTarget, { out: Dim; in: Dim }> = {
  q: { out: 'qWidth', in: 'hidden' },
  k: { out: 'kvWidth', in: 'hidden' },
  v: { out: 'kvWidth', in: 'hidden' },
  o: { out: 'hidden', in: 'qWidth' },
};

/** The sizes a model description fixes (a ModelConfig or an adapter's baseModel). */
export function knownDims(m: Partial<BaseModelInfo>): Dims {
  const d: Dims = new Map();
  if (m.hiddenSize) d.set('hidden', m.hiddenSize);
  if (m.headDim && m.numHeads) d.set('qWidth', m.numHeads * m.headDim);
  if (m.headDim && m.numKvHeads) d.set('kvWidth', m.numKvHeads * m.headDim);
  return d;
}

export function expectShape(what: string, shape: readonly number[], spec: readonly Dim[], dims: Dims): void {
  const ok =
    shape.length === spec.length &&
    spec.every((dim, i) => {
      const known = dims.get(dim);
      if (known === undefined) dims.set(dim, shape[i]!);
      return known === undefined || known === shape[i];
    });
  if (!ok) {
    const expected = spec.map((dim) => `${dims.get(dim) ?? '?'} (${DIM_LABEL[dim]})`);
    throw modelFormat(`${what}: shape [${shape.join(', ')}], expected [${expected.join(', ')}]`);
  }
}

export interface TensorLayout {
  rank: number;
  targets: readonly LoraTarget[];
  embeddingRows: number;
  numLayers: number;
}

interface Slot {
  /** Absent for the embedding rows. */
  lora?: { layer: number; target: LoraTarget; matrix: 'A' | 'B' };
  spec: readonly Dim[];
}

/** Every tensor of an adapter in file order: per layer and target A then B, then the embedding rows. */
export function slots(l: TensorLayout): Slot[] {
  const out: Slot[] = [];
  for (let layer = 0; layer < l.numLayers; layer++) {
    for (const target of l.targets) {
      const p = PROJECTION[target];
      out.push({ lora: { layer, target, matrix: 'A' }, spec: ['rank', p.in] });
      out.push({ lora: { layer, target, matrix: 'B' }, spec: [p.out, 'rank'] });
    }
  }
  if (l.embeddingRows > 0) out.push({ spec: ['rows', 'hidden'] });
  return out;
}

export const layoutOf = (c: AdapterConfig): TensorLayout => ({ ...c, numLayers: c.baseModel.numLayers });
export const withLayout = (dims: Dims, l: TensorLayout): Dims =>
  new Map([...dims, ['rank', l.rank] as const, ['rows', l.embeddingRows] as const]);

export const PROJECT_NAMING: TensorNaming = {
  lora: (layer, target, matrix) => `layers.${layer}.${target}.lora_${matrix}`,
  embeddings: ['embeddings'],
};

export interface AdapterTensor {
  /** Its name in the project format. */
  name: string;
  shape: number[];
  data: Float32Array;
  lora?: Slot['lora'];
}

/**
 * Every tensor of `adapter` with its shape, checked against its config and against `dims` (the sizes
 * of a model; default: those its baseModel records). Throws MODEL_FORMAT naming the first disagreement.
 */
export function adapterTensors(adapter: Adapter, dims?: Partial<BaseModelInfo>): AdapterTensor[] {
  const config = parseAdapterConfig(adapter.config, 'adapter config');
  const layout = layoutOf(config);
  const known = withLayout(knownDims(dims ?? config.baseModel), layout);
  const out: AdapterTensor[] = [];
  for (const slot of slots(layout)) {
    const { lora } = slot;
    const name = lora ? PROJECT_NAMING.lora(lora.layer, lora.target, lora.matrix) : PROJECT_NAMING.embeddings[0]!;
    const pair = lora && adapter.lora.get(loraKey(lora.layer, lora.target));
    if (lora && !pair) {
      throw modelFormat(`adapter: no LoRA pair ${loraKey(lora.layer, lora.target)} (it has targets ${config.targets})`);
    }
    const data = pair ? (lora?.matrix === 'A' ? pair.a : pair.b) : adapter.embeddings;
    // The flat array's shape: the rank (or row count) is known, the other size is what remains.
    const fixedAt = slot.spec.findIndex((d) => d === 'rank' || d === 'rows');
    const fixed = known.get(slot.spec[fixedAt]!)!;
    if (data.length % fixed !== 0) {
      throw modelFormat(
        `adapter ${name}: ${data.length} values do not split into ${fixed} (${DIM_LABEL[slot.spec[fixedAt]!]})`,
      );
    }
    const shape = slot.spec.map((_, i) => (i === fixedAt ? fixed : data.length / fixed));
    expectShape(`adapter ${name}`, shape, slot.spec, known);
    out.push({ name, shape, data, ...(lora ? { lora } : {}) });
  }
  const expectedKeys = config.targets.length * layout.numLayers;
  if (adapter.lora.size !== expectedKeys) {
    throw modelFormat(
      `adapter: ${adapter.lora.size} LoRA pairs, but ${layout.numLayers} layers × targets ${config.targets} make ${expectedKeys}`,
    );
  }
  if (layout.embeddingRows === 0 && adapter.embeddings.length > 0) {
    throw modelFormat(
      `adapter: ${adapter.embeddings.length} embedding values, but a ${config.method} adapter has no rows`,
    );
  }
  return out;
}

/**
 * A digest of what an adapter computes (its config without the base model's name, then every value
 * in file order), so that memory saved with one adapter is not reused with another. 64 bits of a
 * cyrb53-style hash over 32-bit words: fast on tens of megabytes, not cryptographic.
 */
export function adapterFingerprint(adapter: Adapter): string {
  const config = parseAdapterConfig(adapter.config, 'adapter config');
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  const mix = (word: number) => {
    h1 = Math.imul(h1 ^ word, 2654435761);
    h2 = Math.imul(h2 ^ word, 1597334677);
  };
  const described = JSON.stringify({ ...config, baseModel: { ...config.baseModel, name: undefined } });
  for (const byte of new TextEncoder().encode(described)) mix(byte);
  for (const { data } of adapterTensors(adapter)) {
    const words = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < words.length; i++) mix(words[i] as number);
  }
  const f1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  const f2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(f1 ^ (f1 >>> 13), 3266489909);
  const hex = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
  return `${hex(f2)}${hex(f1)}`;
}

const BASE_FIELDS = [
  ['architecture', 'architecture'],
  ['hiddenSize', 'hidden'],
  ['numLayers', 'layers'],
  ['numHeads', 'heads'],
  ['numKvHeads', 'KV heads'],
  ['headDim', 'head dim'],
  ['vocabSize', 'vocab'],
] as const;

/** Throws MODEL_FORMAT unless `adapter` fits `model`: its recorded base model, every tensor, its separators. */
export function checkAdapter(adapter: Adapter, model: ModelConfig): void {
  const { baseModel: base, separators } = parseAdapterConfig(adapter.config, 'adapter config');
  const diffs = BASE_FIELDS.filter(([key]) => base[key] !== undefined && base[key] !== model[key]).map(
    ([key, label]) => `${label} ${base[key]}, model has ${model[key]}`,
  );
  if (diffs.length > 0) {
    throw modelFormat(`adapter${base.name ? ` for ${base.name}` : ''} was made for ${diffs.join('; ')}`);
  }
  adapterTensors(adapter, model);
  for (const [name, ids] of Object.entries(separators)) {
    const bad = ids.find((id) => id >= model.vocabSize);
    if (bad !== undefined) {
      throw modelFormat(
        `adapter separator "${name}" has token id ${bad}; the model's vocabulary has ${model.vocabSize}`,
      );
    }
  }
}
