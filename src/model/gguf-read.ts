// GGUF container reading (versions 2 and 3, little-endian): the header, the metadata key/values, the
// tensor table, the alignment and the data section, validated against the file's size. The header is
// read from the source in growing ranges, so a URL costs a few Range requests and no tensor bytes.
// Layout: magic "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values, the tensor
// infos (name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset), padding to the alignment, the data.
import { modelFormat, unsupportedModel } from '../errors.js';
import { ggmlTypeLabel, QUANT_TYPES, type QuantType, quantBytes, quantTypeOf, SUPPORTED_TYPES } from './quant.js';
import type { FileSource } from './source.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value type codes. */
export const GGUF_VALUE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type GgufValue = number | boolean | string | GgufValue[];

export interface GgufTensorInfo {
  name: string;
  /** ggml order: ne[0] is the contiguous (column) dimension. */
  ne: number[];
  type: QuantType;
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  file: string;
  version: number;
  meta: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
  alignment: number;
  /** Where the data section starts (tensor offsets are relative to it in the file, absolute here). */
  dataOffset: number;
}

/** The fixed-size numeric value types: their size and reader. */
const FIXED_VALUES: Record<number, [number, (d: DataView, at: number) => number]> = {
  [GGUF_VALUE.u8]: [1, (d, at) => d.getUint8(at)],
  [GGUF_VALUE.i8]: [1, (d, at) => d.getInt8(at)],
  [GGUF_VALUE.u16]: [2, (d, at) => d.getUint16(at, true)],
  [GGUF_VALUE.i16]: [2, (d, at) => d.getInt16(at, true)],
  [GGUF_VALUE.u32]: [4, (d, at) => d.getUint32(at, true)],
  [GGUF_VALUE.i32]: [4, (d, at) => d.getInt32(at, true)],
  [GGUF_VALUE.f32]: [4, (d, at) => d.getFloat32(at, true)],
  [GGUF_VALUE.f64]: [8, (d, at) => d.getFloat64(at, true)],
};

/** Bounds far above real files, far below what would exhaust memory on a corrupt count. */
const MAX_DIMS = 4;
const FIRST_READ = 1 << 20;

/** A cursor over the file's first bytes, fetching more from the source as it goes. */
class HeaderCursor {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  pos = 0;

  constructor(
    private readonly src: FileSource,
    private readonly file: string,
    readonly size: number,
    private readonly where: string,
  ) {}

  private async need(n: number): Promise<number> {
    if (this.pos + n > this.size) {
      throw modelFormat(
        `${this.where}: truncated, the header needs bytes up to ${this.pos + n} but the file has ${this.size}`,
      );
    }
    if (this.pos + n > this.buf.length) {
      const want = Math.min(this.size, Math.max(this.pos + n, this.buf.length * 2, FIRST_READ));
      const more = await this.src.read(this.file, this.buf.length, want - this.buf.length);
      const next = new Uint8Array(want);
      next.set(this.buf);
      next.set(more, this.buf.length);
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** The view over `n` more bytes and where they start (need() may replace the view: take it after). */
  private async at(n: number): Promise<[DataView, number]> {
    const pos = await this.need(n);
    return [this.view, pos];
  }

  async u32(): Promise<number> {
    const [v, at] = await this.at(4);
    return v.getUint32(at, true);
  }

  async u64(what: string): Promise<number> {
    const [view, at] = await this.at(8);
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw modelFormat(`${this.where}: ${what} ${v} is out of range`);
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const n = await this.u64(`the length of ${what}`);
    const at = await this.need(n);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.buf.subarray(at, at + n));
    } catch {
      throw modelFormat(`${this.where}: ${what} is not valid UTF-8`);
    }
  }

  async value(type: number, key: string): Promise<GgufValue> {
    const fixed = FIXED_VALUES[type];
    if (fixed) {
      const [d, at] = await this.at(fixed[0]);
      return fixed[1](d, at);
    }
    const v = GGUF_VALUE;
    switch (type) {
      case v.bool: {
        const [d, at] = await this.at(1);
        return d.getUint8(at) !== 0;
      }
      case v.string:
        return this.string(`the value of ${key}`);
      case v.u64:
        return this.u64(key);
      case v.i64: {
        const [d, at] = await this.at(8);
        const x = d.getBigInt64(at, true);
        if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw modelFormat(`${this.where}: ${key} ${x} is out of range`);
        }
        return Number(x);
      }
      case v.array: {
        const element = await this.u32();
        if (element === v.array) throw unsupportedModel(`${this.where}: ${key} is an array of arrays`);
        const n = await this.u64(`the length of ${key}`);
        if (n > this.size - this.pos)
          throw modelFormat(`${this.where}: truncated or corrupt, ${key} claims ${n} elements`);
        const out: GgufValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = await this.value(element, key);
        return out;
      }
      default:
        throw modelFormat(`${this.where}: ${key} has an unknown value type ${type}`);
    }
  }
}

