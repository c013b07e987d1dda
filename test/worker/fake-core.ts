// A fake engine core for the worker protocol tests: no GPU, replies made of words that name the turn,
// one word per token with a short pause, abortable between words, with saves that round-trip.
import type { GenerateOptions, GenerationResult, MemoryStats, TokenEvent } from '../../src/engine/session.js';
import { aborted, CcmemError, invalidInput, modelFormat } from '../../src/errors.js';
import type { LedgerSnapshot } from '../../src/gpu/ledger.js';
import type { ChatMessage } from '../../src/model/tokenizer.js';
import type { CoreChat, CoreLoader, EngineCore } from '../../src/worker/core.js';
import type { EngineInit, LoadProgress } from '../../src/worker/protocol.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SAVE_MAGIC = 'fake-chat-v1:';

/** The reply the fake gives to `text` as the turn-th turn of a conversation (1-based). */
export function fakeReply(text: string, turn: number): string[] {
  return ['turn', String(turn), 'reply', 'to', ...text.split(' ')].map((w) => `${w} `);
}

export class FakeChat implements CoreChat {
  history: ChatMessage[];
  /** Messages whose "tokens" are in the cache (a reset forgets them: a rebuild feeds them again). */
  private fed = 0;

  constructor(
    private readonly core: FakeCore,
    system?: string,
  ) {
    this.history = system ? [{ role: 'system', content: system }] : [];
  }

  async *send(text: string, o: GenerateOptions): AsyncGenerator<TokenEvent, GenerationResult> {
    if (!text) throw invalidInput('the message is empty');
    if (text === 'boom') throw new RangeError('a plain error from the core');
    if (text === 'lose the device') {
      this.core.loseDevice('the fake device was unplugged');
      throw new CcmemError('DEVICE_LOST', 'the GPU device was lost');
    }
    const turn = this.history.filter((m) => m.role === 'user').length + 1;
    const full = fakeReply(text, turn);
    const words = full.slice(0, o.maxNewTokens ?? 256);
    const reused = this.fed;
    const promptTokens = this.history.length + 1;
    // as a real chat's cache does, the turn is half in the conversation until the reply ends: an
    // aborted reply leaves it there for the worker to roll back
    this.history.push({ role: 'user', content: text });
    this.fed = promptTokens;
    for (const [i, word] of words.entries()) {
      await sleep(this.core.tokenMs);
      if (o.signal?.aborted) throw aborted();
      yield { id: i, delta: word };
    }
    const reply = words.join('');
    this.history.push({ role: 'assistant', content: reply });
    this.fed += 1;
    const usage = {
      promptTokens,
      reusedTokens: reused,
      completionTokens: words.length,
      timeToFirstTokenMs: this.core.tokenMs,
      prefillTokensPerSecond: 1000,
      decodeTokensPerSecond: 1000 / this.core.tokenMs,
    };
    return {
      ids: words.map((_, i) => i),
      text: reply,
      finishReason: words.length < full.length ? 'length' : 'eos',
      usage,
    };
  }

  async save(): Promise<Uint8Array> {
    return new TextEncoder().encode(SAVE_MAGIC + JSON.stringify({ history: this.history, fed: this.fed }));
  }

  async restore(bytes: Uint8Array): Promise<void> {
    const text = new TextDecoder().decode(bytes);
    if (!text.startsWith(SAVE_MAGIC)) throw invalidInput('cannot import the chat: not a fake chat export');
    const s = JSON.parse(text.slice(SAVE_MAGIC.length)) as { history: ChatMessage[]; fed: number };
    this.history = s.history;
    this.fed = s.fed;
  }

  reset(history: readonly ChatMessage[]): void {
    this.history = [...history];
    this.fed = 0;
  }

  stats(): MemoryStats {
    const compressionSteps = this.history.filter((m) => m.role === 'user').length;
    return {
      policy: 'full',
      compressionSteps,
      layers: 1,
      slots: { sink: 0, memory: 0, working: this.fed, capacity: 64 },
      bytes: this.fed * 16,
      fullContextBytes: this.fed * 16,
      compressionRatio: 1,
      tokensCompressed: 0,
      tokensEvicted: 0,
      nextPosition: this.fed,
    };
  }

  dispose(): void {
    this.core.chats.delete(this);
  }
}

export class FakeCore implements EngineCore {
  readonly chats = new Set<FakeChat>();
  readonly lost: Promise<string>;
  loseDevice!: (reason: string) => void;
  disposed = false;

  constructor(
    readonly init: EngineInit,
    readonly tokenMs: number,
  ) {
    this.lost = new Promise((resolve) => (this.loseDevice = resolve));
  }

  get info() {
    return { model: this.init.model, gpu: 'fake', format: 'f32' as const, policy: 'full' as const, capacity: 64 };
  }

  createChat(system?: string): CoreChat {
    const chat = new FakeChat(this, system);
    this.chats.add(chat);
    return chat;
  }

  ledger(): LedgerSnapshot {
    const kv = [...this.chats].reduce((n, c) => n + c.stats().bytes, 0);
    const byOwner: Record<string, number> = { gpu: 256, model: 4096 };
    if (kv) byOwner.sessions = kv;
    return ledgerOf(byOwner, { weights: 4096, kv, scratch: 256 });
  }

  dispose(): LedgerSnapshot {
    this.disposed = true;
    this.chats.clear();
    return ledgerOf({ gpu: 256 }, { weights: 0, kv: 0, scratch: 256 });
  }
}

function ledgerOf(
  byOwner: Record<string, number>,
  tags: { weights: number; kv: number; scratch: number },
): LedgerSnapshot {
  const t = (n: number) => ({ current: n, peak: n });
  const current = Object.values(byOwner).reduce((a, b) => a + b, 0);
  return {
    current,
    peak: current,
    byTag: { weights: t(tags.weights), kv: t(tags.kv), memory: t(0), scratch: t(tags.scratch), staging: t(0) },
    byOwner,
    buffers: Object.keys(byOwner).length,
  };
}

/** A loader that records what it made; model 'missing' fails like a missing config.json. */
export function fakeLoader(tokenMs = 2): CoreLoader & { cores: FakeCore[] } {
  const cores: FakeCore[] = [];
  const load = async (init: EngineInit, onProgress: (p: LoadProgress) => void) => {
    if (init.model === 'missing') throw modelFormat('missing: no config.json');
    for (const loaded of [0, 512, 1024]) onProgress({ file: 'model.safetensors', loaded, total: 1024 });
    const core = new FakeCore(init, tokenMs);
    cores.push(core);
    return core;
  };
  return Object.assign(load, { cores });
}
