// Y = X W^T (+ bias), optionally accumulated into Y, with W a quantized matrix (Q8_0 or Q4_0) read as
// blocks and dequantized inside the loop (shaders/matmul_q.wgsl; f32 accumulation). The GGUF block
// layout (34 or 18 bytes: not 4-aligned) is repacked at upload into two u32 arrays: the quant words of
// every block in row order, and the blocks' f16 scales two per u32, so no adapter feature is needed.
// `swiglu` fuses the MLP's gate/up projections and SwiGLU as in matmul.ts, which routes a quantized
// weight here (with its row-gated LoRA). The CPU reference is matmul_q.ref.ts.
import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import type { Gpu } from '../gpu/device.js';
import type { MemoryTag } from '../gpu/ledger.js';
import { expectAtLeast, type Tensor, uploadU32 } from '../gpu/tensor.js';
import { shader } from './shaders.js';

export type QuantFormat = 'q8_0' | 'q4_0';

/** A [rows, cols] matrix of ggml blocks of 32 along each row, repacked for matmul_q.wgsl. */
export interface QuantMatrix {
  readonly format: QuantFormat;
  readonly shape: readonly [number, number];
  /** WORDS u32 per block (8 for Q8_0, 4 for Q4_0), blocks in row order. */
  readonly qs: Tensor;
  /** One f16 scale per block, two per u32. */
  readonly scales: Tensor;
}

const BLOCK = 32;
const LAYOUT: Record<QuantFormat, { blockBytes: number; words: number }> = {
  q8_0: { blockBytes: 34, words: 8 },
  q4_0: { blockBytes: 18, words: 4 },
};

/** GGUF block bytes (f16 d, then the quants) -> the quant words and the f16 scale bits (padded to even). */
export function repackQuant(format: QuantFormat, blocks: Uint8Array): { qs: Uint32Array; scales: Uint16Array } {
  const { blockBytes, words } = LAYOUT[format];
  if (blocks.byteLength % blockBytes)
    throw shapeError(`repackQuant: ${blocks.byteLength} bytes are not ${format} blocks`);
  const count = blocks.byteLength / blockBytes;
  const view = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const qs = new Uint32Array(count * words);
  const scales = new Uint16Array(count + (count & 1));
  for (let b = 0; b < count; b++) {
    scales[b] = view.getUint16(b * blockBytes, true);
    for (let i = 0; i < words; i++) qs[b * words + i] = view.getUint32(b * blockBytes + 2 + 4 * i, true);
  }
  return { qs, scales };
}

/** Uploads a [rows, cols] matrix given as GGUF blocks (cols in whole blocks of 32). */
export function uploadQuantMatrix(
  gpu: Gpu,
  req: { tag: MemoryTag; owner: string; label: string },
  format: QuantFormat,
  shape: readonly [number, number],
  blocks: Uint8Array,
): QuantMatrix {
  const [rows, cols] = shape;
  if (rows < 1 || cols < 1 || cols % BLOCK) {
    throw shapeError(`${req.label}: a ${format} matrix needs rows and columns in whole blocks of 32, got [${shape}]`);
  }
  if (blocks.byteLength !== (rows * cols * LAYOUT[format].blockBytes) / BLOCK) {
    throw shapeError(`${req.label}: ${blocks.byteLength} bytes for a ${format} [${shape}]`);
  }
  const { qs, scales } = repackQuant(format, blocks);
  return {
    format,
    shape: [rows, cols],
    qs: uploadU32(gpu, { ...req, label: `${req.label}.qs`, shape: [qs.length] }, qs),
    scales: uploadU32(
      gpu,
      { ...req, label: `${req.label}.scales`, shape: [scales.length / 2] },
      new Uint32Array(scales.buffer),
    ),
  };
}

export interface MatmulQArgs {
  x: Tensor;
  w: QuantMatrix;
  out: Tensor;
  rows: number;
  n: number;
  k: number;
  bias?: Tensor;
  accumulate?: boolean;
  xRowOffset?: number;
  outRowOffset?: number;
  /** `w` is [2n, k], gate rows then up rows, and out = silu(x W_gate^T) * (x W_up^T); no bias or accumulate. */
  swiglu?: boolean;
}

