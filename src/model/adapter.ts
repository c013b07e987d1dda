// Adapters: the LoRA pairs and extra embedding rows that turn a base model into a context compressor
// (ccm.md: a row-gated LoRA + COMP rows; sentinel.md: a merged LoRA + CL/CR rows). This file defines the
// project's adapter format, loads it (and the official PEFT layout, through adapter-peft.ts), checks an
// adapter against a model and writes it. GPU upload and merging into the base weights are in
// adapter-gpu.ts; seeded random adapters for tests in src/reference/random-adapter.ts. docs/adapters.md describes the format for users.
//
// Project format, version 1: a folder holding adapter_config.json and adapter.safetensors.
//   adapter_config.json (camelCase):
//   { "format": "ccmem-adapter", "version": 1,
//     "method": "ccm" | "sentinel" | "lora",
//         ccm: LoRA applied only to COMP rows (never merged), plus COMP rows;
//         sentinel: ungated LoRA merged into W at load, plus the CL and CR rows;
//         lora: ungated LoRA merged into W at load, no rows (the base correction LLaMA-1 CCM adapters need);
//     "rank": r, "alpha": a,                the LoRA term is (a / r) B (A x)
//     "targets": ["q", "k", "v", "o"],      attention projections with a LoRA pair (a non-empty subset)
//     "compTokens": n,                      ccm: COMP tokens per step; sentinel: 1 (one CR slot per span); lora: 0
//     "mode": "concat" | "merge",           ccm only
//     "sink": false,                        ccm: the memory keeps the BOS slot as slot 0
//     "separators": { "user": [ids], ... }, named token sequences (tokenized without BOS) that join chunks or
//                                           turns, e.g. "turn", "user", "assistant"; {} when none is needed
//     "embeddingRows": m,                   ccm: n (concat) or 2n (merge: n COMP rows, then n SUM rows);
//                                           sentinel: 2 (CL, CR); lora: 0. Token id vocabSize + k reads row k.
//     "baseModel": { "hiddenSize", "numLayers" (required), "architecture", "numHeads", "numKvHeads",
//                    "headDim", "vocabSize", "name" (written when known, checked when present) } }
//   adapter.safetensors (F32, F16 or BF16; writeAdapter writes F32), for every layer i and target t:
//     layers.{i}.{t}.lora_A [r, in]   layers.{i}.{t}.lora_B [out, r]   embeddings [m, hiddenSize] (when m > 0)
//   and no other tensor. in/out are the projection's: q [H*hd <- D], k, v [Hkv*hd <- D], o [D <- H*hd].
import { invalidInput, modelFormat, unsupportedModel } from '../errors.js';
import {
  isPeftConfig,
  PEFT_NAMING,
  PEFT_PICKLE_FILES,
  PEFT_WEIGHT_FILES,
  type PeftImportOptions,
  peftLayerCount,
  peftLayout,
  peftToProjectConfig,
} from './adapter-peft.js';
import type { AdapterMethod, BaseModelInfo, CompMode, LoraTarget, TensorNaming } from './adapter-types.js';
import { readSafetensorsFile, readTensorBytes, type TensorInfo, toF32, writeSafetensors } from './safetensors.js';
import { type FileSource, openSource } from './source.js';
import type { ModelConfig } from './types.js';

export type { PeftImportOptions } from './adapter-peft.js';

export const ADAPTER_FORMAT = 'ccmem-adapter';
export const ADAPTER_VERSION = 1;
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter.safetensors';
export const LORA_TARGETS: readonly LoraTarget[] = ['q', 'k', 'v', 'o'];
const METHODS: readonly AdapterMethod[] = ['ccm', 'sentinel', 'lora'];
const MODES: readonly CompMode[] = ['concat', 'merge'];

export interface AdapterConfig {
  format: typeof ADAPTER_FORMAT;
  version: typeof ADAPTER_VERSION;
  method: AdapterMethod;
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  compTokens: number;
  /** ccm only. */
  mode?: CompMode;
  sink: boolean;
  separators: Record<string, number[]>;
  embeddingRows: number;
  baseModel: BaseModelInfo;
}

export interface LoraMatrices {
  /** [rank, in], row-major */
  a: Float32Array;
  /** [out, rank], row-major */
  b: Float32Array;
}

