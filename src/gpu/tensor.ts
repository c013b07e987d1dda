// A tensor is a GPU buffer with a shape and a storage format. Activations are f32. Weights are f32,
// f16 (native array<f16>, needs shader-f16) or f16p (two halves packed per u32, any adapter). For the
// f16 formats each row is padded to an even length so that a packed pair never straddles two rows.
import { shapeError } from '../errors.js';
import type { Gpu } from './device.js';
import { f32ToF16Bits } from './half.js';
import type { MemoryTag } from './ledger.js';

export type Format = 'f32' | 'f16' | 'f16p' | 'u32';
export type WeightFormat = 'f32' | 'f16' | 'f16p';

export interface Tensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly format: Format;
  /** Elements between the starts of two consecutive rows (last dimension, padded for f16 formats). */
  readonly rowStride: number;
  /**
   * Half-precision matrix stored in 32-row blocks (BLOCK_ROWS): for each block and each 8-column chunk, the
   * 32 rows' 8 halves (16 bytes each) lie side by side. Invocations handling neighbouring rows then read
   * neighbouring bytes, which CPU-emulated adapters (every load a gather) stream far faster (bench:
   * kernels). Shaders address it through w_row_base / W_CHUNK_STEP (shaders/wload.wgsl).
   */
  readonly blocked?: boolean;
}

export const BLOCK_ROWS = 32;

/** Whether a [rows, cols] matrix of `format` can take the blocked layout: halves, whole blocks and chunks. */
export function canBlock(format: Format, shape: readonly number[]): boolean {
  const [rows = 0, cols = 0] = shape;
  return shape.length === 2 && isHalf(format) && rows % BLOCK_ROWS === 0 && cols % 8 === 0;
}

export const isHalf = (f: Format) => f === 'f16' || f === 'f16p';

export function rowStrideFor(format: Format, cols: number): number {
  return isHalf(format) ? cols + (cols & 1) : cols;
}

export function storageBytes(format: Format, shape: readonly number[]): number {
  const cols = shape.at(-1) ?? 1;
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const stride = rowStrideFor(format, cols);
  const bytes = rows * stride * (isHalf(format) ? 2 : 4);
  return Math.ceil(bytes / 4) * 4;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export interface TensorRequest {
  tag: MemoryTag;
  owner: string;
  label: string;
  shape: readonly number[];
  format?: Format;
  /** Store in the blocked layout (Tensor.blocked); only where canBlock holds. */
  blocked?: boolean;
}

export function createTensor(gpu: Gpu, req: TensorRequest): Tensor {
  const format = req.format ?? 'f32';
  if (format === 'f16' && !gpu.features.f16) throw shapeError(`${req.label}: f16 storage needs shader-f16; use f16p`);
  const buffer = gpu.createBuffer({
    tag: req.tag,
    owner: req.owner,
    label: req.label,
    size: storageBytes(format, req.shape),
  });
  if (req.blocked && !canBlock(format, req.shape)) {
    throw shapeError(`${req.label}: a blocked ${format} [${req.shape}] needs halves, rows in 32s and columns in 8s`);
  }
  const rowStride = rowStrideFor(format, req.shape.at(-1) ?? 1);
  return { buffer, shape: [...req.shape], format, rowStride, ...(req.blocked ? { blocked: true } : {}) };
}

/** Encodes f32 values (row-major, `shape`) into the storage bytes of `format`, blocked when asked. */
export function encodeRows(
  values: Float32Array,
  shape: readonly number[],
  format: Format,
  blocked = false,
): Uint8Array {
  if (values.length !== numel(shape)) throw shapeError(`encodeRows: ${values.length} values for shape [${shape}]`);
  if (format === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (format === 'u32') throw shapeError('encodeRows: u32 tensors are written directly');
  const cols = shape.at(-1) ?? 1;
  const stride = rowStrideFor(format, cols);
  const rows = values.length / Math.max(cols, 1);
  const halves = new Uint16Array(Math.ceil((rows * stride) / 2) * 2);
  if (blocked && !canBlock(format, shape)) throw shapeError(`encodeRows: [${shape}] ${format} cannot be blocked`);
  // element (r, c) of a blocked matrix: block r / 32, chunk c / 8, row r % 32 within it, half c % 8
  const at = blocked
    ? (r: number, c: number) => (((r >> 5) * (cols >> 3) + (c >> 3)) * BLOCK_ROWS + (r & 31)) * 8 + (c & 7)
    : (r: number, c: number) => r * stride + c;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) halves[at(r, c)] = f32ToF16Bits(values[r * cols + c] as number);
  }
  return new Uint8Array(halves.buffer);
}

/** Creates a tensor and fills it from f32 values (converted to the storage format). */
export function uploadTensor(gpu: Gpu, req: TensorRequest, values: Float32Array): Tensor {
  const t = createTensor(gpu, req);
  gpu.write(t.buffer, encodeRows(values, t.shape, t.format, t.blocked));
  return t;
}

export function uploadU32(gpu: Gpu, req: Omit<TensorRequest, 'format'>, values: Uint32Array): Tensor {
  const t = createTensor(gpu, { ...req, format: 'u32' });
  gpu.write(t.buffer, values);
  return t;
}

/** Reads an f32 tensor back (tests and CLI only). */
export async function readF32(gpu: Gpu, t: Tensor): Promise<Float32Array> {
  if (t.format !== 'f32') throw shapeError(`readF32: ${t.format} tensor`);
  return new Float32Array(await gpu.read(t.buffer, 0, numel(t.shape) * 4));
}

export function expectShape(name: string, t: Tensor, shape: readonly number[], formats?: readonly Format[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw shapeError(`${name}: expected shape [${shape}], got [${t.shape}]`);
  }
  if (formats && !formats.includes(t.format)) {
    throw shapeError(`${name}: expected format ${formats.join('|')}, got ${t.format}`);
  }
}

/** For kernels that address a prefix of a larger buffer (caches, scratch): at least `elements` stored. */
export function expectAtLeast(name: string, t: Tensor, elements: number, formats?: readonly Format[]): void {
  const stored = numel(t.shape);
  if (stored < elements) throw shapeError(`${name}: needs ${elements} elements, tensor [${t.shape}] holds ${stored}`);
  if (formats && !formats.includes(t.format)) {
    throw shapeError(`${name}: expected format ${formats.join('|')}, got ${t.format}`);
  }
}

/** The preprocessor defines that select the weight storage format and layout in shaders/wload.wgsl. */
export function weightDefines(t: Tensor): { F16: boolean; F16P: boolean; HALF: boolean; BLOCKED: boolean } {
  const format = t.format;
  if (format === 'u32') throw shapeError('weights cannot be u32');
  return { F16: format === 'f16', F16P: format === 'f16p', HALF: isHalf(format), BLOCKED: t.blocked === true };
}