const WG = 64;
const NT = 4;
const MAX_RT = 4;
const ACCUMULATE = 1;
const BIAS = 2;

export const isQuantMatrix = (w: object): w is QuantMatrix => 'qs' in w && 'scales' in w;

/** Checks that `w` holds [>= wRows * n, k] in whole blocks; shared with matmul.ts, which routes here. */
export function expectQuantMatrix(name: string, w: QuantMatrix, wRows: number, n: number, k: number): void {
  const [rows, cols] = w.shape;
  if (k % BLOCK || cols !== k || rows < wRows * n) {
    throw shapeError(
      `${name}: expected a ${w.format} matrix [>=${wRows * n}, ${k}] (k in whole blocks of 32), got [${w.shape}]`,
    );
  }
}

export function matmulQ(b: Batch, a: MatmulQArgs): void {
  const xRowOffset = a.xRowOffset ?? 0;
  const outRowOffset = a.outRowOffset ?? 0;
  if (a.rows < 0 || a.n < 1 || a.k < 1) throw shapeError(`matmulQ: bad dims rows=${a.rows} n=${a.n} k=${a.k}`);
  const wRows = a.swiglu ? 2 : 1;
  expectQuantMatrix('matmulQ.w', a.w, wRows, a.n, a.k);
  if (a.swiglu && (a.bias || a.accumulate)) throw shapeError('matmulQ: swiglu is not combined with bias or accumulate');
  expectAtLeast('matmulQ.x', a.x, (xRowOffset + a.rows) * a.k, ['f32']);
  if (a.bias) expectAtLeast('matmulQ.bias', a.bias, a.n, ['f32']);
  expectAtLeast('matmulQ.out', a.out, (outRowOffset + a.rows) * a.n, ['f32']);
  if (a.out.buffer === a.x.buffer) throw shapeError('matmulQ: out must not be the x buffer');
  launchMatmulQ(b, {
    ...a,
    xRowOffset,
    outRowOffset,
    flags: (a.accumulate ? ACCUMULATE : 0) | (a.bias ? BIAS : 0),
    wRows,
  });
}

/** One dispatch of shaders/matmul_q.wgsl over checked arguments; `flags` as in shaders/matmul_out.wgsl. */
export interface QuantLaunch {
  x: Tensor;
  xRowOffset: number;
  w: QuantMatrix;
  out: Tensor;
  outRowOffset: number;
  rows: number;
  n: number;
  k: number;
  flags: number;
  wRows: 1 | 2;
  bias?: Tensor | undefined;
  /** The row-gated LoRA epilogue (flag LORA): gate, u = X A^T, B, rank and scale. */
  gate?: Tensor | undefined;
  u?: Tensor | undefined;
  loraB?: Tensor | undefined;
  rank?: number;
  scale?: number;
}

export function launchMatmulQ(b: Batch, s: QuantLaunch): void {
  if (s.rows === 0) return;
  const rt = Math.min(s.rows, MAX_RT);
  const nTiles = Math.ceil(s.n / NT);
  const params = packParams([
    ['u32', s.rows],
    ['u32', s.n],
    ['u32', s.k],
    ['u32', s.k / BLOCK], // w_stride: blocks per row
    ['u32', s.xRowOffset],
    ['u32', s.outRowOffset],
    ['u32', s.flags],
    ['u32', s.rank ?? 0],
    ['f32', s.scale ?? 0],
    ['u32', nTiles],
  ]);
  const unused = s.x.buffer; // optional bindings not flagged are never read
  const buffers = [
    s.x.buffer,
    s.w.qs.buffer,
    s.bias?.buffer ?? unused,
    s.gate?.buffer ?? unused,
    s.u?.buffer ?? unused,
    s.loraB?.buffer ?? unused,
    s.out.buffer,
    s.w.scales.buffer,
  ];
  const defines = { RT: rt, NT, WG, W_ROWS: s.wRows, SWIGLU: s.wRows === 2, Q4: s.w.format === 'q4_0' };
  const [x, z] = flatGrid(b, nTiles, WG);
  b.dispatch(b.gpu.pipeline(shader('matmul_q'), defines), params, buffers, [x, Math.ceil(s.rows / rt), z]);
}
