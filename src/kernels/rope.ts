// Rotary position embedding (Hugging Face rotate_half layout) applied in place on the GPU, and the
// inverse frequencies computed once on the CPU, including the config's scaling.

import { shapeError } from '../errors.js';
import { type Batch, flatGrid, packParams } from '../gpu/batch.js';
import { expectAtLeast, type Tensor } from '../gpu/tensor.js';
import type { RopeScaling } from '../model/types.js';

export interface RopeArgs {
  x: Tensor;
  /** A u32 tensor whose values the kernel reads as i32 (same bits): negative positions are allowed. */
  positions: Tensor;
  positionsOffset?: number;
  invFreq: Tensor;
  rows: number;
  heads: number;
  headDim: number;
  rowOffset?: number;
}

const WG = 64;

export function rope(b: Batch, a: RopeArgs): void {
  const posOffset = a.positionsOffset ?? 0;
  const rowOffset = a.rowOffset ?? 0;
  if (a.rows < 0 || a.heads < 1 || a.headDim < 2 || a.headDim % 2 !== 0) {
    throw shapeError(`rope: bad dims rows=${a.rows} heads=${a.heads} headDim=${a.headDim} (headDim must be even)`);
  }
  const half = a.headDim / 2;
  expectAtLeast('rope.x', a.x, (rowOffset + a.rows) * a.heads * a.headDim, ['f32']);
  expectAtLeast('rope.positions', a.positions, posOffset + a.rows, ['u32']);
  expectAtLeast('rope.invFreq', a.invFreq, half, ['f32']);
  const count = a.rows * a.heads * half;
  const params = packParams([
    ['u32', count],
    ['u32', a.heads],
    ['u32', half],
    ['u32', posOffset],
    ['u32', rowOffset],
  ]);
  b.dispatch(
    b.gpu.pipeline('rope', { WG }),
    params,
    [a.x.buffer, a.positions.buffer, a.invFreq.buffer],
    flatGrid(b, count, WG),
  );
}

/**
 * inv_freq[i] = theta^(-2i / headDim), then scaled as transformers' ROPE_INIT_FUNCTIONS do: 'linear'
 * divides by the factor; 'llama3' (_compute_llama3_parameters) divides low frequencies (wavelength past
 * originalMaxPositions / lowFreqFactor) by the factor, keeps high ones (wavelength below
 * originalMaxPositions / highFreqFactor) and interpolates smoothly in between.
 */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling): Float32Array {
  if (headDim < 2 || headDim % 2 !== 0) throw shapeError(`ropeInvFreq: headDim ${headDim} must be even`);
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    // Rounded to f32 at each step, as torch computes it.
    const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
    out[i] = scaleInvFreq(invFreq, scaling);
  }
  return out;
}

function scaleInvFreq(invFreq: number, s: RopeScaling): number {
  switch (s.type) {
    case 'none':
      return invFreq;
    case 'linear':
      return invFreq / s.factor;
    case 'llama3': {
      const wavelen = (2 * Math.PI) / invFreq;
      if (wavelen < s.originalMaxPositions / s.highFreqFactor) return invFreq;
      if (wavelen > s.originalMaxPositions / s.lowFreqFactor) return invFreq / s.factor;
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return ((1 - smooth) * invFreq) / s.factor + smooth * invFreq;
    }
  }
}
