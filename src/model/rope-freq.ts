// RoPE's inverse frequencies for a model config, computed once on the CPU (with the config's scaling)
// and uploaded at load; the rope kernel (src/kernels/rope.ts) and the CPU oracle read them.
import { shapeError } from '../errors.js';
import type { RopeScaling } from './types.js';

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
