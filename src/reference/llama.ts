// Plain CPU forward of a Llama-family model (llama2.c style), f64 activations and accumulation,
// Float32Array weights keyed by Hugging Face tensor names. Two drivers share the per-row math: a
// token-at-a-time session against an explicit KV cache (greedy decoding, recurrent memory tests) and a
// layer-by-layer forward of a whole sequence with an explicit visibility mask, per-row RoPE positions,
// per-row gated LoRA and CCM-merge SUM rows (the single training pass of ccm.md section 6). It is the
// oracle the GPU engine is tested against, so it favours obviousness over speed.
import { invalidInput, modelFormat } from '../errors.js';
import type { SumGroup } from '../memory/positions.js';
import { ropeInvFreq } from '../model/rope-freq.js';
import { expectedShapes, GLOBAL_TENSOR_NAMES, layerTensorNames, type ModelConfig } from '../model/types.js';

export interface ReferenceModel {
  config: ModelConfig;
  tensors: Map<string, Float32Array>;
}

/** CPU side of an adapter: gated LoRA on q/k/v/o and extra embedding rows for ids >= vocab. */
export interface ReferenceAdapter {
  rank: number;
  /** The LoRA update is scaled by alpha / rank. */
  alpha: number;
  /** Key `${layer}.${'q'|'k'|'v'|'o'}`; a: [rank, in], b: [out, rank]. A missing key: no LoRA there. */
  lora: Map<string, { a: Float32Array; b: Float32Array }>;
  /** [m, hidden]: the embedding of id vocab + i is row i. */
  embeddings: Float32Array;
}

export interface ForwardOptions {
  /** RoPE position per row (default 0..n-1). */
  positions?: number[];
  /** Whether row `query` may attend to row `key`; replaces the causal default key <= query. */
  visible?: (query: number, key: number) => boolean;
  /** Per-row LoRA gate, 0 or 1 (default 0); o_proj uses the query row's gate. */
  gates?: number[];
  adapter?: ReferenceAdapter;
  /** In every layer after RoPE, row sum[k]'s K and V are overwritten by the mean of rows comps[k]. */
  sumGroups?: SumGroup[];
}

/** Per layer, per cached token: its rotated key and its value ([kvHeads * headDim] each). */
export type KvCache = { keys: Float64Array[]; values: Float64Array[] }[];

const PROJECTIONS = ['q', 'k', 'v', 'o'] as const;
type Projection = (typeof PROJECTIONS)[number];

/** y[r] = sum_c W[r, c] x[c] (+ bias[r]) with W row-major [rows, cols]. */
function matvec(w: Float32Array, x: Float64Array, rows: number, cols: number, bias?: Float32Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = bias ? (bias[r] as number) : 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += (w[base + c] as number) * (x[c] as number);
    y[r] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * (weight[i] as number));
}

/**
 * Hugging Face rotate_half RoPE on each head of `v` in place: pairs (i, i + headDim/2). Rotations compose,
 * so rotating a stored key by a delta moves it to its position plus delta.
 */
export function rope(v: Float64Array, heads: number, headDim: number, invFreq: Float32Array, pos: number): void {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const angle = pos * (invFreq[i] as number);
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    for (let h = 0; h < heads; h++) {
      const a = h * headDim + i;
      const x0 = v[a] as number;
      const x1 = v[a + half] as number;
      v[a] = x0 * cos - x1 * sin;
      v[a + half] = x1 * cos + x0 * sin;
    }
  }
}

