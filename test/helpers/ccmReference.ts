// The CPU oracle of the CCM conformance tests: final-position logits of the single-pass masked forward
// (ccm.md section 6) over [BOS] c(1) COMP(1) [SUM(1)] ... c(T) COMP(T) [SUM(T)] I.
import { ccmVisible } from '../../src/memory/masks.js';
import { ccmTrainingLayout } from '../../src/memory/positions.js';
import { type ReferenceAdapter, type ReferenceModel, referenceForward } from '../../src/reference/llama.js';

export interface CcmCase {
  mode: 'concat' | 'merge';
  n: number;
  /** A BOS sink: chunks[0] then starts with BOS (it counts as the first text token). */
  sink: boolean;
}

export function ccmReferenceLogits(
  model: ReferenceModel,
  adapter: ReferenceAdapter,
  chunks: number[][],
  input: number[],
  c: CcmCase,
): Float32Array {
  const V = model.config.vocabSize;
  const lengths = chunks.map((ch, t) => ch.length - (t === 0 && c.sink ? 1 : 0));
  const layout = ccmTrainingLayout({
    chunkLengths: lengths,
    n: c.n,
    mode: c.mode,
    inputLength: input.length,
    bos: c.sink,
  });
  const text = [...chunks.flat(), ...input];
  let next = 0;
  const ids = layout.kinds.map((kind, i) =>
    kind === 'comp' ? V + layout.comp[i]! : kind === 'sum' ? V + c.n + layout.comp[i]! : text[next++]!,
  );
  const logits = referenceForward(model, ids, {
    positions: layout.positions,
    visible: ccmVisible(layout, { sink: c.sink }),
    gates: layout.kinds.map((k) => (k === 'comp' || k === 'sum' ? 1 : 0)),
    adapter,
    sumGroups: layout.sumGroups,
  });
  return logits.subarray((ids.length - 1) * V);
}
