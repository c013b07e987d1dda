// Safetensors reading (header validation, tensor index over one file or shards) and writing (tests and the
// llama2.c converter). Layout: u64 LE header length N, N bytes of JSON header, then the data region;
// data_offsets are relative to the start of the data region.

import { modelFormat, unsupportedModel } from '../errors.js';
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '../gpu/half.js';
import type { FileSource } from './source.js';
import { expectedShapes, type ModelConfig } from './types.js';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  file: string;
  /** Absolute byte offset in `file`. */
  offset: number;
  byteLength: number;
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array;
}

const DTYPE_BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };
const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';
/** Real headers are kilobytes to a few megabytes; a larger claim means a corrupt length field. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const isDType = (d: unknown): d is SafetensorsDType => typeof d === 'string' && Object.hasOwn(DTYPE_BYTES, d);
const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Reads model.safetensors, or model.safetensors.index.json and every shard it names. */
export async function readWeightIndex(src: FileSource): Promise<Map<string, TensorInfo>> {
  if (await src.exists(SINGLE_FILE)) return readSafetensorsFile(src, SINGLE_FILE);
  if (!(await src.exists(INDEX_FILE))) {
    throw modelFormat(`${src.id}: neither ${SINGLE_FILE} nor ${INDEX_FILE} was found`);
  }
  const index = await src.json<{ weight_map?: unknown }>(INDEX_FILE);
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw modelFormat(`${src.id}/${INDEX_FILE}: expected an object "weight_map", found ${JSON.stringify(map)}`);
  }
  const shards = new Set<string>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') throw modelFormat(`${src.id}/${INDEX_FILE}: tensor ${name} maps to a non-string`);
    shards.add(shard);
  }
  const all = new Map<string, TensorInfo>();
  for (const shard of shards) {
    if (!(await src.exists(shard))) throw modelFormat(`${src.id}: shard ${shard} named in ${INDEX_FILE} is missing`);
    for (const [name, info] of await readSafetensorsFile(src, shard)) {
      if (all.has(name)) throw modelFormat(`${src.id}: tensor ${name} appears in two shards`);
      all.set(name, info);
    }
  }
  for (const [name, shard] of Object.entries(map)) {
    if (all.get(name)?.file !== shard)
      throw modelFormat(`${src.id}: ${INDEX_FILE} puts ${name} in ${shard} but it is not there`);
  }
  return all;
}

/** The validated tensor index of one safetensors file. */
export async function readSafetensorsFile(src: FileSource, file: string): Promise<Map<string, TensorInfo>> {
  const where = `${src.id}/${file}`;
  const fileSize = await src.size(file);
  if (fileSize < 8)
    throw modelFormat(`${where}: truncated, ${fileSize} bytes is shorter than the 8-byte header length`);
  const lenBytes = await src.read(file, 0, 8);
  const headerLen = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > fileSize) {
    throw modelFormat(`${where}: header length ${headerLen} does not fit in the file (${fileSize} bytes)`);
  }
  const headerText = new TextDecoder().decode(await src.read(file, 8, headerLen));
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    throw modelFormat(`${where}: the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw modelFormat(`${where}: the header is not a JSON object`);
  }
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const out = new Map<string, TensorInfo>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, parseEntry(where, name, raw, file, dataStart, dataSize));
  }
  const byStart = [...out.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1]!;
    const cur = byStart[i]!;
    if (cur.offset < prev.offset + prev.byteLength) {
      throw modelFormat(`${where}: tensors ${prev.name} and ${cur.name} overlap`);
    }
  }
  return out;
}

function parseEntry(
  where: string,
  name: string,
  raw: unknown,
  file: string,
  dataStart: number,
  dataSize: number,
): TensorInfo {
  const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  if (typeof e !== 'object' || e === null) throw modelFormat(`${where}: tensor ${name}: entry is not an object`);
  if (!isDType(e.dtype)) {
    throw unsupportedModel(`${where}: tensor ${name} has dtype ${JSON.stringify(e.dtype)}; supported: F32, F16, BF16`);
  }
  const { shape, data_offsets: offs } = e;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw modelFormat(`${where}: tensor ${name}: invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw modelFormat(`${where}: tensor ${name}: invalid data_offsets ${JSON.stringify(offs)}`);
  }
  const [begin, end] = offs as [number, number];
  if (end < begin) throw modelFormat(`${where}: tensor ${name}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataSize) {
    throw modelFormat(
      `${where}: truncated or corrupt: tensor ${name} has data_offsets [${begin}, ${end}] but the data region holds ${dataSize} bytes`,
    );
  }
  const expected = numel(shape) * DTYPE_BYTES[e.dtype];
  if (end - begin !== expected) {
    throw modelFormat(
      `${where}: tensor ${name}: ${e.dtype} [${shape}] needs ${expected} bytes, data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype: e.dtype, shape: [...shape], file, offset: dataStart + begin, byteLength: expected };
}

/** Every tensor the config implies must exist with its shape; extra tensors are ignored. */
export function checkAgainstConfig(index: Map<string, TensorInfo>, config: ModelConfig): void {
  for (const [name, shape] of expectedShapes(config)) {
    const info = index.get(name);
    if (!info) {
      const why = name === 'lm_head.weight' ? ' (tie_word_embeddings is false)' : '';
      throw modelFormat(`tensor ${name} is missing${why}; expected shape [${shape}]`);
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw modelFormat(`tensor ${name} in ${info.file}: expected shape [${shape}], found [${info.shape}]`);
    }
  }
}

export async function readTensorBytes(src: FileSource, info: TensorInfo): Promise<Uint8Array> {
  return src.read(info.file, info.offset, info.byteLength);
}

/** Decodes little-endian tensor bytes to f32. */
export function toF32(info: Pick<TensorInfo, 'dtype'>, bytes: Uint8Array): Float32Array {
  const size = DTYPE_BYTES[info.dtype];
  if (bytes.byteLength % size !== 0)
    throw modelFormat(`${bytes.byteLength} bytes is not a whole number of ${info.dtype}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / size;
  const out = new Float32Array(n);
  if (info.dtype === 'F32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  else if (info.dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f16BitsToF32(view.getUint16(i * 2, true));
  else for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(view.getUint16(i * 2, true));
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
function f32ToBf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Serializes tensors (f32 values converted to each tensor's dtype) into one safetensors file. */
export function writeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let dataSize = 0;
  for (const t of tensors) {
    if (t.data.length !== numel(t.shape)) {
      throw modelFormat(`writeSafetensors: tensor ${t.name} has ${t.data.length} values for shape [${t.shape}]`);
    }
    if (Object.hasOwn(header, t.name)) throw modelFormat(`writeSafetensors: duplicate tensor ${t.name}`);
    const bytes = t.data.length * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [dataSize, dataSize + bytes] };
    dataSize += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8; // padded with spaces so the data starts 8-byte aligned
  const out = new Uint8Array(8 + headerLen + dataSize);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLen), true);
  out.fill(0x20, 8, 8 + headerLen);
  out.set(json, 8);
  let pos = 8 + headerLen;
  for (const t of tensors) {
    const d = t.data;
    if (t.dtype === 'F32') for (let i = 0; i < d.length; i++, pos += 4) view.setFloat32(pos, d[i]!, true);
    else if (t.dtype === 'F16')
      for (let i = 0; i < d.length; i++, pos += 2) view.setUint16(pos, f32ToF16Bits(d[i]!), true);
    else for (let i = 0; i < d.length; i++, pos += 2) view.setUint16(pos, f32ToBf16Bits(d[i]!), true);
  }
  return out;
}
