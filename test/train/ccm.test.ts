// The CCM adapter training pipeline (train/, PyTorch) against ccmem: its single masked training pass equals
// its own recurrent inference; its training rows, positions and mask are ccmem's (src/memory/positions.ts,
// masks.ts); it tokenizes a chat exactly as ccmem's Chat feeds it; a smoke-trained adapter loads in ccmem.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../../src/adapters/files.js';
import { checkAdapter } from '../../src/adapters/tensors.js';
import { PLAIN_CHAT_TEMPLATE } from '../../src/engine/chat.js';
import { ccmVisible } from '../../src/memory/masks.js';
import { ccmTrainingLayout } from '../../src/memory/positions.js';
import { loadConfig } from '../../src/model/config.js';
import { openSource } from '../../src/model/source.js';
import { type ChatMessage, TextTokenizer } from '../../src/model/tokenizer.js';
import { pipelineData, python, readJson } from './pipeline.js';

const SLOW = 300_000;

interface LayoutCase {
  mode: 'concat' | 'merge';
  n: number;
  sink: boolean;
  chunkLengths: number[];
  inputLength: number;
  positions: number[];
  kinds: string[];
  blocks: number[];
  mask: number[][];
  sums: Record<string, number[]>;
}

interface ChatCase {
  record: { history: { user: string; assistant: string }[]; question: string; answer: string };
  turns: [number[], number[]][];
  question: number[];
}

let dir: string;
beforeAll(() => {
  dir = pipelineData();
}, SLOW);

describe('CCM training pipeline (PyTorch) against ccmem', () => {
  it(
    'the single masked training pass equals recurrent inference (float64; concat, merge, sink, GQA, Qwen2; sentinel)',
    () => {
      const lines = python(['train/ccm_check.py']).trim().split('\n');
      const cases = lines.map((l) => JSON.parse(l) as { mode: string; relError: number; adapterEffect?: number });
      expect(cases.map((c) => c.mode).sort()).toEqual([
        'concat',
        'concat',
        'concat',
        'merge',
        'merge',
        'merge',
        'sentinel',
        'sentinel',
      ]);
      for (const c of cases) {
        expect(c.relError).toBeLessThan(1e-9);
        if (c.mode !== 'sentinel') expect(c.adapterEffect).toBeGreaterThan(1e-3);
      }
    },
    SLOW,
  );

  it("builds ccmem's training rows, positions, SUM groups and mask", () => {
    const cases = readJson<LayoutCase[]>(dir, 'layouts.json');
    expect(cases.length).toBeGreaterThan(3);
    for (const c of cases) {
      const layout = ccmTrainingLayout({
        chunkLengths: c.chunkLengths,
        n: c.n,
        mode: c.mode,
        inputLength: c.inputLength,
        bos: c.sink,
      });
      expect(c.positions).toEqual(layout.positions);
      expect(c.kinds).toEqual(layout.kinds.map((k) => (k === 'input' ? 'text' : k)));
      expect(c.blocks).toEqual(layout.chunk);
      const visible = ccmVisible(layout, { sink: c.sink });
      const want = layout.kinds.map((_, q) => layout.kinds.map((_, k) => (visible(q, k) ? 1 : 0)));
      expect(c.mask).toEqual(want);
      const sums: Record<string, number[]> = {};
      for (const g of layout.sumGroups) {
        g.sum.forEach((row, k) => {
          sums[String(row)] = g.comps[k] as number[];
        });
      }
      expect(c.sums).toEqual(sums);
    }
    // ccm.md section 4's worked example: a1 a2 Ca Cb b1 Da Db x at 0 1 2 3 2 3 4 3
    expect(cases[0]?.positions).toEqual([0, 1, 2, 3, 2, 3, 4, 3]);
  });

  it("tokenizes each turn as ccmem's Chat feeds it (template delta, then the reply; BOS first only)", async () => {
    const tokenizer = await TextTokenizer.load(openSource(join(dir, 'model')));
    const chats = readJson<ChatCase[]>(dir, 'chats.json');
    for (const chat of chats) {
      const messages: ChatMessage[] = [];
      let rendered = '';
      const user = (text: string) => {
        messages.push({ role: 'user', content: text });
        const full = tokenizer.applyChatTemplate(messages, {
          addGenerationPrompt: true,
          fallbackTemplate: PLAIN_CHAT_TEMPLATE,
        });
        expect(full.startsWith(rendered)).toBe(true);
        const ids = tokenizer.encode(full.slice(rendered.length), { addSpecialTokens: rendered === '' });
        rendered = full;
        return ids;
      };
      const turns = chat.record.history.map((t): [number[], number[]] => {
        const delta = user(t.user);
        messages.push({ role: 'assistant', content: t.assistant });
        rendered += t.assistant;
        return [delta, tokenizer.encode(t.assistant, { addSpecialTokens: false })];
      });
      expect(chat.turns).toEqual(turns);
      expect(chat.question).toEqual(user(chat.record.question));
      expect(turns[0]?.[0][0]).toBe(tokenizer.bosTokenId);
    }
  });

  it('writes smoke-trained adapters that ccmem loads and checks against the model', async () => {
    const config = await loadConfig(openSource(join(dir, 'model')));
    for (const [mode, n, sink] of [
      ['concat', 2, false],
      ['merge', 3, true],
    ] as const) {
      const adapter = await loadAdapter(join(dir, mode));
      checkAdapter(adapter, config);
      expect(adapter.config).toMatchObject({ method: 'ccm', mode, compTokens: n, sink, rank: 8, alpha: 16 });
      expect(adapter.config.embeddingRows).toBe(mode === 'merge' ? 2 * n : n);
      expect(adapter.lora.size).toBe(config.numLayers * 4);
      // trained: B moved away from its zero init
      const maxB = Math.max(...[...adapter.lora.values()].map((m) => Math.max(...m.b.map(Math.abs))));
      expect(maxB).toBeGreaterThan(1e-2);
      const log = readFileSync(join(dir, mode, 'train_log.jsonl'), 'utf8')
        .trim()
        .split('\n');
      expect(log.map((l) => (JSON.parse(l) as { step: number }).step)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(readFileSync(join(dir, mode, 'loss.svg'), 'utf8')).toContain('<polyline');
    }
  });

  it(
    '--init-adapter continues from a trained adapter and refuses one of another shape',
    () => {
      const out = join(dir, `continued-${process.pid}`);
      const run = (n: string) => [
        'train/ccm.py',
        '--model',
        join(dir, 'model'),
        '--mode',
        'concat',
        '--comp-tokens',
        n,
        '--init-adapter',
        join(dir, 'concat'),
        '--steps',
        '1',
        '--batch',
        '2',
        '--pool',
        '4',
        '--lr',
        '0',
        '--out',
        out,
        '--restart',
        '--checkpoint-minutes',
        '100',
      ];
      // lr 0: the step changes nothing, so the written adapter is the one it started from
      python(run('2'));
      const tensors = (d: string) => readFileSync(join(d, 'adapter.safetensors'));
      expect(tensors(out).equals(tensors(join(dir, 'concat')))).toBe(true);
      expect(() => python(run('3'))).toThrow(/does not match this run/);
      rmSync(out, { recursive: true, force: true });
    },
    SLOW,
  );
});
