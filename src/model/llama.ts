// The Llama-family forward pass on the GPU: one Batch per forward, K/V projections written straight
// into the cache, residual adds fused into the o/down projections, SwiGLU fused into the gate/up pass.
// A chat turn reaches the kernels through here (src/engine/session.ts calls encodeForward).

import type { GpuAdapter, LoraPair } from '../adapters/gpu.js';
import { shapeError } from '../errors.js';
import type { Batch } from '../gpu/batch.js';
import type { Gpu } from '../gpu/device.js';
import { createTensor, type Tensor } from '../gpu/tensor.js';
import { attention, attentionScratchElements } from '../kernels/attention.js';
import { embedding } from '../kernels/embedding.js';
import { matmul } from '../kernels/matmul.js';
import { rmsnorm } from '../kernels/rmsnorm.js';
import { rope } from '../kernels/rope.js';
import type { ModelConfig } from './types.js';
import type { ModelWeights } from './weights.js';

export interface StateOptions {
  /** Cache slots (tokens the KV cache can hold). */
  capacity: number;
  /** Most rows one forward processes (prefill chunk size). */
  chunk: number;
  /** Most rows whose logits one forward produces. */
  logitRows: number;
  /** LoRA rank the state must serve (scratch for x A^T); 0 without an adapter. */
  loraRank?: number;
  owner: string;
}

/** Per-conversation GPU state: the KV cache, the token and position tables, and scratch activations. */
export interface ForwardState {
  readonly options: StateOptions;
  readonly kCache: Tensor[];
  readonly vCache: Tensor[];
  /** Token id at every cache slot; the sampler writes the next id here, so decode needs no upload. */
  readonly tokens: Tensor;
  /** RoPE position of every cache slot. */
  readonly positions: Tensor;
  readonly x: Tensor;
  readonly xn: Tensor;
  readonly q: Tensor;
  readonly attn: Tensor;
  readonly act: Tensor;
  readonly logits: Tensor;
  readonly attnScratch: Tensor;
  /** Per-row LoRA gate (1 on COMP rows) of a gated forward, written by the caller. */
  readonly rowGate: Tensor;
  readonly loraU: Tensor;
}

export function createState(gpu: Gpu, c: ModelConfig, o: StateOptions): ForwardState {
  const kvDim = c.numKvHeads * c.headDim;
  const qDim = c.numHeads * c.headDim;
  const t = (tag: 'kv' | 'scratch', label: string, shape: number[], format: 'f32' | 'u32' = 'f32') =>
    createTensor(gpu, { tag, owner: o.owner, label, shape, format });
  const layers = [...Array(c.numLayers).keys()];
  return {
    options: o,
    kCache: layers.map((i) => t('kv', `k${i}`, [o.capacity, kvDim])),
    vCache: layers.map((i) => t('kv', `v${i}`, [o.capacity, kvDim])),
    tokens: t('scratch', 'tokens', [o.capacity + 1], 'u32'),
    positions: t('scratch', 'positions', [o.capacity], 'u32'),
    x: t('scratch', 'x', [o.chunk, c.hiddenSize]),
    xn: t('scratch', 'xn', [o.chunk, c.hiddenSize]),
    q: t('scratch', 'q', [o.chunk, qDim]),
    attn: t('scratch', 'attn', [o.chunk, qDim]),
    act: t('scratch', 'act', [o.chunk, c.intermediateSize]),
    logits: t('scratch', 'logits', [o.logitRows, c.vocabSize]),
    rowGate: t('scratch', 'row-gate', [o.chunk]),
    loraU: t('scratch', 'lora-u', [o.chunk, Math.max(1, o.loraRank ?? 0)]),
    attnScratch: t('scratch', 'attn-scratch', [
      Math.max(
        attentionScratchElements(o.chunk, c.numHeads, c.headDim, o.capacity),
        attentionScratchElements(1, c.numHeads, c.headDim, o.capacity),
      ),
    ]),
  };
}

export interface ForwardArgs {
  /** Slots already in the cache; the new rows occupy slots [past, past + rows). */
  past: number;
  rows: number;
  /** Which rows get logits: the last one (generation) or all (scoring). */
  logits: 'last' | 'all' | 'none';
  /** Apply the adapter's LoRA on rows whose state.rowGate is 1 (written by the caller). */
  gated?: boolean;
  /** Explicit visibility (u32 bitmask [rows, ceil((past + rows) / 32)]) instead of causal-with-past. */
  mask?: Tensor;
}

