import { writeFileSync } from 'node:fs';
import { it } from 'vitest';
import { writeGguf } from '../../src/model/gguf.js';
import { referenceLogits } from '../../src/reference/llama.js';
import { rng } from '../helpers/gpu.js';
import { llamaCppLogits } from '../helpers/llamacpp.js';
import { randomModel } from '../helpers/randomModel.js';
function rel(r: Float32Array, p: Float32Array) {
  let d = 0, s = 0;
  for (let i = 0; i < p.length; i++) { d = Math.max(d, Math.abs(r[i]! - p[i]!)); s = Math.max(s, Math.abs(p[i]!)); }
  return d / s;
}
it('diag', async () => {
  const m = randomModel({ hidden: 64, layers: 2, heads: 4, kvHeads: 4, intermediate: 160, vocab: 320, seed: 1 });
  writeFileSync('/tmp/m1.gguf', writeGguf(m, { dtype: 'f32' }));
  const V = 320;
  for (const n of [3, 8, 20]) {
    const r = rng(101); const ids = Array.from({ length: n }, () => Math.floor(r() * 320));
    const peer = await llamaCppLogits('/tmp/m1.gguf', ids);
    const ref = referenceLogits(m, ids);
    console.log(n, peer.map((p, t) => rel(ref.subarray(t * V, (t + 1) * V), p).toExponential(1)).join(' '));
    const last = peer[n - 1]!;
    console.log('last vs other ref positions', Array.from({ length: n }, (_, t) => rel(ref.subarray(t * V, (t + 1) * V), last).toExponential(1)).join(' '));
  }
}, 60000);
it('last', async () => {
  const m = randomModel({ hidden: 64, layers: 2, heads: 4, kvHeads: 4, intermediate: 160, vocab: 320, seed: 1 });
  const ids = [5, 17, 200];
  const peer = await llamaCppLogits('/tmp/m1.gguf', ids);
  const ref = referenceLogits(m, ids).subarray(640, 960);
  const p = peer[2]!;
  const sr = Array.from(ref).sort((a, b) => b - a).slice(0, 5);
  const sp = Array.from(p).sort((a, b) => b - a).slice(0, 5);
  console.log('sorted ref', sr, 'sorted peer', sp);
  console.log('first ref', Array.from(ref.slice(0, 6)), 'first peer', Array.from(p.slice(0, 6)));
}, 60000);
