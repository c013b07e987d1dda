// The kernel calls one model shape makes, as benchmark cases: operands (shapes, formats, how the host data
// is made), the versions to compare (a list of named encode functions; matmul has one per
// MATMUL_VARIANTS entry), the CPU reference of the output, and the FLOPs and compulsory bytes of one call.
import type { Batch } from '../src/gpu/batch.js';
import type { Gpu } from '../src/gpu/device.js';
import { type Format, storageBytes, type Tensor, type WeightFormat } from '../src/gpu/tensor.js';
import { attention, attentionScratchElements } from '../src/kernels/attention.js';
import { attentionRef } from '../src/kernels/attention.ref.js';
import { embedding } from '../src/kernels/embedding.js';
import { embeddingRef } from '../src/kernels/embedding.ref.js';
import { chooseMatmulVariant, MATMUL_VARIANTS, matmul, matmulVariantFits } from '../src/kernels/matmul.js';
import { matmulRef } from '../src/kernels/matmul.ref.js';
import { rmsnorm } from '../src/kernels/rmsnorm.js';
import { rmsnormRef } from '../src/kernels/rmsnorm.ref.js';
import { rope } from '../src/kernels/rope.js';
import { ropeRef } from '../src/kernels/rope.ref.js';
import { type SamplingOptions, sample } from '../src/kernels/sample.js';
import { sampleRef } from '../src/kernels/sample.ref.js';
import { swigluRef } from '../src/kernels/swiglu.ref.js';
import { ropeInvFreq } from '../src/model/rope-freq.js';
import type { ModelConfig } from '../src/model/types.js';

export const KERNELS = ['matmul', 'attention', 'rmsnorm', 'rope', 'embedding', 'sample'] as const;
export type KernelName = (typeof KERNELS)[number];

export type HostArray = Float32Array | Uint32Array;

/** uniform: f32 in [-s, s); ids: u32 in [0, n); values: given; zeros: an output or scratch. */
export type Init = { uniform: number } | { ids: number } | { values: HostArray } | 'zeros';

export interface Operand {
  shape: number[];
  format: Format;
  init: Init;
  /** Read from memory on every call in a real forward (weights, KV cache): rotated across copies when timed. */
  streamed?: boolean;
  /** A weight matrix: stored in the layout the engine gives it on this adapter (blocked on CPU adapters). */
  weight?: boolean;
}

export type Tensors = Record<string, Tensor>;

export interface KernelVersion {
  name: string;
  /** Whether the engine's chooser picks this version for these operands (on this adapter). */
  chosen(t: Tensors): boolean;
  /** Whether this version can compute these operands at all (default: yes). */
  fits?(t: Tensors): boolean;
  encode(b: Batch, t: Tensors): void;
}

export interface KernelCase {
  kernel: KernelName;
  /** What the call is in the forward pass, e.g. 'q GEMV', 'decode'. */
  op: string;
  shape: string;
  operands: Record<string, Operand>;
  versions: KernelVersion[];
  /** The output operand compared with the reference. */
  output: string;
  /** The expected first elements of `output`, from the host data (f16 weights already rounded). */
  reference(host: Record<string, HostArray>): HostArray;
  /** Largest accepted |gpu - ref| / max|ref|. */
  tolerance: number;
  /** FLOPs of one call; 0 where the count is not meaningful (data movement). */
  flops: number;
  /** Compulsory traffic of one call: every operand byte read or written once. */
  bytesRead: number;
  bytesWritten: number;
}

/** Prefill rows (and the prefill attention's queries and keys). */
export const PREFILL_ROWS = 128;
export const DECODE_KEYS = [128, 512, 2048];
/** CPU reference budget in multiply-adds: GEMMs past it are checked on their first rows only. */
const REFERENCE_MACS = 3e7;
const FLOAT_TOLERANCE = 1e-4;

const f32 = (...shape: number[]): Pick<Operand, 'shape' | 'format'> => ({ shape, format: 'f32' });
const bytesOf = (o: Pick<Operand, 'shape' | 'format'>) => storageBytes(o.format, o.shape);
const single = (encode: KernelVersion['encode']): KernelVersion[] => [{ name: 'default', chosen: () => true, encode }];
const asF32 = (a: HostArray) => a as Float32Array;

/**
 * One projection, Y = X W^T with W [n, k]; with `swiglu` the MLP's fused gate/up call: W [2n, k] (gate
 * rows, then up rows) and Y = silu(X W_gate^T) * (X W_up^T).
 */