/** Every tensor of the config, checked for presence and size (fails loudly on a malformed model). */
function checkedTensors(model: ReferenceModel): (name: string) => Float32Array {
  for (const [name, shape] of expectedShapes(model.config)) {
    const t = model.tensors.get(name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (!t) throw modelFormat(`reference model: missing tensor ${name}`);
    if (t.length !== size) throw modelFormat(`reference model: ${name} has ${t.length} values, expected ${size}`);
  }
  return (name) => model.tensors.get(name) as Float32Array;
}

/** [in, out] of each adapted projection. */
export function projectionDims(c: ModelConfig): Record<Projection, [number, number]> {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const D = c.hiddenSize;
  return { q: [D, qDim], k: [D, kvDim], v: [D, kvDim], o: [qDim, D] };
}

/** Checks every LoRA pair and the embedding table against the model (fails loudly on a mismatch). */
function checkAdapter(c: ModelConfig, a: ReferenceAdapter): void {
  if (!Number.isInteger(a.rank) || a.rank < 1) throw modelFormat(`reference adapter: bad rank ${a.rank}`);
  const dims = projectionDims(c);
  const known = new Set<string>();
  for (let l = 0; l < c.numLayers; l++) for (const p of PROJECTIONS) known.add(`${l}.${p}`);
  for (const [key, { a: A, b: B }] of a.lora) {
    if (!known.has(key)) throw modelFormat(`reference adapter: unknown LoRA key ${key}`);
    const [inDim, outDim] = dims[key.split('.')[1] as Projection];
    if (A.length !== a.rank * inDim || B.length !== outDim * a.rank) {
      throw modelFormat(
        `reference adapter: ${key} has A ${A.length} / B ${B.length} values for [${a.rank}, ${inDim}] / [${outDim}, ${a.rank}]`,
      );
    }
  }
  if (a.embeddings.length % c.hiddenSize !== 0) {
    throw modelFormat(
      `reference adapter: ${a.embeddings.length} embedding values is not a multiple of ${c.hiddenSize}`,
    );
  }
}

/** The per-row math of one model (+ adapter), shared by both drivers. */
class Rows {
  private readonly c: ModelConfig;
  private readonly w: (name: string) => Float32Array;
  private readonly invFreq: Float32Array;
  private readonly adapter: ReferenceAdapter | undefined;
  private readonly dims: Record<Projection, [number, number]>;

  constructor(model: ReferenceModel, adapter?: ReferenceAdapter) {
    this.c = model.config;
    this.w = checkedTensors(model);
    if (adapter) checkAdapter(this.c, adapter);
    this.adapter = adapter;
    this.dims = projectionDims(this.c);
    this.invFreq = ropeInvFreq(this.c.headDim, this.c.ropeTheta, this.c.ropeScaling);
  }

  /** Ids below the vocabulary read the base table, vocab + i the adapter's row i. */
  embed(id: number): Float64Array {
    const { hiddenSize: D, vocabSize: V } = this.c;
    const extra = this.adapter ? this.adapter.embeddings.length / D : 0;
    if (!Number.isInteger(id) || id < 0 || id >= V + extra) throw invalidInput(`token id ${id} out of range`);
    const table = id < V ? this.w(GLOBAL_TENSOR_NAMES.embed) : (this.adapter as ReferenceAdapter).embeddings;
    const row = id < V ? id : id - V;
    return Float64Array.from(table.subarray(row * D, (row + 1) * D));
  }

  /** W x (+ bias) (+ gate * alpha/rank * B A x) for projection `p` of layer `l`. */
  private project(l: number, p: Projection, x: Float64Array, gate: number): Float64Array {
    const c = this.c;
    const n = layerTensorNames(l);
    const [inDim, outDim] = this.dims[p];
    const biasName = { q: n.qBias, k: n.kBias, v: n.vBias, o: undefined }[p];
    const bias = c.attentionBias && biasName ? this.w(biasName) : undefined;
    const y = matvec(this.w(n[p]), x, outDim, inDim, bias);
    const pair = gate !== 0 ? this.adapter?.lora.get(`${l}.${p}`) : undefined;
    if (pair) {
      const { rank, alpha } = this.adapter as ReferenceAdapter;
      const ax = matvec(pair.a, x, rank, inDim);
      const bax = matvec(pair.b, ax, outDim, rank);
      const s = (gate * alpha) / rank;
      for (let i = 0; i < outDim; i++) y[i] = (y[i] as number) + s * (bax[i] as number);
    }
    return y;
  }

  /** Layer l's query, key and value of residual row x, rotated at `pos`. */
  qkv(l: number, x: Float64Array, pos: number, gate: number): { q: Float64Array; k: Float64Array; v: Float64Array } {
    const c = this.c;
    const xn = rmsnorm(x, this.w(layerTensorNames(l).inputNorm), c.rmsNormEps);
    const q = this.project(l, 'q', xn, gate);
    const k = this.project(l, 'k', xn, gate);
    const v = this.project(l, 'v', xn, gate);
    rope(q, c.numHeads, c.headDim, this.invFreq, pos);
    rope(k, c.numKvHeads, c.headDim, this.invFreq, pos);
    return { q, k, v };
  }

  /** Rest of layer l for row x, in place: attention of q over the given keys, o_proj, then the MLP. */
  finishLayer(l: number, x: Float64Array, q: Float64Array, keys: Float64Array[], values: Float64Array[], gate: number) {
    const c = this.c;
    const n = layerTensorNames(l);
    const o = this.project(l, 'o', this.attend(q, keys, values), gate);
    for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + (o[i] as number);
    const hn = rmsnorm(x, this.w(n.postNorm), c.rmsNormEps);
    const gateProj = matvec(this.w(n.gate), hn, c.intermediateSize, c.hiddenSize);
    const up = matvec(this.w(n.up), hn, c.intermediateSize, c.hiddenSize);
    const act = gateProj.map((g, i) => (g / (1 + Math.exp(-g))) * (up[i] as number)); // SwiGLU
    const down = matvec(this.w(n.down), act, c.hiddenSize, c.intermediateSize);
    for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + (down[i] as number);
  }

  logits(x: Float64Array): Float64Array {
    const c = this.c;
    const xf = rmsnorm(x, this.w(GLOBAL_TENSOR_NAMES.finalNorm), c.rmsNormEps);
    const head = this.w(c.tieWordEmbeddings ? GLOBAL_TENSOR_NAMES.embed : GLOBAL_TENSOR_NAMES.lmHead);
    return matvec(head, xf, c.vocabSize, c.hiddenSize);
  }

  /** GQA attention of one query over the given keys (query head h reads kv head h / group). */
  private attend(q: Float64Array, keys: Float64Array[], values: Float64Array[]): Float64Array {
    const { c } = this;
    const hd = c.headDim;
    const group = c.numHeads / c.numKvHeads;
    const scale = 1 / Math.sqrt(hd);
    const out = new Float64Array(c.numHeads * hd);
    const scores = new Float64Array(keys.length);
    for (let h = 0; h < c.numHeads; h++) {
      const kvOff = Math.floor(h / group) * hd;
      let max = Number.NEGATIVE_INFINITY;
      for (let t = 0; t < keys.length; t++) {
        const k = keys[t] as Float64Array;
        let s = 0;
        for (let i = 0; i < hd; i++) s += (q[h * hd + i] as number) * (k[kvOff + i] as number);
        scores[t] = s * scale;
        max = Math.max(max, s * scale);
      }
      let sum = 0;
      for (let t = 0; t < keys.length; t++) sum += scores[t] = Math.exp((scores[t] as number) - max);
      for (let t = 0; t < keys.length; t++) {
        const p = (scores[t] as number) / sum;
        const v = values[t] as Float64Array;
        for (let i = 0; i < hd; i++) out[h * hd + i] = (out[h * hd + i] as number) + p * (v[kvOff + i] as number);
      }
    }
    return out;
  }
}

function checkGate(gate: number): void {
  if (gate !== 0 && gate !== 1) throw invalidInput(`LoRA gate must be 0 or 1, got ${gate}`);
}

/**
 * A decoding session over an explicit KV cache: each step appends the token's K/V to every layer and
 * attends to every cached slot. `cache` is public so recurrent-memory tests can evict, insert and
 * average slots between steps, exactly as the engine does on the GPU.
 */
export class ReferenceSession {
  readonly cache: KvCache;
  private readonly rows: Rows;

  constructor(model: ReferenceModel, adapter?: ReferenceAdapter) {
    this.rows = new Rows(model, adapter);
    this.cache = Array.from({ length: model.config.numLayers }, () => ({ keys: [], values: [] }));
  }

  /** f64 logits [vocab] of token `id` fed at RoPE position `pos` with LoRA gate `gate`. */
  step(id: number, pos: number, gate = 0): Float64Array {
    checkGate(gate);
    const x = this.rows.embed(id);
    this.cache.forEach((layer, l) => {
      const { q, k, v } = this.rows.qkv(l, x, pos, gate);
      layer.keys.push(k);
      layer.values.push(v);
      this.rows.finishLayer(l, x, q, layer.keys, layer.values, gate);
    });
    return this.rows.logits(x);
  }
}

function checkOptions(n: number, o: ForwardOptions): void {
  for (const [what, list] of [
    ['positions', o.positions],
    ['gates', o.gates],
  ] as const) {
    if (list && list.length !== n) throw invalidInput(`${list.length} ${what} for ${n} tokens`);
  }
  o.gates?.forEach(checkGate);
  const row = (r: number) => {
    if (!Number.isInteger(r) || r < 0 || r >= n) throw invalidInput(`sumGroups: row ${r} out of 0..${n - 1}`);
  };
  for (const g of o.sumGroups ?? []) {
    if (g.sum.length !== g.comps.length) throw invalidInput('sumGroups: sum and comps differ in length');
    g.sum.forEach(row);
    for (const comps of g.comps) {
      if (comps.length === 0) throw invalidInput('sumGroups: a SUM row averages no COMP row');
      comps.forEach(row);
    }
  }
}

function mean(vectors: Float64Array[]): Float64Array {
  const out = new Float64Array((vectors[0] as Float64Array).length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + (v[i] as number);
  return out.map((s) => s / vectors.length);
}

/** f64 logits [ids.length * vocab] of a whole sequence, layer by layer (see ForwardOptions). */
export function referenceForward64(model: ReferenceModel, ids: number[], options: ForwardOptions = {}): Float64Array {
  const n = ids.length;
  checkOptions(n, options);
  const rows = new Rows(model, options.adapter);
  const pos = (t: number) => (options.positions ? (options.positions[t] as number) : t);
  const gate = (t: number) => (options.gates ? (options.gates[t] as number) : 0);
  const visible = options.visible ?? ((q: number, k: number) => k <= q);
  const seen = ids.map((_, t) => ids.map((_, j) => j).filter((j) => visible(t, j)));
  seen.forEach((keys, t) => {
    if (keys.length === 0) throw invalidInput(`row ${t} may attend to no row`);
  });
  const x = ids.map((id) => rows.embed(id));
  for (let l = 0; l < model.config.numLayers; l++) {
    const qkv = x.map((row, t) => rows.qkv(l, row, pos(t), gate(t)));
    const keys = qkv.map((r) => r.k);
    const values = qkv.map((r) => r.v);
    for (const g of options.sumGroups ?? []) {
      g.sum.forEach((s, k) => {
        const comps = g.comps[k] as number[];
        keys[s] = mean(comps.map((r) => qkv[r]?.k as Float64Array));
        values[s] = mean(comps.map((r) => qkv[r]?.v as Float64Array));
      });
    }
    x.forEach((row, t) => {
      const keysSeen = (seen[t] as number[]).map((j) => keys[j] as Float64Array);
      const valuesSeen = (seen[t] as number[]).map((j) => values[j] as Float64Array);
      rows.finishLayer(l, row, (qkv[t] as { q: Float64Array }).q, keysSeen, valuesSeen, gate(t));
    });
  }
  const V = model.config.vocabSize;
  const out = new Float64Array(n * V);
  x.forEach((row, t) => {
    out.set(rows.logits(row), t * V);
  });
  return out;
}

/** Logits [ids.length * vocab] of a whole sequence (referenceForward64 rounded to f32). */
export function referenceForward(model: ReferenceModel, ids: number[], options?: ForwardOptions): Float32Array {
  return Float32Array.from(referenceForward64(model, ids, options));
}

/** Logits for every position, [ids.length * vocab]. Token t attends to tokens 0..t; `positions` (default
 *  0..n-1) only set the RoPE angles. */
export function referenceLogits(model: ReferenceModel, ids: number[], positions?: number[]): Float32Array {
  return referenceForward(model, ids, positions ? { positions } : {});
}

/** Index of the largest value (the first one on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

/** Exactly `maxNewTokens` greedily decoded ids after the prompt (no EOS stop: callers trim). */
export function referenceGreedy(model: ReferenceModel, promptIds: number[], maxNewTokens: number): number[] {
  if (promptIds.length === 0) throw invalidInput('empty prompt');
  const session = new ReferenceSession(model);
  // argmax over f32-rounded logits, as the engine sees them (ties broken by the lower id)
  const stepF32 = (id: number, pos: number) => Float32Array.from(session.step(id, pos));
  let logits: Float32Array = new Float32Array(0);
  promptIds.forEach((id, t) => {
    logits = stepF32(id, t);
  });
  const out: number[] = [];
  for (let i = 0; i < maxNewTokens; i++) {
    const next = argmax(logits);
    out.push(next);
    if (i + 1 < maxNewTokens) logits = stepF32(next, promptIds.length + i);
  }
  return out;
}
