// Export and import of a session's context memory, so a conversation survives a page reload. A frame
// (src/util/frame.ts) "CCMM", version 1: the header JSON, then the K/V rows (f32, per layer: K then V,
// slots [0, used)). Import checks the digest, the version, the model and adapter identity and the policy
// before anything is changed.
import { invalidInput } from '../errors.js';
import type { ModelConfig } from '../model/types.js';
import { decodeFrame, encodeFrame, type FrameFormat } from '../util/frame.js';
import type { ResolvedMemory } from './policy.js';

export const MEMORY_FORMAT_VERSION = 1;
const FORMAT: FrameFormat = { magic: 0x4d4d4343, version: MEMORY_FORMAT_VERSION, what: 'memory', json: 'header' };

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
  const header: Header = { ...id, snapshot, used };
  return encodeFrame(FORMAT, header, rows, infinityAsString);
}

/** Validates `bytes` against the importing session; throws INVALID_INPUT naming what is wrong. */
export async function decodeMemory(
  bytes: Uint8Array,
  expected: MemoryIdentity,
  capacity: number,
): Promise<{ snapshot: MemorySnapshot; rows: Float32Array[] }> {
  const bad = (why: string) => invalidInput(`cannot import the memory: ${why}`);
  const { json, payload } = await decodeFrame(bytes, FORMAT, bad, stringAsInfinity);
  const header = json as Header;
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
