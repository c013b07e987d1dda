// Y = X W^T (+ bias) (+ row-gated LoRA), optionally accumulated into Y (fusing the residual add).
// Three designs compute it (MATMUL_VARIANTS): `tiled` (shaders/matmul.wgsl: a tile of rows x outputs per
// invocation, no barriers, W read in pairs, any k), `tiled8` (the same with W read eight at a time) and
// `coop` (shaders/gemv_coop.wgsl: 64 invocations per output with coalesced reads and a reduction, for
// real GPUs at a few rows). chooseMatmulVariant picks one per adapter and shape. A Q8_0/Q4_0 weight
// (QuantMatrix) is computed by matmul_q.ts instead, with the same epilogue (bias, accumulate, LoRA).
// `outRowOffset` lets the K/V projections write straight into a KV cache. The LoRA runs as two
// dispatches of the same shader: u = X A^T (A as an f32 weight; tiles whose rows all have gate 0 are
// skipped), then the main product adds gate[r] * scale * u[r, :] . B[n, :] for rows with gate != 0.

import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import type { Gpu } from '../gpu/device.js';
import { expectAtLeast, type Format, type Tensor, weightDefines } from '../gpu/tensor.js';
import { expectQuantMatrix, isQuantMatrix, launchMatmulQ, type QuantMatrix } from './matmul_q.js';
import { shader } from './shaders.js';

export interface LoraArgs {
  a: Tensor;
  b: Tensor;
  scale: number;
  gate: Tensor;
  u: Tensor;
}

/**
 * Kernel designs for the same product; `chooseMatmulVariant` picks one per adapter and shape, and the
 * kernel benchmark (bench/kernels.ts) validates and times every one.
 */
export const MATMUL_VARIANTS = ['tiled', 'tiled8', 'coop'] as const;
export type MatmulVariant = (typeof MATMUL_VARIANTS)[number];

/**
 * Rows up to which GPUs use `coop` (one workgroup per few outputs, all rows at once): decode and short
 * chunks. The design choice for real GPUs is not measured yet (bench/gpu.sh runs bench:kernels there).
 */
const COOP_MAX_ROWS = 4;

/**
 * Whether `variant` can compute this product: the 8-wide designs need rows (and k) in whole 8s, and the
 * cooperative one row-major weights (blocked ones are laid out for the CPU-adapter tiles).
 */
export function matmulVariantFits(variant: MatmulVariant, w: Tensor, k: number): boolean {
  if (variant === 'tiled') return true;
  return k % 8 === 0 && w.rowStride % 8 === 0 && !(variant === 'coop' && w.blocked);
}

/**
 * The design for this adapter and shape. On CPU-emulated adapters, measured with bench:kernels: the
 * barrier-free tiles with 16-byte weight loads (on lavapipe, with the blocked layout, 2.2x the pair loads
 * for the LM head GEMV and 1.1-1.6x for 128-row GEMMs). On GPUs, by design until measured there: the
 * cooperative GEMV (coalesced reads, subgroup reductions) for decode-sized products, tiles for more rows.
 */
export function chooseMatmulVariant(gpu: Gpu, rows: number, w: Tensor, k: number): MatmulVariant {
  const wanted: MatmulVariant = !gpu.features.cpuEmulated && rows <= COOP_MAX_ROWS ? 'coop' : 'tiled8';
  return matmulVariantFits(wanted, w, k) ? wanted : 'tiled';
}

export interface MatmulArgs {
  x: Tensor;
  /** A float matrix, or Q8_0/Q4_0 blocks (matmul_q.ts: one design, the variant is ignored). */
  w: Tensor | QuantMatrix;
  out: Tensor;
  rows: number;
  n: number;
  k: number;
  bias?: Tensor;
  accumulate?: boolean;
  xRowOffset?: number;
  outRowOffset?: number;
  lora?: LoraArgs;
  /**
   * The MLP's gate/up projections and SwiGLU in one pass: `w` is [2n, k], gate rows then up rows, and
   * out = silu(x W_gate^T) * (x W_up^T). Not combined with bias, accumulate or LoRA.
   */
  swiglu?: boolean;
  /** Forces one design (benchmarks, tests); by default chosen per adapter and shape. */
  variant?: MatmulVariant;
}

const WG = 64;
const NT = 4; // outputs per invocation: one x read feeds four W rows
const MAX_RT = 4; // rows per invocation: one W read feeds up to four rows
const COOP_OUTS = 4; // outputs per workgroup of the coop design (64 invocations each)
const ACCUMULATE = 1;
const BIAS = 2;
const LORA = 4;
const GATED = 8;

/** One dispatch of shaders/matmul.wgsl; unused optional bindings are filled with `x` (never read). */
interface Launch {
  x: Tensor;
  xRowOffset: number;
  w: Tensor;
  out: Tensor;
  outRowOffset: number;
  rows: number;
  n: number;
  k: number;
  flags: number;
  bias?: Tensor | undefined;
  gate?: Tensor | undefined;
  u?: Tensor | undefined;
  loraB?: Tensor | undefined;
  rank?: number;
  scale?: number;
  variant: MatmulVariant;
  /** W rows per output: 2 for the fused SwiGLU (gate and up). */
  wRows: 1 | 2;
}

