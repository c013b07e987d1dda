// The sentinel adapter training (train/sentinel.py) against ccmem: its rows, positions, mask and labels
// are src/memory/masks.ts's; its spans are those ccmem's sentinel policy picks in a chat
// (src/memory/sentinel.ts sentenceSpans); its smoke-trained adapter loads in ccmem.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../../src/adapters/files.js';
import { checkAdapter } from '../../src/adapters/tensors.js';
import { IGNORE_LABEL, sentinelIds, sentinelLabels, sentinelLayout, sentinelVisible } from '../../src/memory/masks.js';
import { sentenceSpans } from '../../src/memory/sentinel.js';
import { loadConfig } from '../../src/model/config.js';
import { openSource } from '../../src/model/source.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { pipelineData, readJson } from './pipeline.js';

interface SentinelData {
  layouts: {
    textLength: number;
    spans: [number, number][];
    ids: number[];
    positions: number[];
    kinds: string[];
    span: number[];
    labels: number[];
    mask: number[][];
  }[];
  chats: { ids: number[]; spans: [number, number][] }[];
}

let dir: string;
beforeAll(() => {
  dir = pipelineData();
}, 300_000);

describe('sentinel training pipeline (PyTorch) against ccmem', () => {
  it("builds ccmem's rows, positions, mask and labels", () => {
    const { layouts } = readJson<SentinelData>(dir, 'sentinel.json');
    for (const c of layouts) {
      const layout = sentinelLayout(c.textLength, c.spans);
      expect(c.positions).toEqual(layout.positions);
      expect(c.kinds).toEqual(layout.kinds);
      expect(c.span).toEqual(layout.span);
      const text = Array.from({ length: c.textLength }, (_, i) => 10 + i);
      const ids = sentinelIds(layout, text, 100, 101);
      expect(c.ids).toEqual(ids);
      const visible = sentinelVisible(layout);
      expect(c.mask).toEqual(layout.kinds.map((_, q) => layout.kinds.map((_, k) => (visible(q, k) ? 1 : 0))));
      // every text token is trained here: the labels are ccmem's, sentinel rows included
      expect(c.labels).toEqual(sentinelLabels(ids, layout.kinds).map((l) => (l === IGNORE_LABEL ? -100 : l)));
    }
  });

  it("compresses the spans ccmem's sentinel policy picks in a chat's history", async () => {
    const src = openSource(join(dir, 'model'));
    const tokenizer = await TextTokenizer.load(src);
    const config = await loadConfig(src);
    const isEnd = (id: number) => /[.!?\n]$/.test(tokenizer.decode([id], { skipSpecialTokens: true }));
    const { chats } = readJson<SentinelData>(dir, 'sentinel.json');
    for (const chat of chats) {
      const spans = sentenceSpans(chat.ids, [], { isEnd, recent: 32, maxSpan: 25, bos: config.bosTokenId });
      expect(spans.length).toBeGreaterThan(3);
      expect(chat.spans).toEqual(spans.map((s) => [s.start, s.end]));
    }
  });

  it('writes a smoke-trained sentinel adapter that ccmem loads', async () => {
    const config = await loadConfig(openSource(join(dir, 'model')));
    const adapter = await loadAdapter(join(dir, 'sentinel'));
    checkAdapter(adapter, config);
    expect(adapter.config).toMatchObject({ method: 'sentinel', compTokens: 1, embeddingRows: 2, rank: 16, alpha: 32 });
    const maxB = Math.max(...[...adapter.lora.values()].map((m) => Math.max(...m.b.map(Math.abs))));
    expect(maxB).toBeGreaterThan(1e-2);
  });
});
