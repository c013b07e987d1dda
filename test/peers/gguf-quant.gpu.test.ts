// Quantized GGUF files (Q8_0, Q4_0; random weights, GQA) read by ccmem against native llama.cpp on the very
// same files. llama.cpp's CPU matmul over Q8_0/Q4_0 weights first quantizes the activations to 8 bits
// (blocks of 32, Q8_0), which ccmem does not (it dequantizes the weights and multiplies in f32). That
// rounding is llama.cpp's own deviation: measured as llama.cpp on the quantized file against llama.cpp on
// an F32 file of the same dequantized weights, where ccmem agrees to 1e-4. ccmem's deviation from llama.cpp
// on the quantized file must stay within 1.25x llama.cpp's own (both measured per position over 128 forced
// positions, max-relative and l2), and top-1 agreement is pinned at what this random model shows.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { type ModelTensors, writeGguf } from '../../src/model/gguf.js';
import { loadModel } from '../../src/model/load.js';
import { dequantize, quantizeQ4_0, quantizeQ8_0 } from '../../src/model/quant.js';
import { rng, testGpu } from '../helpers/gpu.js';
import { argmax, relError } from '../helpers/gpuModel.js';
import { llamaCppLogits } from '../helpers/llamacpp.js';
import { randomModel } from '../helpers/randomModel.js';

const work = mkdtempSync(join(tmpdir(), 'ccmem-gguf-peer-'));
const POSITIONS = 128;
/**
 * Top-1 agreement with llama.cpp (of 128), two below what this model showed (123 and 120): a random
 * model's near-ties flip under llama.cpp's 3-4% activation rounding, short of the 99% issue 10 aims at.
 */
const TOP1 = { q8_0: 121, q4_0: 118 };

function l2Error(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (actual[i]! - expected[i]!) ** 2;
    norm += expected[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

/** Per-position worst max-relative and l2 errors of `a` against `b`, and how many argmaxes agree. */
function compare(a: Float32Array[], b: Float32Array[]) {
  let max = 0;
  let l2 = 0;
  let agree = 0;
  a.forEach((row, t) => {
    max = Math.max(max, relError(row, b[t]!));
    l2 = Math.max(l2, l2Error(row, b[t]!));
    if (argmax(row) === argmax(b[t]!)) agree++;
  });
  return { max, l2, agree };
}

/** The model as the quantized file holds it: every matrix through the quantizer and back. */
function dequantized(m: ModelTensors, dtype: 'q8_0' | 'q4_0'): ModelTensors {
  const [type, quantize] = dtype === 'q8_0' ? (['Q8_0', quantizeQ8_0] as const) : (['Q4_0', quantizeQ4_0] as const);
  const tensors = new Map(
    [...m.tensors].map(
      ([name, t]) => [name, name.endsWith('norm.weight') ? t : dequantize(type, quantize(t))] as const,
    ),
  );
  return { config: m.config, tensors };
}

describe('quantized GGUF: ccmem vs llama.cpp on the same file', () => {
  for (const dtype of ['q8_0', 'q4_0'] as const) {
    it(`${dtype}: logits at ${POSITIONS} forced positions, top-1 agreement`, async () => {
      const m = randomModel({ hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 128, vocab: 301, seed: 31 });
      const path = join(work, `${dtype}.gguf`);
      writeFileSync(path, writeGguf(m, { dtype }));
      const r = rng(5);
      const ids = Array.from({ length: POSITIONS }, () => Math.floor(r() * 301));
      const gpu = await testGpu();
      const model = await loadModel(gpu, path, { format: 'f32' });
      const session = new Session(model, { capacity: POSITIONS + 8, chunk: 32, logitRows: 32 });
      const ours = await session.logits(ids, { all: true });
      session.dispose();
      gpu.releaseOwner(model.owner);
      const theirs = await llamaCppLogits(path, ids);
      const exactPath = join(work, `${dtype}-dequantized-f32.gguf`);
      writeFileSync(exactPath, writeGguf(dequantized(m, dtype), { dtype: 'f32' }));
      const theirsExact = await llamaCppLogits(exactPath, ids);
      const exact = compare(ours, theirsExact); // the same weights, both in f32
      const own = compare(theirsExact, theirs); // llama.cpp's own deviation: its 8-bit activations
      const vsPeer = compare(ours, theirs);
      const show = (c: ReturnType<typeof compare>) =>
        `max ${c.max.toExponential(2)} l2 ${c.l2.toExponential(2)} top-1 ${c.agree}/${POSITIONS}`;
      const seen = `${dtype}: ccmem vs llama.cpp ${show(vsPeer)}; llama.cpp's own ${show(own)}; same weights in f32 ${show(exact)}`;
      expect(exact.max, seen).toBeLessThan(1e-4);
      expect(vsPeer.l2, seen).toBeLessThan(1.25 * own.l2);
      expect(vsPeer.max, seen).toBeLessThan(1.25 * own.max);
      expect(vsPeer.agree, seen).toBeGreaterThanOrEqual(TOP1[dtype]);
      expect(own.max, seen).toBeLessThan(6e-2); // measured 4.2e-2 (Q8_0), 3.3e-2 (Q4_0)
    });
  }
});