export function matmul(b: Batch, a: MatmulArgs): void {
  const xRowOffset = a.xRowOffset ?? 0;
  const outRowOffset = a.outRowOffset ?? 0;
  if (a.rows < 0 || a.n < 1 || a.k < 1) throw shapeError(`matmul: bad dims rows=${a.rows} n=${a.n} k=${a.k}`);
  expectAtLeast('matmul.x', a.x, (xRowOffset + a.rows) * a.k, ['f32']);
  const wRows: 1 | 2 = a.swiglu ? 2 : 1;
  const quantized = isQuantMatrix(a.w) ? a.w : undefined;
  if (quantized) expectQuantMatrix('matmul.w', quantized, wRows, a.n, a.k);
  else expectMatrix('matmul.w', a.w as Tensor, wRows * a.n, a.k, ['f32', 'f16', 'f16p']);
  if (a.swiglu && (a.bias || a.accumulate || a.lora)) {
    throw shapeError('matmul: swiglu is not combined with bias, accumulate or LoRA');
  }
  if (a.bias) expectAtLeast('matmul.bias', a.bias, a.n, ['f32']);
  expectAtLeast('matmul.out', a.out, (outRowOffset + a.rows) * a.n, ['f32']);
  if (a.out.buffer === a.x.buffer) throw shapeError('matmul: out must not be the x buffer');
  const w = a.w as Tensor;
  const variant = a.variant ?? (quantized ? 'tiled' : chooseMatmulVariant(b.gpu, a.rows, w, a.k));
  if (!quantized && !matmulVariantFits(variant, w, a.k)) {
    throw shapeError(
      `matmul: variant ${variant} does not fit (it needs k and the weight row stride in multiples of 8${variant === 'coop' ? ', and row-major weights' : ''})`,
    );
  }
  let flags = (a.accumulate ? ACCUMULATE : 0) | (a.bias ? BIAS : 0);
  const l = a.lora;
  let rank = 0;
  if (l) {
    rank = l.a.shape[0] ?? 0;
    expectMatrix('matmul.lora.a', l.a, rank, a.k, ['f32']);
    expectMatrix('matmul.lora.b', l.b, a.n, rank, ['f32']);
    expectAtLeast('matmul.lora.gate', l.gate, a.rows, ['f32']);
    expectAtLeast('matmul.lora.u', l.u, a.rows * rank, ['f32']);
    if (l.u.buffer === a.x.buffer || l.u.buffer === a.out.buffer) {
      throw shapeError('matmul: lora.u must be its own scratch buffer');
    }
    launch(b, {
      x: a.x,
      xRowOffset,
      w: l.a,
      out: l.u,
      outRowOffset: 0,
      rows: a.rows,
      n: rank,
      k: a.k,
      flags: GATED,
      gate: l.gate,
      variant: chooseMatmulVariant(b.gpu, a.rows, l.a, a.k),
      wRows: 1,
    });
    flags |= LORA;
  }
  const epilogue = { bias: a.bias, gate: l?.gate, u: l?.u, loraB: l?.b, rank, scale: l?.scale ?? 0 };
  const common = { x: a.x, xRowOffset, out: a.out, outRowOffset, rows: a.rows, n: a.n, k: a.k, flags, wRows };
  if (quantized) launchMatmulQ(b, { ...common, w: quantized, ...epilogue });
  else launch(b, { ...common, w, ...epilogue, variant });
}

/** A [rows >= n, cols = k] matrix: the last dimension must be k, as the row stride derives from it. */
function expectMatrix(name: string, t: Tensor, n: number, k: number, formats: readonly Format[]): void {
  if (n < 1 || t.shape.length !== 2 || t.shape[1] !== k || (t.shape[0] as number) < n) {
    throw shapeError(`${name}: expected shape [>=${n}, ${k}], got [${t.shape}]`);
  }
  expectAtLeast(name, t, n * k, formats);
}

function launch(b: Batch, s: Launch): void {
  const coop = s.variant === 'coop';
  const rt = Math.min(Math.max(s.rows, 1), coop ? COOP_MAX_ROWS : MAX_RT);
  const nt = coop ? COOP_OUTS : NT;
  const nTiles = Math.ceil(s.n / nt);
  const rowTiles = Math.ceil(s.rows / rt);
  const params = packParams([
    ['u32', s.rows],
    ['u32', s.n],
    ['u32', s.k],
    ['u32', s.w.rowStride],
    ['u32', s.xRowOffset],
    ['u32', s.outRowOffset],
    ['u32', s.flags],
    ['u32', s.rank ?? 0],
    ['f32', s.scale ?? 0],
    ['u32', nTiles],
  ]);
  const unused = s.x.buffer;
  const buffers = [
    s.x.buffer,
    s.w.buffer,
    s.bias?.buffer ?? unused,
    s.gate?.buffer ?? unused,
    s.u?.buffer ?? unused,
    s.loraB?.buffer ?? unused,
    s.out.buffer,
  ];
  // Single-row (decode) pipelines get k as a constant: their unrolled loop measured about twice as fast on
  // lavapipe and compiles in tens of milliseconds; with four rows the same unrolling takes seconds.
  const defines = {
    RT: rt,
    W_BINDING: 2,
    W_ROWS: s.wRows,
    SWIGLU: s.wRows === 2,
    VEC8: s.variant !== 'tiled',
    ...weightDefines(s.w),
  };
  // output tiles along x (folded into z past the per-dimension limit), row tiles along y
  const [x, z] = flatGrid(b, nTiles, coop ? 1 : WG);
  const pipeline = coop
    ? b.gpu.pipeline(shader('gemv_coop'), { ...defines, OUTS: COOP_OUTS })
    : b.gpu.pipeline(shader('matmul'), { ...defines, WG, NT, K8: rt === 1 ? `${Math.floor(s.k / 8)}u` : 'p.k / 8u' });
  b.dispatch(pipeline, params, buffers, [x, rowTiles, z]);
}