function matmulCase(
  gpu: Gpu,
  op: string,
  rows: number,
  n: number,
  k: number,
  wf: WeightFormat,
  swiglu = false,
): KernelCase {
  const wRows = swiglu ? 2 * n : n;
  const operands: Record<string, Operand> = {
    x: { ...f32(rows, k), init: { uniform: 1 } },
    w: { shape: [wRows, k], format: wf, init: { uniform: Math.sqrt(3 / k) }, streamed: true, weight: true },
    out: { ...f32(rows, n), init: 'zeros' },
  };
  const checked = Math.max(1, Math.min(rows, Math.floor(REFERENCE_MACS / (wRows * k))));
  const reference = (h: Record<string, HostArray>) => {
    const x = asF32(h.x!);
    const w = asF32(h.w!);
    if (!swiglu) return matmulRef(x, w, checked, n, k);
    const half = (i: number) => matmulRef(x, w.subarray(i * n * k, (i + 1) * n * k), checked, n, k);
    return swigluRef(half(0), half(1), checked * n);
  };
  return {
    kernel: 'matmul',
    op: `${op} ${rows === 1 ? 'GEMV' : 'GEMM'}`,
    shape: `${rows}x${wRows}x${k}`,
    operands,
    versions: MATMUL_VARIANTS.map((variant) => ({
      name: variant,
      chosen: (t) => chooseMatmulVariant(gpu, rows, t.w!, k) === variant,
      fits: (t) => matmulVariantFits(variant, t.w!, k),
      encode: (b, t) => matmul(b, { x: t.x!, w: t.w!, out: t.out!, rows, n, k, swiglu, variant }),
    })),
    output: 'out',
    reference,
    tolerance: FLOAT_TOLERANCE,
    flops: 2 * rows * wRows * k,
    bytesRead: bytesOf(operands.w!) + bytesOf(operands.x!),
    bytesWritten: bytesOf(operands.out!),
  };
}

function attentionCase(c: ModelConfig, op: string, queries: number, keys: number): KernelCase {
  const { numHeads: heads, numKvHeads: kvHeads, headDim } = c;
  const dims = { queries, keys, heads, kvHeads, headDim };
  const kv = { ...f32(keys, kvHeads, headDim), init: { uniform: 1 }, streamed: true };
  const operands: Record<string, Operand> = {
    q: { ...f32(queries, heads, headDim), init: { uniform: 1 } },
    k: kv,
    v: kv,
    out: { ...f32(queries, heads, headDim), init: 'zeros' },
    scratch: { ...f32(attentionScratchElements(queries, heads, headDim, keys)), init: 'zeros' },
  };
  // causal: query t sees keys [0, keys - queries + t]
  let visible = 0;
  for (let t = 0; t < queries; t++) visible += keys - queries + t + 1;
  return {
    kernel: 'attention',
    op,
    shape: `q${queries} k${keys} h${heads}/${kvHeads} d${headDim}`,
    operands,
    versions: single((b, t) => attention(b, { q: t.q!, k: t.k!, v: t.v!, out: t.out!, scratch: t.scratch!, ...dims })),
    output: 'out',
    reference: (h) => attentionRef({ q: asF32(h.q!), k: asF32(h.k!), v: asF32(h.v!), ...dims }),
    tolerance: FLOAT_TOLERANCE,
    flops: 4 * visible * heads * headDim,
    bytesRead: bytesOf(operands.q!) + 2 * bytesOf(kv),
    bytesWritten: bytesOf(operands.out!),
  };
}

function rmsnormCase(c: ModelConfig, op: string, rows: number): KernelCase {
  const dim = c.hiddenSize;
  const eps = c.rmsNormEps;
  const operands: Record<string, Operand> = {
    x: { ...f32(rows, dim), init: { uniform: 1 } },
    weight: { ...f32(dim), init: { uniform: 1 } },
    out: { ...f32(rows, dim), init: 'zeros' },
  };
  return {
    kernel: 'rmsnorm',
    op,
    shape: `${rows}x${dim}`,
    operands,
    versions: single((b, t) => rmsnorm(b, { x: t.x!, weight: t.weight!, out: t.out!, rows, dim, eps })),
    output: 'out',
    reference: (h) => rmsnormRef(asF32(h.x!), asF32(h.weight!), rows, dim, eps),
    tolerance: FLOAT_TOLERANCE,
    flops: 0,
    bytesRead: bytesOf(operands.x!) + bytesOf(operands.weight!),
    bytesWritten: bytesOf(operands.out!),
  };
}

