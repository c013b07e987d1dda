// Where a decode step's time goes: the whole step, then each kernel family alone (every layer's instances
// of it in one command buffer), on a model shape from ../shared/fixtures with random f16 weights.
// Usage (after tsc -p bench/tsconfig.json): node .tmp/bench/bench/profile-decode.js [shape] [past]
import { readFileSync } from 'node:fs';
import { Batch } from '../src/gpu/batch.js';
import { acquireGpu } from '../src/gpu/device.js';
import { nodeGpu } from '../src/gpu/node.js';
import { attention } from '../src/kernels/attention.js';
import { matmul } from '../src/kernels/matmul.js';
import { rmsnorm } from '../src/kernels/rmsnorm.js';
import { rope } from '../src/kernels/rope.js';
import { parseConfig } from '../src/model/config.js';
import { createState, encodeForward } from '../src/model/llama.js';
import { uploadWeights } from '../src/model/weights.js';
import { randomWeights } from './random-weights.js';

const model = process.argv[2] ?? 'smollm2-135m';
const past = Number(process.argv[3] ?? 128);
const c = parseConfig(JSON.parse(readFileSync(`../shared/fixtures/${model}/config.json`, 'utf8')));
const gpu = await acquireGpu({ gpu: await nodeGpu() });
const format = gpu.features.f16 ? 'f16' : 'f16p';
const w = await uploadWeights(gpu, c, randomWeights(c, 1), { format, owner: 'w' });
const s = createState(gpu, c, { capacity: past + 8, chunk: 1, logitRows: 1, owner: 's' });
console.log(gpu.adapterName, format);

async function time(name: string, encode: (b: Batch) => void, reps = 5): Promise<number> {
  const b = new Batch(gpu);
  encode(b);
  b.submit();
  await gpu.device.queue.onSubmittedWorkDone();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    encode(b);
    const t1 = performance.now();
    b.submit();
    await gpu.device.queue.onSubmittedWorkDone();
    ts.push(performance.now() - t0);
    if (i === 0) console.log(`  (${name}: encode ${(t1 - t0).toFixed(2)} ms)`);
  }
  ts.sort((a, b) => a - b);
  const med = ts[ts.length >> 1]!;
  console.log(`${name.padEnd(22)} ${med.toFixed(2)} ms`);
  return med;
}
const D = c.hiddenSize;
const F = c.intermediateSize;
const hd = c.headDim;
const qDim = c.numHeads * hd;
const kvDim = c.numKvHeads * hd;
const layers = w.layers;
await time('decode step', (b) => encodeForward(b, c, w, s, { past, rows: 1, logits: 'last' }));
await time('empty submit', () => {});
await time('rmsnorm x2L', (b) => {
  for (const L of layers) {
    rmsnorm(b, { x: s.x, weight: L.inputNorm, out: s.xn, rows: 1, dim: D, eps: 1e-5 });
    rmsnorm(b, { x: s.x, weight: L.postNorm, out: s.xn, rows: 1, dim: D, eps: 1e-5 });
  }
});
await time('qkv', (b) => {
  for (const [l, L] of layers.entries()) {
    matmul(b, { x: s.xn, w: L.q, out: s.q, rows: 1, n: qDim, k: D });
    matmul(b, { x: s.xn, w: L.k, out: s.kCache[l]!, rows: 1, n: kvDim, k: D, outRowOffset: past });
    matmul(b, { x: s.xn, w: L.v, out: s.vCache[l]!, rows: 1, n: kvDim, k: D, outRowOffset: past });
  }
});
await time('rope', (b) => {
  for (const [l] of layers.entries()) {
    const a = { positions: s.positions, positionsOffset: past, invFreq: w.invFreq, rows: 1, headDim: hd };
    rope(b, { ...a, x: s.q, heads: c.numHeads });
    rope(b, { ...a, x: s.kCache[l]!, heads: c.numKvHeads, rowOffset: past });
  }
});
await time('attention', (b) => {
  for (const [l] of layers.entries()) {
    attention(b, {
      q: s.q,
      k: s.kCache[l]!,
      v: s.vCache[l]!,
      out: s.attn,
      queries: 1,
      keys: past + 1,
      heads: c.numHeads,
      kvHeads: c.numKvHeads,
      headDim: hd,
      scratch: s.attnScratch,
    });
  }
});
await time('o', (b) => {
  for (const L of layers) matmul(b, { x: s.attn, w: L.o, out: s.x, rows: 1, n: D, k: qDim, accumulate: true });
});
await time('gate/up+swiglu', (b) => {
  for (const L of layers) matmul(b, { x: s.xn, w: L.gateUp, out: s.act, rows: 1, n: F, k: D, swiglu: true });
});
await time('down', (b) => {
  for (const L of layers) matmul(b, { x: s.act, w: L.down, out: s.x, rows: 1, n: D, k: F, accumulate: true });
});
await time('lm head', (b) => matmul(b, { x: s.xn, w: w.lmHead, out: s.logits, rows: 1, n: c.vocabSize, k: D }));
gpu.destroy();
