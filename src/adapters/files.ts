// Adapter folders: loadAdapter reads the project format or the official PEFT layout (translated by
// peft.ts) from a FileSource, local path, URL or hub id, every tensor shape-checked; writeAdapter writes
// the project format.
import { invalidInput, modelFormat, unsupportedModel } from '../errors.js';
import {
  readSafetensorsFile,
  readTensorBytes,
  type TensorInfo,
  toF32,
  writeSafetensors,
} from '../model/safetensors.js';
import { type FileSource, openSource } from '../model/source.js';
import { isObject, type Json, parseAdapterConfig, parseBaseModel } from './config.js';
import {
  isPeftConfig,
  PEFT_NAMING,
  PEFT_PICKLE_FILES,
  PEFT_WEIGHT_FILES,
  type PeftImportOptions,
  peftLayerCount,
  peftLayout,
  peftToProjectConfig,
} from './peft.js';
import {
  adapterTensors,
  type Dims,
  expectShape,
  knownDims,
  layoutOf,
  PROJECT_NAMING,
  slots,
  type TensorLayout,
  withLayout,
} from './tensors.js';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_FORMAT,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  type LoraMatrices,
  loraKey,
  type TensorNaming,
} from './types.js';

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
