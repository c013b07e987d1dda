// The engine core on WebGPU: one device, one model (plus an optional adapter), one Session + Chat per chat.

import type { GpuAdapter } from '../adapters/gpu.js';
import { Chat } from '../engine/chat.js';
import { Session } from '../engine/session.js';
import { invalidInput } from '../errors.js';
import { type AcquireOptions, acquireGpu, type Gpu } from '../gpu/device.js';
import { type MemoryOptions, memoryForAdapter, resolveMemory } from '../memory/policy.js';
import type { LoadedModel } from '../model/load.js';
import { loadModelWithAdapter } from '../model/load-adapter.js';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer.js';
import { decodeChatExport, encodeChatExport } from './chat-state.js';
import type { CoreChat, EngineCore } from './core.js';
import type { EngineInit, LoadProgress } from './protocol.js';

/** Loads `init` on a fresh device (navigator.gpu unless `acquire` says otherwise); frees it all on failure. */
export async function loadGpuCore(
  init: EngineInit,
  onProgress: (p: LoadProgress) => void,
  acquire: AcquireOptions = {},
): Promise<EngineCore> {
  const gpu = await acquireGpu(acquire);
  try {
    const { model, adapter, gpuAdapter } = await loadModelWithAdapter(gpu, init.model, init.adapter, {
      format: init.format ?? 'auto',
      onProgress,
      cache: init.cache,
      revision: init.revision,
      remoteHost: init.remoteHost,
      memory: init.memory, // a PEFT adapter takes its mode and COMP count from the policy
    });
    if (!model.tokenizer) throw invalidInput(`${model.id} has no tokenizer.json: the chat engine needs one`);
    const capacity = init.capacity ?? Math.min(2048, model.config.maxPositions);
    const memory = memoryForAdapter(init.memory, adapter?.config);
    resolveMemory(memory, capacity); // refuse bad options now rather than at the first chat
    return new GpuCore(gpu, model, model.tokenizer, gpuAdapter, memory, capacity);
  } catch (e) {
    gpu.destroy();
    throw e;
  }
}

class GpuCore implements EngineCore {
  readonly info;
  readonly lost: Promise<string>;
  private readonly chats = new Set<GpuChat>();

  constructor(
    private readonly gpu: Gpu,
    private readonly model: LoadedModel,
    private readonly tokenizer: TextTokenizer,
    private readonly adapter: GpuAdapter | undefined,
    private readonly memory: MemoryOptions,
    private readonly capacity: number,
  ) {
    this.info = {
      model: model.id,
      gpu: gpu.adapterName,
      format: model.weights.format,
      policy: memory.policy,
      capacity,
    };
    this.lost = new Promise((resolve) => {
      void gpu.device.lost.then((info) => {
        if (info.reason !== 'destroyed') resolve(info.message || 'unknown reason');
      });
    });
  }

  createChat(system?: string): CoreChat {
    const { model, capacity, memory, adapter } = this;
    const session = new Session(model, { capacity, memory, adapter });
    const chat = new GpuChat(session, new Chat(session, this.tokenizer, { system }), () => this.chats.delete(chat));
    this.chats.add(chat);
    return chat;
  }

  ledger() {
    return this.gpu.ledger.snapshot();
  }

  dispose() {
    for (const chat of this.chats) chat.dispose();
    if (this.adapter) this.gpu.releaseOwner(this.adapter.owner);
    this.gpu.releaseOwner(this.model.owner);
    const after = this.gpu.ledger.snapshot();
    this.gpu.destroy();
    return after;
  }
}

class GpuChat implements CoreChat {
  constructor(
    private readonly session: Session,
    private readonly chat: Chat,
    private readonly onDispose: () => void,
  ) {}

  get history() {
    return this.chat.history;
  }

  send(text: string, options: Parameters<Chat['send']>[1]) {
    return this.chat.send(text, options);
  }

  async save() {
    return encodeChatExport(this.chat.state(), await this.session.exportMemory());
  }

  async restore(bytes: Uint8Array) {
    const { state, memory } = await decodeChatExport(bytes);
    await this.session.importMemory(memory);
    this.chat.restore(state);
  }

  reset(history: readonly ChatMessage[]) {
    this.session.reset();
    this.chat.restore({ messages: [...history], rendered: '', last: undefined });
  }

  stats() {
    return this.session.stats();
  }

  dispose() {
    this.session.dispose();
    this.onDispose();
  }
}