export interface Adapter {
  config: AdapterConfig;
  /** Keyed by loraKey(layer, target): every layer of the base model, every target. */
  lora: Map<string, LoraMatrices>;
  /** [embeddingRows, hiddenSize], row-major; empty when there are no rows. */
  embeddings: Float32Array;
}

export const loraKey = (layer: number, target: LoraTarget) => `${layer}.${target}`;

/** The embedding rows a method needs: COMP rows (then SUM rows for merge), CL and CR, or none. */
export function embeddingRowsFor(method: AdapterMethod, compTokens: number, mode: CompMode | undefined): number {
  if (method === 'ccm') return mode === 'merge' ? 2 * compTokens : compTokens;
  return method === 'sentinel' ? 2 : 0;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
const isTokenId = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

function field<T>(where: string, name: string, value: unknown, ok: (v: unknown) => boolean, what: string): T {
  if (!ok(value)) throw modelFormat(`${where}: "${name}" must be ${what}, found ${JSON.stringify(value)}`);
  return value as T;
}

const BASE_INTS = ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize'] as const;

/** The fields of a baseModel object that are present, each validated. */
function parseBaseModel(raw: unknown, where: string): Partial<BaseModelInfo> {
  const b = field<Json>(where, 'baseModel', raw, isObject, 'an object');
  const out: Partial<BaseModelInfo> = {};
  for (const key of BASE_INTS) {
    if (b[key] !== undefined) out[key] = field(where, `baseModel.${key}`, b[key], isPositiveInt, 'a positive integer');
  }
  for (const key of ['architecture', 'name'] as const) {
    if (b[key] !== undefined)
      out[key] = field(where, `baseModel.${key}`, b[key], (v) => typeof v === 'string', 'a string');
  }
  return out;
}

/** Validates a project adapter config (parsed JSON or a typed object) and returns a fresh typed copy. */
export function parseAdapterConfig(raw: unknown, where: string): AdapterConfig {
  if (!isObject(raw)) throw modelFormat(`${where}: expected a JSON object`);
  const c = raw;
  if (c.format !== ADAPTER_FORMAT) {
    throw modelFormat(`${where}: "format" is ${JSON.stringify(c.format)}, expected "${ADAPTER_FORMAT}"`);
  }
  if (c.version !== ADAPTER_VERSION) {
    throw unsupportedModel(
      `${where}: adapter format version ${JSON.stringify(c.version)}; this engine reads version ${ADAPTER_VERSION}`,
    );
  }
  if (!METHODS.includes(c.method as AdapterMethod)) {
    throw unsupportedModel(
      `${where}: unknown adapter method ${JSON.stringify(c.method)} (known: ${METHODS.join(', ')})`,
    );
  }
  const method = c.method as AdapterMethod;
  const rank = field<number>(where, 'rank', c.rank, isPositiveInt, 'a positive integer');
  const isAlpha = (v: unknown) => typeof v === 'number' && v > 0 && Number.isFinite(v);
  const alpha = field<number>(where, 'alpha', c.alpha, isAlpha, 'a positive number');
  const isTargets = (v: unknown) =>
    Array.isArray(v) && v.length > 0 && v.every((t) => LORA_TARGETS.includes(t)) && new Set(v).size === v.length;
  const targets = field<LoraTarget[]>(
    where,
    'targets',
    c.targets,
    isTargets,
    'a non-empty list of distinct q, k, v, o',
  );
  const compTokens = field<number>(where, 'compTokens', c.compTokens, isTokenId, 'a non-negative integer');
  if (method === 'ccm' ? compTokens < 1 : compTokens !== (method === 'sentinel' ? 1 : 0)) {
    throw modelFormat(
      `${where}: a ${method} adapter cannot have compTokens ${compTokens} (ccm: at least 1, sentinel: 1, lora: 0)`,
    );
  }
  const mode =
    method === 'ccm'
      ? field<CompMode>(where, 'mode', c.mode, (v) => MODES.includes(v as CompMode), '"concat" or "merge"')
      : field<undefined>(where, 'mode', c.mode, (v) => v === undefined, `absent for a ${method} adapter`);
  const sink = field<boolean>(where, 'sink', c.sink, (v) => typeof v === 'boolean', 'true or false');
  const isSeparators = (v: unknown) =>
    isObject(v) && Object.values(v).every((ids) => Array.isArray(ids) && ids.every(isTokenId));
  const separators = field<Json>(where, 'separators', c.separators, isSeparators, 'an object of token id lists');
  const rows = embeddingRowsFor(method, compTokens, mode);
  if (c.embeddingRows !== rows) {
    throw modelFormat(
      `${where}: "embeddingRows" is ${JSON.stringify(c.embeddingRows)}, but a ${method}${mode ? ` ${mode}` : ''} ` +
        `adapter with compTokens ${compTokens} has ${rows}`,
    );
  }
  const base = parseBaseModel(c.baseModel, where);
  for (const key of ['hiddenSize', 'numLayers'] as const) {
    if (base[key] === undefined) throw modelFormat(`${where}: "baseModel.${key}" is missing`);
  }
  return {
    format: ADAPTER_FORMAT,
    version: ADAPTER_VERSION,
    method,
    rank,
    alpha,
    targets: [...targets],
    compTokens,
    ...(mode ? { mode } : {}),
    sink,
    separators: Object.fromEntries(Object.entries(separators).map(([k, ids]) => [k, [...(ids as number[])]])),
    embeddingRows: rows,
    baseModel: base as BaseModelInfo,
  };
}

// Tensor shapes are written in named sizes. A size not known beforehand (a PEFT import does not say its
// head counts) is learned from the first tensor that has it; every later tensor must agree.
type Dim = 'rank' | 'rows' | 'hidden' | 'qWidth' | 'kvWidth';
type Dims = Map<Dim, number>;
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
function knownDims(m: Partial<BaseModelInfo>): Dims {
  const d: Dims = new Map();
  if (m.hiddenSize) d.set('hidden', m.hiddenSize);
  if (m.headDim && m.numHeads) d.set('qWidth', m.numHeads * m.headDim);
  if (m.headDim && m.numKvHeads) d.set('kvWidth', m.numKvHeads * m.headDim);
  return d;
}

function expectShape(what: string, shape: readonly number[], spec: readonly Dim[], dims: Dims): void {
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

interface TensorLayout {
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
function slots(l: TensorLayout): Slot[] {
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

const layoutOf = (c: AdapterConfig): TensorLayout => ({ ...c, numLayers: c.baseModel.numLayers });
const withLayout = (dims: Dims, l: TensorLayout): Dims =>
  new Map([...dims, ['rank', l.rank] as const, ['rows', l.embeddingRows] as const]);

const PROJECT_NAMING: TensorNaming = {
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

/** The project format's files (write them into one folder). */
export function writeAdapter(adapter: Adapter): Record<string, string | Uint8Array> {
  const config = parseAdapterConfig(adapter.config, 'adapter config');
  const tensors = adapterTensors(adapter).map((t) => ({
    name: t.name,
    dtype: 'F32' as const,
    shape: t.shape,
    data: t.data,
  }));
  return {
    [ADAPTER_CONFIG_FILE]: `${JSON.stringify(config, null, 2)}\n`,
    [ADAPTER_WEIGHTS_FILE]: writeSafetensors(tensors, { format: ADAPTER_FORMAT }),
  };
}

/**
 * Loads an adapter folder (a FileSource, local path, URL or hub id): the project format, or the
 * official PEFT layout (ccm.md section 9), whose missing facts come from `options`, its "ccmem" section,
 * or else `implied`: what the memory policy it is loaded for says (impliedByMemory; a project-format
 * adapter records them, and memoryForAdapter checks the policy against its config instead).
 */
export async function loadAdapter(
  spec: string | FileSource,
  options: PeftImportOptions = {},
  implied: PeftImportOptions = {},
): Promise<Adapter> {
  const src = typeof spec === 'string' ? openSource(spec) : spec;
  const where = `${src.id}/${ADAPTER_CONFIG_FILE}`;
  if (!(await src.exists(ADAPTER_CONFIG_FILE))) throw modelFormat(`${src.id}: missing ${ADAPTER_CONFIG_FILE}`);
  const raw = await src.json(ADAPTER_CONFIG_FILE);
  if (isObject(raw) && raw.format === ADAPTER_FORMAT) {
    if (Object.values(options).some((v) => v !== undefined)) {
      throw invalidInput(
        `${src.id}: import options apply to PEFT adapters; a ccmem adapter records them in its config`,
      );
    }
    const config = parseAdapterConfig(raw, where);
    const file = await openWeights(src, ADAPTER_WEIGHTS_FILE);
    const { lora, embeddings } = await readTensors(file, PROJECT_NAMING, layoutOf(config), knownDims(config.baseModel));
    return { config, lora, embeddings };
  }
  if (isPeftConfig(raw)) return loadPeft(src, raw, options, implied, where);
  throw modelFormat(`${where}: neither a ccmem adapter ("format": "${ADAPTER_FORMAT}") nor a PEFT LoRA config`);
}

async function loadPeft(
  src: FileSource,
  raw: Json,
  options: PeftImportOptions,
  implied: PeftImportOptions,
  where: string,
): Promise<Adapter> {
  const layout = peftLayout(raw, where);
  const name = await firstExisting(src, PEFT_WEIGHT_FILES);
  if (!name) {
    const pickle = await firstExisting(src, PEFT_PICKLE_FILES);
    if (pickle) {
      throw unsupportedModel(
        `${src.id}/${pickle}: PyTorch pickle files cannot be read here; convert it to safetensors ` +
          `(safetensors.torch.save_file(torch.load(path), "${PEFT_WEIGHT_FILES[0]}"))`,
      );
    }
    throw modelFormat(`${src.id}: no ${PEFT_WEIGHT_FILES.join(' or ')} beside the PEFT ${ADAPTER_CONFIG_FILE}`);
  }
  const file = await openWeights(src, name);
  const rows = PEFT_NAMING.embeddings.map((n) => file.index.get(n)).find(Boolean)?.shape[0] ?? 0;
  const draft = peftToProjectConfig(raw, options, layout, rows, implied);
  const base = parseBaseModel(draft.baseModel, where);
  const numLayers = base.numLayers ?? peftLayerCount(file.index.keys());
  const full = { ...layout, embeddingRows: rows, numLayers };
  const { lora, embeddings, dims } = await readTensors(file, PEFT_NAMING, full, knownDims(base));
  const baseModel = { ...base, numLayers, hiddenSize: dims.get('hidden') };
  return { config: parseAdapterConfig({ ...draft, baseModel }, where), lora, embeddings };
}

async function firstExisting(src: FileSource, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) if (await src.exists(name)) return name;
  return undefined;
}

interface WeightsFile {
  src: FileSource;
  index: Map<string, TensorInfo>;
  where: string;
}

/** The tensor index of safetensors file `name`. */
async function openWeights(src: FileSource, name: string): Promise<WeightsFile> {
  if (!(await src.exists(name))) throw modelFormat(`${src.id}: missing ${name}`);
  return { src, index: await readSafetensorsFile(src, name), where: `${src.id}/${name}` };
}

/** Reads and shape-checks every tensor `layout` implies; any other tensor in the file is an error. */
async function readTensors(
  file: WeightsFile,
  naming: TensorNaming,
  layout: TensorLayout,
  known: Dims,
): Promise<{ lora: Map<string, LoraMatrices>; embeddings: Float32Array; dims: Dims }> {
  const { index, where } = file;
  const dims = withLayout(known, layout);
  const present = naming.embeddings.filter((n) => index.has(n));
  if (present.length > 1) throw modelFormat(`${where}: holds both ${present.join(' and ')}`);
  const unused = new Set(index.keys());
  const lora = new Map<string, LoraMatrices>();
  let embeddings: Float32Array = new Float32Array(0);
  for (const slot of slots(layout)) {
    const { lora: at } = slot;
    const name = at ? naming.lora(at.layer, at.target, at.matrix) : (present[0] ?? naming.embeddings[0]!);
    const info = index.get(name);
    if (!info) throw modelFormat(`${where}: missing tensor ${name}`);
    expectShape(`${where}: tensor ${name}`, info.shape, slot.spec, dims);
    unused.delete(name);
    const values = toF32(info, await readTensorBytes(file.src, info));
    if (!at) embeddings = values;
    else if (at.matrix === 'A') lora.set(loraKey(at.layer, at.target), { a: values, b: new Float32Array(0) });
    else lora.get(loraKey(at.layer, at.target))!.b = values;
  }
  const extra = unused.values().next();
  if (!extra.done) {
    throw modelFormat(
      `${where}: unexpected tensor ${extra.value} (the config implies ${layout.numLayers} layers × targets ` +
        `${layout.targets} and ${layout.embeddingRows} embedding rows)`,
    );
  }
  return { lora, embeddings, dims };
}
