// The committed, trained adapters (models/chat-tiny-concat, models/chat-tiny-merge) on the committed
// model: PyTorch's recurrent CCM inference (train/ccm_infer.py logits, float64) and ccmem agree on the
// question's logits after a real recall chat's turns were compressed one by one (relative max-norm error
// below 1e-4), and the memory holds the same number of slots.
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/engine/session.js';
import { memoryForAdapter } from '../../src/memory/policy.js';
import { loadModelWithAdapter } from '../../src/model/load-adapter.js';
import { relDiff } from '../helpers/checks.js';
import { testGpu } from '../helpers/gpu.js';
import { python } from './pipeline.js';

const SLOW = 300_000;

/** A test-split chat tokenized as ccmem's Chat feeds it: one chunk a turn (delta + reply), the question. */
function chatIds(): { chunks: number[][]; question: number[] } {
  const script = [
    'import json, sys',
    "sys.path.insert(0, 'train')",
    'import data',
    'from ccm_chat import ChatCodec, record_turns',
    "record = data.generate('test', 1, 1)[0]",
    "turns, question, _ = record_turns(ChatCodec('models/chat-tiny'), record)",
    "print(json.dumps({'chunks': [d + r for d, r in turns], 'question': question}))",
  ].join('\n');
  return JSON.parse(python(['-c', script]));
}

describe('trained adapters: PyTorch recurrent inference vs ccmem', () => {
  for (const mode of ['concat', 'merge'] as const) {
    it(
      `models/chat-tiny-${mode}`,
      async () => {
        const { chunks, question } = chatIds();
        const adapterDir = `models/chat-tiny-${mode}`;
        const args = ['--model', 'models/chat-tiny', '--adapter', adapterDir];
        const ids = (xs: number[]) => xs.join(',');
        const want = JSON.parse(
          python([
            'train/ccm_infer.py',
            'logits',
            ...args,
            '--chunks',
            chunks.map(ids).join('/'),
            '--input',
            ids(question),
          ]),
        ) as { logits: number[]; slots: number };

        const gpu = await testGpu();
        const loaded = await loadModelWithAdapter(gpu, 'models/chat-tiny', adapterDir, { format: 'f32' });
        const memory = memoryForAdapter({ policy: `ccm-${mode}` }, loaded.adapter?.config);
        const session = new Session(loaded.model, { capacity: 512, memory, adapter: loaded.gpuAdapter });
        for (const chunk of chunks) {
          await session.feed(chunk);
          await session.endTurn();
        }
        const { slots } = session.stats();
        expect(slots.sink + slots.memory).toBe(want.slots);
        const [got] = await session.logits(question);
        expect(relDiff(got!, want.logits)).toBeLessThan(1e-4);
        gpu.releaseOwner(loaded.model.owner);
      },
      SLOW,
    );
  }
});