/** RoPE on the query heads of `rows` tokens at positions first .. first + rows - 1 (in place). */
function ropeCase(c: ModelConfig, op: string, rows: number, first: number): KernelCase {
  const { numHeads: heads, headDim } = c;
  const positions = Uint32Array.from({ length: rows }, (_, i) => first + i);
  const operands: Record<string, Operand> = {
    x: { ...f32(rows, heads, headDim), init: { uniform: 1 } },
    positions: { shape: [rows], format: 'u32', init: { values: positions } },
    invFreq: { ...f32(headDim / 2), init: { values: ropeInvFreq(headDim, c.ropeTheta, c.ropeScaling) } },
  };
  return {
    kernel: 'rope',
    op,
    shape: `${rows}x${heads}x${headDim} pos ${first}`,
    operands,
    versions: single((b, t) =>
      rope(b, { x: t.x!, positions: t.positions!, invFreq: t.invFreq!, rows, heads, headDim }),
    ),
    output: 'x',
    reference: (h) => ropeRef(asF32(h.x!), positions, asF32(h.invFreq!), rows, heads, headDim),
    tolerance: FLOAT_TOLERANCE,
    flops: 0,
    bytesRead: bytesOf(operands.x!) + bytesOf(operands.positions!) + bytesOf(operands.invFreq!),
    bytesWritten: bytesOf(operands.x!),
  };
}

function embeddingCase(c: ModelConfig, op: string, rows: number, wf: WeightFormat): KernelCase {
  const { hiddenSize: dim, vocabSize: vocab } = c;
  const operands: Record<string, Operand> = {
    ids: { shape: [rows], format: 'u32', init: { ids: vocab } },
    table: { shape: [vocab, dim], format: wf, init: { uniform: 1 }, weight: true },
    out: { ...f32(rows, dim), init: 'zeros' },
  };
  return {
    kernel: 'embedding',
    op,
    shape: `${rows} of ${vocab}x${dim}`,
    operands,
    versions: single((b, t) => embedding(b, { ids: t.ids!, table: t.table!, out: t.out!, rows, dim, vocab })),
    output: 'out',
    reference: (h) => embeddingRef(h.ids as Uint32Array, asF32(h.table!), undefined, rows, dim, vocab),
    tolerance: 0,
    flops: 0,
    // only the looked-up rows of the table are read
    bytesRead: bytesOf({ shape: [rows, dim], format: wf }) + bytesOf(operands.ids!),
    bytesWritten: bytesOf(operands.out!),
  };
}

const GREEDY: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 };

function sampleCase(c: ModelConfig): KernelCase {
  const vocab = c.vocabSize;
  const operands: Record<string, Operand> = {
    logits: { ...f32(1, vocab), init: { uniform: 8 } },
    seen: { shape: [vocab], format: 'u32', init: 'zeros' },
    out: { shape: [1], format: 'u32', init: 'zeros' },
  };
  return {
    kernel: 'sample',
    op: 'greedy',
    shape: `${vocab}`,
    operands,
    versions: single((b, t) =>
      sample(b, { logits: t.logits!, vocab, out: t.out!, outIndex: 0, seen: t.seen!, options: GREEDY, step: 0 }),
    ),
    output: 'out',
    reference: (h) => Uint32Array.of(sampleRef(asF32(h.logits!), h.seen!, GREEDY, 0).id),
    tolerance: 0,
    flops: 0,
    bytesRead: bytesOf(operands.logits!) + bytesOf(operands.seen!),
    bytesWritten: 4,
  };
}

/** Every case of one model shape: the decode calls (one row) and the prefill calls (PREFILL_ROWS rows). */
export function modelCases(gpu: Gpu, c: ModelConfig, wf: WeightFormat, kernels: readonly KernelName[]): KernelCase[] {
  const D = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  // [op, n, k, fused SwiGLU]: the calls of one decoder layer, as src/model/llama.ts makes them
  const projections: [string, number, number, boolean][] = [
    ['q', qDim, D, false],
    ['k/v', kvDim, D, false],
    ['o', D, qDim, false],
    ['gate+up swiglu', c.intermediateSize, D, true],
    ['down', D, c.intermediateSize, false],
  ];
  const P = PREFILL_ROWS;
  const cases: KernelCase[] = [
    ...projections.map(([op, n, k, swiglu]) => matmulCase(gpu, op, 1, n, k, wf, swiglu)),
    // the LM head runs on the last row only, in prefill too
    matmulCase(gpu, 'lm head', 1, c.vocabSize, D, wf),
    ...projections.map(([op, n, k, swiglu]) => matmulCase(gpu, op, P, n, k, wf, swiglu)),
    ...DECODE_KEYS.map((keys) => attentionCase(c, 'decode', 1, keys)),
    attentionCase(c, 'prefill', P, P),
    rmsnormCase(c, 'decode', 1),
    rmsnormCase(c, 'prefill', P),
    ropeCase(c, 'decode', 1, P - 1),
    ropeCase(c, 'prefill', P, 0),
    embeddingCase(c, 'decode', 1, wf),
    embeddingCase(c, 'prefill', P, wf),
    sampleCase(c),
  ];
  return cases.filter((k) => kernels.includes(k.kernel));
}
