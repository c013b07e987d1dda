import { writeFileSync } from 'node:fs';
import { it } from 'vitest';
import { writeGguf } from '../../src/model/gguf.js';
import { referenceLogits } from '../../src/reference/llama.js';
import { randomModel } from '../helpers/randomModel.js';

it('dump', () => {
  const m = randomModel({ hidden: 64, layers: 2, heads: 4, kvHeads: 4, intermediate: 160, vocab: 320, seed: 1 });
  writeFileSync('/tmp/m1.gguf', writeGguf(m, { dtype: 'f32' }));
  writeFileSync('/tmp/m1.json', JSON.stringify(Array.from(referenceLogits(m, [5, 17, 200, 33]))));
});