/**
 * Encodes one forward of `rows` tokens read from state.tokens[past..] at state.positions[past..].
 * The caller has written those ids and positions. Logits land in state.logits rows [0, n).
 */
export function encodeForward(
  b: Batch,
  c: ModelConfig,
  w: ModelWeights,
  s: ForwardState,
  a: ForwardArgs,
  adapter?: GpuAdapter,
): void {
  const { past, rows } = a;
  const o = s.options;
  if (rows < 1 || rows > o.chunk) throw shapeError(`forward: ${rows} rows, chunk is ${o.chunk}`);
  if (past + rows > o.capacity) throw shapeError(`forward: ${past + rows} slots, capacity is ${o.capacity}`);
  if (a.logits === 'all' && rows > o.logitRows)
    throw shapeError(`forward: ${rows} logit rows, state has ${o.logitRows}`);
  const D = c.hiddenSize;
  const F = c.intermediateSize;
  const hd = c.headDim;
  const qDim = c.numHeads * hd;
  const kvDim = c.numKvHeads * hd;
  const eps = c.rmsNormEps;
  if (a.gated && !adapter) throw shapeError('forward: a gated forward needs an adapter');
  if (adapter && adapter.rank > (o.loraRank ?? 0)) {
    throw shapeError(`forward: adapter rank ${adapter.rank}, state serves rank ${o.loraRank ?? 0}`);
  }
  const lora = (pair: LoraPair | undefined) =>
    a.gated && pair ? { ...pair, scale: adapter!.scale, gate: s.rowGate, u: s.loraU } : undefined;

  embedding(b, {
    ids: s.tokens,
    idsOffset: past,
    table: w.embed,
    extra: adapter?.embeddings,
    out: s.x,
    rows,
    dim: D,
    vocab: c.vocabSize,
  });
  for (let l = 0; l < c.numLayers; l++) {
    const L = w.layers[l]!;
    const A = adapter?.layers[l] ?? {};
    const k = s.kCache[l]!;
    const v = s.vCache[l]!;
    rmsnorm(b, { x: s.x, weight: L.inputNorm, out: s.xn, rows, dim: D, eps });
    matmul(b, { x: s.xn, w: L.q, out: s.q, rows, n: qDim, k: D, bias: L.qBias, lora: lora(A.q) });
    matmul(b, { x: s.xn, w: L.k, out: k, rows, n: kvDim, k: D, bias: L.kBias, outRowOffset: past, lora: lora(A.k) });
    matmul(b, { x: s.xn, w: L.v, out: v, rows, n: kvDim, k: D, bias: L.vBias, outRowOffset: past, lora: lora(A.v) });
    const ropeArgs = { positions: s.positions, positionsOffset: past, invFreq: w.invFreq, rows, headDim: hd };
    rope(b, { ...ropeArgs, x: s.q, heads: c.numHeads });
    rope(b, { ...ropeArgs, x: k, heads: c.numKvHeads, rowOffset: past });
    attention(b, {
      q: s.q,
      k,
      v,
      out: s.attn,
      queries: rows,
      keys: past + rows,
      heads: c.numHeads,
      kvHeads: c.numKvHeads,
      headDim: hd,
      mask: a.mask,
      scratch: s.attnScratch,
    });
    matmul(b, { x: s.attn, w: L.o, out: s.x, rows, n: D, k: qDim, accumulate: true, lora: lora(A.o) });
    rmsnorm(b, { x: s.x, weight: L.postNorm, out: s.xn, rows, dim: D, eps });
    matmul(b, { x: s.xn, w: L.gateUp, out: s.act, rows, n: F, k: D, swiglu: true });
    matmul(b, { x: s.act, w: L.down, out: s.x, rows, n: D, k: F, accumulate: true });
  }
  if (a.logits === 'none') return;
  const outRows = a.logits === 'all' ? rows : 1;
  const xRowOffset = a.logits === 'all' ? 0 : rows - 1;
  rmsnorm(b, { x: s.x, weight: w.finalNorm, out: s.xn, rows: outRows, dim: D, eps, xRowOffset });
  matmul(b, { x: s.xn, w: w.lmHead, out: s.logits, rows: outRows, n: c.vocabSize, k: D });
}
