// Chat.append: a reply given as text is fed exactly as if the model had generated it, and the turn ends
// as send ends it. Checked against send on a random ChatML model: the reply send generated, appended in
// a fresh session, leaves the same cache and memory and the same next-turn logits.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuAdapter } from '../../src/adapters/gpu.js';
import { Chat } from '../../src/engine/chat.js';
import { type GenerationResult, Session, type SessionOptions } from '../../src/engine/session.js';
import type { Gpu } from '../../src/gpu/device.js';
import { type LoadedModel, loadModel } from '../../src/model/load.js';
import type { TextTokenizer } from '../../src/model/tokenizer.js';
import { randomAdapter, referenceAdapter } from '../../src/reference/random-adapter.js';
import { EOS_ID, writeChatModelDir } from '../helpers/chatModel.js';
import { relDiff } from '../helpers/checks.js';
import { testGpu } from '../helpers/gpu.js';
import { gpuAdapter } from '../helpers/gpuModel.js';

let gpu: Gpu;
let model: LoadedModel;
let tokenizer: TextTokenizer;
let adapter: GpuAdapter;

beforeAll(async () => {
  gpu = await testGpu();
  const dir = mkdtempSync(join(tmpdir(), 'ccmem-chat-append-'));
  writeChatModelDir(dir, { seed: 21 });
  model = await loadModel(gpu, dir, { format: 'f32' });
  tokenizer = model.tokenizer!;
  adapter = gpuAdapter(
    gpu,
    referenceAdapter(randomAdapter(model.config, { rank: 4, alpha: 8, compTokens: 2, seed: 22 })),
    model.config,
  );
});

afterAll(() => {
  gpu.releaseOwner(model.owner);
  gpu.releaseOwner(adapter.owner);
  expect(gpu.gpuError).toBeUndefined();
});

const POLICIES: [string, SessionOptions['memory']][] = [
  ['full', { policy: 'full' }],
  ['ccm-concat', { policy: 'ccm-concat', compTokens: 2 }],
  ['ccm-merge', { policy: 'ccm-merge', compTokens: 2 }],
];

function chatOn(memory: SessionOptions['memory']) {
  const session = new Session(model, { capacity: 256, memory, adapter });
  return { session, chat: new Chat(session, tokenizer, { system: 'Be brief.' }) };
}

async function send(chat: Chat, text: string, maxNewTokens: number): Promise<GenerationResult> {
  const stream = chat.send(text, { maxNewTokens, temperature: 0 });
  let step = await stream.next();
  while (!step.done) step = await stream.next();
  return step.value;
}

describe('Chat.append', () => {
  it.each(POLICIES)('%s: an appended reply leaves the state its generation left', async (_, memory) => {
    const generated = chatOn(memory);
    const replayed = chatOn(memory);
    for (const [text, maxNewTokens] of [
      ['Hello there, I am Ada.', 10],
      ['What is my name?', 12],
    ] as const) {
      const reply = await send(generated.chat, text, maxNewTokens);
      // the generated reply must be its own tokenization for the comparison to mean anything
      expect(replayed.chat.turnIds(text, reply.text).reply).toEqual(reply.ids.filter((id) => id !== EOS_ID));
      await replayed.chat.append(text, reply.text);
    }
    expect(replayed.chat.history).toEqual(generated.chat.history);
    const cut = generated.chat.lastResult()?.finishReason === 'length';
    const pending = cut ? [generated.session.pendingId!] : [];
    const next = 'Thanks!';
    const a = generated.chat.turnIds(next).prompt;
    const b = replayed.chat.turnIds(next).prompt;
    expect(b).toEqual(a);
    if (memory?.policy === 'full')
      expect(replayed.session.cachedIds).toEqual([...generated.session.cachedIds, ...pending]);
    // chunked prefill and one-token decode steps round differently on the GPU: close, not bitwise
    const [la] = await generated.session.logits(a);
    const [lb] = await replayed.session.logits(b);
    expect(relDiff(lb!, la!)).toBeLessThan(1e-4);
    // (under full, a cut reply's last token was fed by the next prompt, not by the turn's end)
    expect(replayed.session.stats()).toEqual(generated.session.stats());
    generated.session.dispose();
    replayed.session.dispose();
  });

  it('feeds the turns as given: the cache holds the rendered conversation tokenized', async () => {
    const { session, chat } = chatOn({ policy: 'full' });
    const turns = [
      { user: 'My name is Ada.', assistant: 'Nice to meet you, Ada.' },
      { user: 'I live in Lyon.', assistant: '' },
      { user: 'Nice weather today.', assistant: 'It is sunny.\nEnjoy it!' },
    ];
    for (const t of turns) await chat.append(t.user, t.assistant);
    const messages = [
      { role: 'system' as const, content: 'Be brief.' },
      ...turns.flatMap((t) => [
        { role: 'user' as const, content: t.user },
        { role: 'assistant' as const, content: t.assistant },
      ]),
      { role: 'user' as const, content: 'Where do I live?' },
    ];
    const rendered = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    expect(chat.turnIds('Where do I live?').prompt).toEqual(tokenizer.encode(rendered));
    expect(session.cachedIds.length).toBeGreaterThan(0);
    expect(session.pendingId).toBeUndefined();
    session.dispose();
  });

  it('a ccm turn appended is compressed into n slots, as a sent one is', async () => {
    const { session, chat } = chatOn({ policy: 'ccm-concat', compTokens: 2 });
    await chat.append('My name is Ada.', 'Hello Ada.');
    await chat.append('I live in Lyon.', 'Lovely city.');
    const stats = session.stats();
    expect(stats.slots).toEqual({ sink: 0, memory: 4, working: 0, capacity: 256 });
    expect(stats.compressionSteps).toBe(2);
    session.dispose();
  });
});
