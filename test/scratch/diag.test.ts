import { writeFileSync } from 'node:fs';
import { it } from 'vitest';
import { writeGguf } from '../../src/model/gguf.js';
import { referenceLogits } from '../../src/reference/llama.js';
import { llamaCppLogits } from '../helpers/llamacpp.js';
import { randomModel, roundModelToF16 } from '../helpers/randomModel.js';
function rel(r: Float32Array, p: Float32Array) {
  let d = 0, s = 0;
  for (let i = 0; i < p.length; i++) { d = Math.max(d, Math.abs(r[i]! - p[i]!)); s = Math.max(s, Math.abs(p[i]!)); }
  return d / s;
}
it('diag', async () => {
  const m = roundModelToF16(randomModel(JSON.parse(process.env.OPTS!)));
  writeFileSync('/tmp/m2.gguf', writeGguf(m, { dtype: 'f16' }));
  const V = m.config.vocabSize;
  const ids = [5, 17, 200, 33];
  const peer = await llamaCppLogits('/tmp/m2.gguf', ids);
  const ref = referenceLogits(m, ids);
  console.log('P', Array.from(peer[0]!.slice(0, 4)), Array.from(ref.slice(0, 4)));
  console.log('ERR', peer.map((p, t) => rel(ref.subarray(t * V, (t + 1) * V), p).toExponential(2)).join(' '));
}, 60000);
