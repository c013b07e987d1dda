// Y = X W^T (+ bias), optionally accumulated into Y, with W a quantized matrix (Q8_0 or Q4_0) read as
// blocks and dequantized inside the loop (shaders/matmul_q.wgsl; f32 accumulation). The GGUF block
// layout (34 or 18 bytes: not 4-aligned) is repacked at upload into two u32 arrays: the quant words of
// every block in row order, and the blocks' f16 scales two per u32, so no adapter feature is needed.
// `swiglu` fuses the MLP's gate/up projections and SwiGLU as in matmul.ts. Not yet used by the forward
// pass (which still dequantizes at load): the CPU reference is matmul_q.ref.ts.
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

export function matmulQ(b: Batch, a: MatmulQArgs): void {
  const xRowOffset = a.xRowOffset ?? 0;
  const outRowOffset = a.outRowOffset ?? 0;
  if (a.rows < 0 || a.n < 1 || a.k < 1 || a.k % BLOCK) {
    throw shapeError(`matmulQ: bad dims rows=${a.rows} n=${a.n} k=${a.k} (k must be whole blocks of 32)`);
  }
  const wRows = a.swiglu ? 2 : 1;
  const [rows, cols] = a.w.shape;
  if (cols !== a.k || rows < wRows * a.n)
    throw shapeError(`matmulQ.w: expected [>=${wRows * a.n}, ${a.k}], got [${a.w.shape}]`);
  if (a.swiglu && (a.bias || a.accumulate)) throw shapeError('matmulQ: swiglu is not combined with bias or accumulate');
  expectAtLeast('matmulQ.x', a.x, (xRowOffset + a.rows) * a.k, ['f32']);
  if (a.bias) expectAtLeast('matmulQ.bias', a.bias, a.n, ['f32']);
  expectAtLeast('matmulQ.out', a.out, (outRowOffset + a.rows) * a.n, ['f32']);
  if (a.out.buffer === a.x.buffer) throw shapeError('matmulQ: out must not be the x buffer');
  if (a.rows === 0) return;
  const rt = Math.min(a.rows, MAX_RT);
  const nTiles = Math.ceil(a.n / NT);
  const params = packParams([
    ['u32', a.rows],
    ['u32', a.n],
    ['u32', a.k],
    ['u32', a.k / BLOCK], // w_stride: blocks per row
    ['u32', xRowOffset],
    ['u32', outRowOffset],
    ['u32', (a.accumulate ? ACCUMULATE : 0) | (a.bias ? BIAS : 0)],
    ['u32', 0],
    ['f32', 0],
    ['u32', nTiles],
  ]);
  const unused = a.x.buffer; // the LoRA bindings of matmul_out, never read here
  const buffers = [
    a.x.buffer,
    a.w.qs.buffer,
    a.bias?.buffer ?? unused,
    unused,
    unused,
    unused,
    a.out.buffer,
    a.w.scales.buffer,
  ];
  const defines = { RT: rt, NT, WG, W_ROWS: wRows, SWIGLU: a.swiglu === true, Q4: a.w.format === 'q4_0' };
  const [x, z] = flatGrid(b, nTiles, WG);
  b.dispatch(b.gpu.pipeline(shader('matmul_q'), defines), params, buffers, [x, Math.ceil(a.rows / rt), z]);
}
