// What the memory panel shows for one finished turn, and the sanitizer every sample passes through
// before it is published or relayed: it rebuilds the sample from known numeric fields only, so that
// whatever a page hands over, no conversation text (or anything else) leaves through the hook.
import type { MemoryStats, Usage } from '../engine/session.js';
import { type LedgerSnapshot, MEMORY_TAGS, type MemoryTag, type TagTotals } from '../gpu/ledger.js';
import { POLICY_NAMES } from '../memory/policy.js';

/** engine.memory() plus the speed of the turn: the statistics of one point on the panel's turn axis. */
export interface MemorySample {
  memory: MemoryStats;
  /** The allocation ledger without its per-owner map (owners are internal names). */
  ledger: Omit<LedgerSnapshot, 'byOwner'>;
  speed?: Pick<Usage, 'prefillTokensPerSecond' | 'decodeTokensPerSecond' | 'timeToFirstTokenMs'>;
  /**
   * The conversation's turn this sample follows (its user messages answered so far); the panel's x axis.
   * Without it the panel counts the sample as the turn after the previous one.
   */
  turn?: number;
  /** The turn was a reply stopped midway: the chat went back to before it (the memory is the previous turn's). */
  stopped?: boolean;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;

/** A finite number (Infinity too: an unbounded budget or a division by zero is still a statistic). */
function num(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${key} is not a number`);
  return v;
}

function obj(o: Obj, key: string): Obj {
  const v = o[key];
  if (!isObj(v)) throw new TypeError(`${key} is not an object`);
  return v;
}

function memoryStats(m: Obj): MemoryStats {
  const policy = POLICY_NAMES.find((p) => p === m.policy);
  if (!policy) throw new TypeError('unknown policy');
  const s = obj(m, 'slots');
  return {
    policy,
    compressionSteps: num(m, 'compressionSteps'),
    layers: num(m, 'layers'),
    slots: { sink: num(s, 'sink'), memory: num(s, 'memory'), working: num(s, 'working'), capacity: num(s, 'capacity') },
    bytes: num(m, 'bytes'),
    fullContextBytes: num(m, 'fullContextBytes'),
    compressionRatio: num(m, 'compressionRatio'),
    tokensCompressed: num(m, 'tokensCompressed'),
    tokensEvicted: num(m, 'tokensEvicted'),
    nextPosition: num(m, 'nextPosition'),
  };
}

function ledger(l: Obj): MemorySample['ledger'] {
  const byTag = obj(l, 'byTag');
  const tags = Object.fromEntries(
    MEMORY_TAGS.map((t) => {
      const totals = obj(byTag, t);
      return [t, { current: num(totals, 'current'), peak: num(totals, 'peak') }];
    }),
  ) as Record<MemoryTag, TagTotals>;
  return { current: num(l, 'current'), peak: num(l, 'peak'), byTag: tags, buffers: num(l, 'buffers') };
}

/**
 * A copy of `value` holding only the fields of MemorySample, or undefined when it is not one. Accepts
 * `{ memory, ledger, speed?, turn?, stopped? }` where ledger may be a full LedgerSnapshot and speed a full Usage.
 */
export function sanitizeSample(value: unknown): MemorySample | undefined {
  if (!isObj(value)) return undefined;
  try {
    const sample: MemorySample = { memory: memoryStats(obj(value, 'memory')), ledger: ledger(obj(value, 'ledger')) };
    if (value.speed !== undefined) {
      const u = obj(value, 'speed');
      sample.speed = {
        prefillTokensPerSecond: num(u, 'prefillTokensPerSecond'),
        decodeTokensPerSecond: num(u, 'decodeTokensPerSecond'),
        timeToFirstTokenMs: num(u, 'timeToFirstTokenMs'),
      };
    }
    if (value.turn !== undefined) {
      const turn = num(value, 'turn');
      if (!Number.isInteger(turn) || turn < 0) throw new TypeError('turn is not a turn number');
      sample.turn = turn;
    }
    if (value.stopped === true) sample.stopped = true;
    return sample;
  } catch {
    return undefined;
  }
}
