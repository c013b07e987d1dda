// One policy's run of the benchmark chat: every turn feeds a user message of fixed random ids, decodes a
// greedy reply and ends the turn (CCM compression for the ccm policies), fed the way src/engine/chat.ts
// feeds a turn (the uncompressed part of the conversation, the previous reply's unfed last token, the
// new message). Each turn's timings and memory figures are recorded.

import { loadavg } from 'node:os';
import type { GpuAdapter } from '../src/adapters/gpu.js';
import { Session } from '../src/engine/session.js';
import type { MemoryOptions } from '../src/memory/policy.js';
import type { LoadedModel } from '../src/model/load.js';
import { mulberry32 as rng } from '../src/util/random.js';

/** The policies this benchmark compares (ccm-stream and sentinel are for other workloads). */
export const BENCH_POLICIES = ['full', 'window', 'ccm-concat', 'ccm-merge'] as const;
export type BenchPolicy = (typeof BENCH_POLICIES)[number];

export interface ChatShape {
  turns: number;
  /** User message tokens per turn (the first turn also starts with BOS). */
  user: number;
  /** Most reply tokens per turn (greedy; fewer only if the model emits EOS). */
  reply: number;
  /** COMP tokens per compression step (n). */
  compTokens: number;
  /** ccm-concat memory budget in slots. */
  budget: number;
  /** Window policy: sinks and window tokens. */
  sinks: number;
  window: number;
}

export interface TurnRecord {
  turn: number;
  /** Tokens this turn's generate call fed (prompt minus the reused prefix). */
  fedTokens: number;
  replyTokens: number;
  /** Time to the first reply token: prefill plus the first sample. */
  prefillMs: number;
  /** The remaining reply tokens: one forward + sample each. */
  decodeMs: number;
  decodeSteps: number;
  /** endTurn until the GPU finished it; for full and window (whose endTurn does nothing) just the queue round trip. */
  compressMs: number;
  latencyMs: number;
  /** stats().bytes just before endTurn (the turn's largest cache) and after it (what the next turn starts from). */
  kvBytesBeforeEnd: number;
  kvBytes: number;
  fullContextBytes: number;
  /** The ledger of this policy's GPU device: all buffers (weights, adapter, cache, scratch) now and at peak. */
  ledgerCurrent: number;
  ledgerPeak: number;
  /** Peak of the ledger's 'kv' tag: the cache this policy's capacity allocates, in use or not. */
  ledgerKvPeak: number;
  /** The machine's 1-minute load average at the end of the turn: the cores are shared, timings vary with it. */
  loadAverage: number;
}

/** The session options of each policy, with the smallest capacity that holds its whole run. */
export function policySetup(policy: BenchPolicy, s: ChatShape): { memory: MemoryOptions; capacity: number } {
  const turn = s.user + s.reply + 1; // + BOS on the first turn, or the previous reply's carried token
  switch (policy) {
    case 'full':
      return { memory: { policy }, capacity: s.turns * (s.user + s.reply) + 2 };
    case 'window':
      // the policy's window counts the sinks; this shape's window is the recent tokens after them
      return { memory: { policy, sinks: s.sinks, window: s.sinks + s.window }, capacity: s.sinks + s.window };
    case 'ccm-concat':
      // memory at its budget + the turn + its n COMP rows (appended before the oldest group is evicted)
      return {
        memory: { policy, compTokens: s.compTokens, budget: s.budget },
        capacity: s.budget + turn + s.compTokens,
      };
    case 'ccm-merge':
      return { memory: { policy, compTokens: s.compTokens }, capacity: turn + 2 * s.compTokens };
  }
}

/** The user messages: random ids in [3, vocab) (past unk/BOS/EOS), the same for every policy. */
export function userMessages(s: ChatShape, vocab: number, seed: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: s.turns }, () => Array.from({ length: s.user }, () => 3 + Math.floor(r() * (vocab - 3))));
}

export async function runPolicy(
  model: LoadedModel,
  policy: BenchPolicy,
  s: ChatShape,
  messages: readonly number[][],
  adapter: GpuAdapter | undefined,
  onTurn: (r: TurnRecord) => void,
): Promise<TurnRecord[]> {
  const { gpu, config } = model;
  const session = new Session(model, { ...policySetup(policy, s), adapter });
  const records: TurnRecord[] = [];
  let lastFinish: string | undefined;
  try {
    for (const [i, message] of messages.entries()) {
      const first = i === 0 ? [config.bosTokenId ?? 1] : [];
      const pending = session.pendingId;
      const carry = pending !== undefined && lastFinish !== 'eos' ? [pending] : [];
      const t0 = performance.now();
      const stream = session.generate([...session.cachedIds, ...carry, ...first, ...message], {
        maxNewTokens: s.reply,
        temperature: 0,
        seed: 0,
      });
      let step = await stream.next();
      while (!step.done) step = await stream.next();
      const t1 = performance.now();
      const { usage, finishReason } = step.value;
      const kvBytesBeforeEnd = session.stats().bytes;
      // endTurn only records the compression; waiting for the queue times the GPU work itself
      await session.endTurn({ feedPending: finishReason !== 'eos' });
      await gpu.device.queue.onSubmittedWorkDone();
      const t2 = performance.now();
      lastFinish = finishReason;
      const stats = session.stats();
      const ledger = gpu.ledger.snapshot();
      const record: TurnRecord = {
        turn: i + 1,
        fedTokens: usage.promptTokens - usage.reusedTokens,
        replyTokens: usage.completionTokens,
        prefillMs: usage.timeToFirstTokenMs,
        decodeMs: t1 - t0 - usage.timeToFirstTokenMs,
        decodeSteps: usage.completionTokens - 1,
        compressMs: t2 - t1,
        latencyMs: t2 - t0,
        kvBytesBeforeEnd,
        kvBytes: stats.bytes,
        fullContextBytes: stats.fullContextBytes,
        ledgerCurrent: ledger.current,
        ledgerPeak: ledger.peak,
        ledgerKvPeak: ledger.byTag.kv.peak,
        loadAverage: loadavg()[0]!,
      };
      records.push(record);
      onTurn(record);
    }
  } finally {
    session.dispose();
  }
  return records;
}
