// Sentinel spans: the masked training forward of sentinel.md section 3 against the incremental inference
// of section 4 on KV-cache sessions (<CL> alone, <CR> over {<CL>, span, itself}, then the span's slots
// evicted and <CR>'s slot kept in their place). The LoRA is ungated, so every row has gate 1.
import { describe, expect, it } from 'vitest';
import { sentinelIds, sentinelLayout, sentinelVisible } from '../../src/memory/masks.js';
import { ReferenceSession, referenceForward64 } from '../../src/reference/llama.js';
import { randomAdapter, referenceAdapter } from '../../src/reference/random-adapter.js';
import { relDiff } from '../helpers/checks.js';
import { rng } from '../helpers/gpu.js';
import { randomModel } from '../helpers/randomModel.js';

const V = 45;
const [OPEN, CLOSE] = [V, V + 1];
// qwen2-style q/k/v biases and GQA 3:1, so the LoRA rides on biased projections
const model = randomModel({
  hidden: 48,
  layers: 2,
  heads: 6,
  kvHeads: 2,
  intermediate: 64,
  vocab: V,
  seed: 51,
  attentionBias: true,
});
const adapter = referenceAdapter(randomAdapter(model.config, { rank: 4, alpha: 8, compTokens: 2, seed: 52 }));

/** Incremental inference over the layout's rows; returns each row's f64 logits in row order. */
function incremental(layout: ReturnType<typeof sentinelLayout>, ids: number[]): Float64Array[] {
  const live = new ReferenceSession(model, adapter); // the live cache: text, span tokens, kept <CR>s
  let open: ReferenceSession | undefined; // <CL> of the current span, attending only to itself
  let spanLength = 0;
  return layout.kinds.map((kind, r) => {
    const [id, pos] = [ids[r]!, layout.positions[r]!];
    if (kind === 'open') {
      open = new ReferenceSession(model, adapter);
      spanLength = 0;
      return open.step(id, pos, 1);
    }
    if (kind !== 'close') {
      if (kind === 'span') spanLength++;
      return live.step(id, pos, 1);
    }
    // <CR> sees exactly {<CL>, the span, itself}; then its slot replaces the span's slots
    const close = new ReferenceSession(model, adapter);
    close.cache.forEach((_, l) => {
      const [cl, cache] = [open!.cache[l]!, live.cache[l]!];
      close.cache[l] = {
        keys: [...cl.keys, ...cache.keys.slice(-spanLength)],
        values: [...cl.values, ...cache.values.slice(-spanLength)],
      };
    });
    const logits = close.step(id, pos, 1);
    live.cache.forEach((cache, l) => {
      cache.keys.splice(-spanLength, spanLength, close.cache[l]!.keys.at(-1)!);
      cache.values.splice(-spanLength, spanLength, close.cache[l]!.values.at(-1)!);
    });
    return logits;
  });
}

const CASES: [string, number, [number, number][]][] = [
  [
    'the worked example: a b <s1 s2 s3> c d <t1 t2> e',
    10,
    [
      [2, 5],
      [7, 9],
    ],
  ],
  [
    'a span at the start, adjacent spans, a span at the end',
    9,
    [
      [0, 3],
      [3, 5],
      [7, 9],
    ],
  ],
];

describe('sentinel masked training forward == incremental evict-and-keep-<CR> (f64)', () => {
  CASES.forEach(([name, textLength, spans], i) => {
    it(name, () => {
      const r = rng(60 + i);
      const text = Array.from({ length: textLength }, () => 3 + Math.floor(r() * (V - 3)));
      const layout = sentinelLayout(textLength, spans);
      const ids = sentinelIds(layout, text, OPEN, CLOSE);
      const masked = referenceForward64(model, ids, {
        positions: layout.positions,
        visible: sentinelVisible(layout),
        gates: ids.map(() => 1),
        adapter,
      });
      const rows = incremental(layout, ids);
      rows.forEach((row, t) => {
        // same keys in the same order on both sides: identical up to f64 rounding
        expect(relDiff(row, masked.subarray(t * V, (t + 1) * V)), `row ${t} (${layout.kinds[t]})`).toBeLessThan(1e-12);
      });
      // not vacuous: with spans compressed before it, the last text token reads another context than in the raw text
      const raw = referenceForward64(model, text, { gates: text.map(() => 1), adapter });
      const lastText = layout.text.lastIndexOf(textLength - 1);
      expect(relDiff(rows[lastText]!, raw.subarray((textLength - 1) * V, textLength * V))).toBeGreaterThan(1e-2);
    });
  });
});
