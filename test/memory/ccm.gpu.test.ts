// CCM conformance: the recurrent GPU path (read a chunk, compress it into n COMP slots with the gated LoRA,
// keep only those; concat appends, merge averages) gives the same final logits as the CPU reference of the
// single-pass masked forward of ccm.md section 6 (with the SUM overwrite for merge), within 1e-4 relative;
// and the memory slots sit at the positions of ccm.md section 4.
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { ccmOnlinePositions } from '../../src/memory/positions.js';
import { randomAdapter, referenceAdapter } from '../../src/reference/random-adapter.js';
import { ccmReferenceLogits } from '../helpers/ccmReference.js';
import { rng, testGpu } from '../helpers/gpu.js';
import { gpuAdapter, gpuModel, relError } from '../helpers/gpuModel.js';
import { randomModel } from '../helpers/randomModel.js';

interface Case {
  mode: 'concat' | 'merge';
  n: number;
  steps: number;
  gqa: boolean;
  sink: boolean;
  seed: number;
}

const CASES: Case[] = [
  { mode: 'concat', n: 1, steps: 3, gqa: false, sink: false, seed: 1 },
  { mode: 'concat', n: 2, steps: 5, gqa: true, sink: true, seed: 2 },
  { mode: 'concat', n: 4, steps: 2, gqa: true, sink: false, seed: 3 },
  { mode: 'merge', n: 1, steps: 4, gqa: true, sink: false, seed: 4 },
  { mode: 'merge', n: 2, steps: 5, gqa: false, sink: true, seed: 5 },
  { mode: 'merge', n: 3, steps: 2, gqa: true, sink: true, seed: 6 },
  { mode: 'concat', n: 3, steps: 1, gqa: false, sink: true, seed: 7 },
];

describe('CCM recurrent GPU path vs single-pass masked CPU reference (f32)', () => {
  for (const c of CASES) {
    it(`${c.mode} n=${c.n}, ${c.steps} steps, ${c.gqa ? 'GQA' : 'MHA'}, ${c.sink ? 'sink' : 'no sink'}`, async () => {
      const gpu = await testGpu();
      const V = 70;
      const ref = randomModel({
        hidden: 32,
        layers: 2,
        heads: 4,
        kvHeads: c.gqa ? 2 : 4,
        intermediate: 48,
        vocab: V,
        seed: c.seed,
        maxPositions: 256,
      });
      const adapter = referenceAdapter(
        randomAdapter(ref.config, {
          rank: 4,
          alpha: 8,
          compTokens: c.n,
          mode: c.mode,
          seed: c.seed,
        }),
      );
      const r = rng(c.seed);
      const chunks = Array.from({ length: c.steps }, () =>
        Array.from({ length: 2 + Math.floor(r() * 6) }, () => 3 + Math.floor(r() * (V - 3))),
      );
      const input = Array.from({ length: 3 }, () => 3 + Math.floor(r() * (V - 3)));
      const BOS = 1;

      // GPU: recurrent inference (ccm.md section 5); with a sink the first chunk starts with BOS
      const model = await gpuModel(gpu, ref, 'f32');
      const session = new Session(model, {
        capacity: 64,
        chunk: 8,
        memory: { policy: c.mode === 'concat' ? 'ccm-concat' : 'ccm-merge', compTokens: c.n, sink: c.sink },
        adapter: gpuAdapter(gpu, adapter, ref.config),
      });
      for (const [t, chunk] of chunks.entries()) {
        await session.feed(t === 0 && c.sink ? [BOS, ...chunk] : chunk);
        await session.endTurn();
      }
      const [got] = await session.logits(input);

      // CPU: one masked forward over the whole sequence
      const fedChunks = chunks.map((ch, t) => (t === 0 && c.sink ? [BOS, ...ch] : ch));
      const want = ccmReferenceLogits(ref, adapter, fedChunks, input, c);
      expect(relError(got!, want)).toBeLessThan(1e-4);

      // positions (ccm.md section 4): memory slots at L_{t+1} + k, the input continues at L_{T+1}
      const lengths = chunks.map((ch, t) => ch.length + (t === 0 && c.sink ? 1 : 0));
      const online = ccmOnlinePositions(lengths, c.n, input.length);
      const stats = session.stats();
      expect(stats.nextPosition).toBe(online.input.at(-1)! + 1);
      const memory = session.memorySlots.filter((m) => m.kind === 'memory').map((m) => m.position);
      const expected = c.mode === 'concat' ? online.steps.flatMap((s) => s.comp) : online.steps.at(-1)!.comp;
      expect(memory).toEqual(expected);
      expect(stats.slots).toEqual({
        sink: c.sink ? 1 : 0,
        memory: c.mode === 'concat' ? c.n * c.steps : c.n,
        working: input.length,
        capacity: 64,
      });
      expect(stats.tokensCompressed).toBe(chunks.flat().length);
      session.dispose();
      gpu.releaseOwner(model.owner);
    });
  }
});
