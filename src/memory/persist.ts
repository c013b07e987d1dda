// Export and import of a session's context memory, so a conversation survives a page reload.
// Layout: "CCMM" | u32 version | u32 header bytes | header JSON | K/V rows (f32, per layer: K then V,
// slots [0, used)) | SHA-256 of everything before it. Import checks the digest, the version, the model
// and adapter identity and the policy before anything is changed.
import { invalidInput } from '../errors.js';
import type { ModelConfig } from '../model/types.js';
import type { ResolvedMemory } from './policy.js';

const MAGIC = 0x4d4d4343; // "CCMM" little-endian
export const MEMORY_FORMAT_VERSION = 1;

export interface MemorySnapshot {
  mem: { kind: 'sink' | 'memory'; position: number; turn: number }[];
  fed: number[];
  base: number;
  pending: number | undefined;
  turns: number;
  tokensCompressed: number;
  tokensEvicted: number;
}

export interface MemoryIdentity {
  model: Pick<
    ModelConfig,
    'architecture' | 'hiddenSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'vocabSize'
  >;
  /** Adapter identity (rank, scale and its fingerprint), absent without an adapter. */
  adapter: { rank: number; scale: number; fingerprint: string | undefined } | undefined;
  policy: ResolvedMemory;
}

interface Header extends MemoryIdentity {
  snapshot: MemorySnapshot;
  used: number;
}

export function identityOf(c: ModelConfig, adapter: MemoryIdentity['adapter'], policy: ResolvedMemory): MemoryIdentity {
  const { architecture, hiddenSize, numLayers, numHeads, numKvHeads, headDim, vocabSize } = c;
  return { model: { architecture, hiddenSize, numLayers, numHeads, numKvHeads, headDim, vocabSize }, adapter, policy };
}

/** rows[l] = [K rows of layer l, V rows of layer l], each `used * kvDim` f32. */
export async function encodeMemory(
  id: MemoryIdentity,
  snapshot: MemorySnapshot,
  rows: Float32Array[],
): Promise<Uint8Array> {
  const used = snapshot.mem.length + snapshot.fed.length;
  const header = new TextEncoder().encode(JSON.stringify({ ...id, snapshot, used }, infinityAsString));
  const payload = rows.reduce((n, r) => n + r.byteLength, 0);
  const body = new Uint8Array(12 + header.length + payload);
  const view = new DataView(body.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, MEMORY_FORMAT_VERSION, true);
  view.setUint32(8, header.length, true);
  body.set(header, 12);
  let at = 12 + header.length;
  for (const r of rows) {
    body.set(new Uint8Array(r.buffer, r.byteOffset, r.byteLength), at);
    at += r.byteLength;
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
  const out = new Uint8Array(body.length + digest.length);
  out.set(body);
  out.set(digest, body.length);
  return out;
}

/** Validates `bytes` against the importing session; throws INVALID_INPUT naming what is wrong. */
export async function decodeMemory(
  bytes: Uint8Array,
  expected: MemoryIdentity,
  capacity: number,
): Promise<{ snapshot: MemorySnapshot; rows: Float32Array[] }> {
  const bad = (why: string) => invalidInput(`cannot import the memory: ${why}`);
  if (bytes.length < 12 + 32) throw bad(`${bytes.length} bytes is too short`);
  const body = bytes.subarray(0, bytes.length - 32) as Uint8Array<ArrayBuffer>;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
  if (!digest.every((d, i) => d === bytes[body.length + i])) throw bad('the checksum does not match (corrupt data)');
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw bad('not a ccmem memory export');
  const version = view.getUint32(4, true);
  if (version !== MEMORY_FORMAT_VERSION)
    throw bad(`format version ${version}, this build reads ${MEMORY_FORMAT_VERSION}`);
  const headerLength = view.getUint32(8, true);
  if (12 + headerLength > body.length) throw bad('the header runs past the end');
  const header = JSON.parse(new TextDecoder().decode(body.subarray(12, 12 + headerLength)), stringAsInfinity) as Header;
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(header.model, expected.model)) {
    throw bad(
      `it was made for model ${JSON.stringify(header.model)}, this session runs ${JSON.stringify(expected.model)}`,
    );
  }
  if (!same(header.adapter, expected.adapter)) {
    throw bad(
      `it was made with adapter ${JSON.stringify(header.adapter)}, this session has ${JSON.stringify(expected.adapter)}`,
    );
  }
  if (!same(header.policy, expected.policy)) {
    throw bad(
      `it was made with memory ${JSON.stringify(header.policy)}, this session uses ${JSON.stringify(expected.policy)}`,
    );
  }
  if (header.used > capacity) throw bad(`it holds ${header.used} slots, this session's cache has ${capacity}`);
  const kvDim = expected.model.numKvHeads * expected.model.headDim;
  const rowFloats = header.used * kvDim;
  const payload = body.subarray(12 + headerLength);
  if (payload.byteLength !== 2 * expected.model.numLayers * rowFloats * 4)
    throw bad('the K/V payload has the wrong size');
  const copy = new Float32Array(payload.slice().buffer);
  const rows = Array.from({ length: 2 * expected.model.numLayers }, (_, i) =>
    copy.subarray(i * rowFloats, (i + 1) * rowFloats),
  );
  return { snapshot: header.snapshot, rows };
}

// JSON has no Infinity (an unbounded ccm-concat budget)
const infinityAsString = (_: string, v: unknown) => (v === Number.POSITIVE_INFINITY ? 'Infinity' : v);
const stringAsInfinity = (_: string, v: unknown) => (v === 'Infinity' ? Number.POSITIVE_INFINITY : v);