/** Reads and validates the header, metadata and tensor table of the GGUF file `file` of `src`. */
export async function readGgufFile(src: FileSource, file: string): Promise<GgufFile> {
  const where = `${src.id}/${file}`;
  const size = await src.size(file);
  const c = new HeaderCursor(src, file, size, where);
  if (size < 4 || (await c.u32()) !== GGUF_MAGIC) throw modelFormat(`${where}: not a GGUF file (no "GGUF" magic)`);
  const version = await c.u32();
  if (version === 1) throw unsupportedModel(`${where}: GGUF version 1 (before August 2023) is not supported`);
  if (version !== 2 && version !== 3) {
    const bigEndian = version >>> 24 === 2 || version >>> 24 === 3;
    throw bigEndian
      ? unsupportedModel(`${where}: a big-endian GGUF file is not supported`)
      : modelFormat(`${where}: unknown GGUF version ${version}`);
  }
  const tensorCount = await c.u64('the tensor count');
  const kvCount = await c.u64('the key/value count');
  // every entry takes at least 8 bytes: a count past the file's size is a corrupt field or a cut file
  if (tensorCount > size / 8 || kvCount > size / 8) {
    throw modelFormat(
      `${where}: truncated or corrupt header (${tensorCount} tensors, ${kvCount} key/values in ${size} bytes)`,
    );
  }
  const meta = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = await c.string(`key ${i}`);
    if (meta.has(key)) throw modelFormat(`${where}: duplicate metadata key ${key}`);
    meta.set(key, await c.value(await c.u32(), key));
  }
  const alignment = meta.get('general.alignment') ?? GGUF_DEFAULT_ALIGNMENT;
  if (typeof alignment !== 'number' || !Number.isInteger(alignment) || alignment <= 0 || alignment & (alignment - 1)) {
    throw modelFormat(`${where}: general.alignment ${JSON.stringify(alignment)} is not a power of two`);
  }
  const raw: { name: string; ne: number[]; code: number; rel: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = await c.string(`the name of tensor ${i}`);
    const dims = await c.u32();
    if (dims < 1 || dims > MAX_DIMS) throw modelFormat(`${where}: tensor ${name} has ${dims} dimensions`);
    const ne: number[] = [];
    for (let d = 0; d < dims; d++) ne.push(await c.u64(`a dimension of ${name}`));
    raw.push({ name, ne, code: await c.u32(), rel: await c.u64(`the offset of ${name}`) });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const { name, ne, code, rel } of raw) {
    if (tensors.has(name)) throw modelFormat(`${where}: duplicate tensor ${name}`);
    const type = quantTypeOf(code);
    if (!type) {
      throw modelFormat(
        `${where}: tensor ${name} has type ${ggmlTypeLabel(code)}, which ccmem does not read (supported: ${SUPPORTED_TYPES.join(', ')})`,
      );
    }
    if (rel % alignment) throw modelFormat(`${where}: tensor ${name} starts at ${rel}, not a multiple of ${alignment}`);
    const count = ne.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count)) throw modelFormat(`${where}: tensor ${name} [${ne}] is too large`);
    const { blockSize } = QUANT_TYPES[type];
    if (ne[0]! % blockSize) {
      throw modelFormat(`${where}: tensor ${name}: rows of ${ne[0]} are not whole ${type} blocks of ${blockSize}`);
    }
    const byteLength = quantBytes(type, count);
    const offset = dataOffset + rel;
    if (offset + byteLength > size) {
      throw modelFormat(
        `${where}: truncated, tensor ${name} needs bytes [${offset}, ${offset + byteLength}) but the file has ${size}`,
      );
    }
    tensors.set(name, { name, ne, type, offset, byteLength });
  }
  const byStart = [...tensors.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1]!;
    if (byStart[i]!.offset < prev.offset + prev.byteLength) {
      throw modelFormat(`${where}: tensors ${prev.name} and ${byStart[i]!.name} overlap`);
    }
  }
  return { file, version, meta, tensors, alignment, dataOffset };
}
