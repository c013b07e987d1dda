// Plain CPU forward of a Llama-family model (llama2.c style): one token at a time against a KV cache,
// f64 activations and accumulation, Float32Array weights keyed by Hugging Face tensor names. It is the
// oracle the GPU engine is tested against, so it favours obviousness over speed.
import { invalidInput, modelFormat } from '../errors.js';
import { ropeInvFreq } from '../kernels/rope.js';
import { expectedShapes, GLOBAL_TENSOR_NAMES, layerTensorNames, type ModelConfig } from '../model/types.js';

export interface ReferenceModel {
  config: ModelConfig;
  tensors: Map<string, Float32Array>;
}

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

/** Hugging Face rotate_half RoPE on each head of `v` in place: pairs (i, i + headDim/2). */
function rope(v: Float64Array, heads: number, headDim: number, invFreq: Float32Array, pos: number): void {
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

/** A decoding session: feed tokens one at a time, get the logits after each. */
class Session {
  private readonly c: ModelConfig;
  private readonly w: (name: string) => Float32Array;
  private readonly invFreq: Float32Array;
  /** Per layer, per cached token: its rotated key and its value ([kvHeads * headDim] each). */
  private readonly keys: Float64Array[][];
  private readonly values: Float64Array[][];

  constructor(model: ReferenceModel) {
    this.c = model.config;
    this.w = checkedTensors(model);
    this.invFreq = ropeInvFreq(this.c.headDim, this.c.ropeTheta, this.c.ropeScaling);
    this.keys = Array.from({ length: this.c.numLayers }, () => []);
    this.values = Array.from({ length: this.c.numLayers }, () => []);
  }

  step(id: number, pos: number): Float32Array {
    const { c, w } = this;
    const D = c.hiddenSize;
    const hd = c.headDim;
    const qDim = c.numHeads * hd;
    const kvDim = c.numKvHeads * hd;
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw invalidInput(`token id ${id} out of range`);
    const x = Float64Array.from(w(GLOBAL_TENSOR_NAMES.embed).subarray(id * D, (id + 1) * D));
    const bias = (name: string) => (c.attentionBias ? w(name) : undefined);

    for (let l = 0; l < c.numLayers; l++) {
      const n = layerTensorNames(l);
      const xn = rmsnorm(x, w(n.inputNorm), c.rmsNormEps);
      const q = matvec(w(n.q), xn, qDim, D, bias(n.qBias));
      const k = matvec(w(n.k), xn, kvDim, D, bias(n.kBias));
      const v = matvec(w(n.v), xn, kvDim, D, bias(n.vBias));
      rope(q, c.numHeads, hd, this.invFreq, pos);
      rope(k, c.numKvHeads, hd, this.invFreq, pos);
      const keys = this.keys[l] as Float64Array[];
      const values = this.values[l] as Float64Array[];
      keys.push(k);
      values.push(v);

      const att = this.attend(q, keys, values);
      const o = matvec(w(n.o), att, D, qDim);
      for (let i = 0; i < D; i++) x[i] = (x[i] as number) + (o[i] as number);

      const hn = rmsnorm(x, w(n.postNorm), c.rmsNormEps);
      const gate = matvec(w(n.gate), hn, c.intermediateSize, D);
      const up = matvec(w(n.up), hn, c.intermediateSize, D);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * (up[i] as number)); // SwiGLU
      const down = matvec(w(n.down), act, D, c.intermediateSize);
      for (let i = 0; i < D; i++) x[i] = (x[i] as number) + (down[i] as number);
    }

    const xf = rmsnorm(x, w(GLOBAL_TENSOR_NAMES.finalNorm), c.rmsNormEps);
    const head = w(c.tieWordEmbeddings ? GLOBAL_TENSOR_NAMES.embed : GLOBAL_TENSOR_NAMES.lmHead);
    return Float32Array.from(matvec(head, xf, c.vocabSize, D));
  }

  /** Causal GQA attention of one query over every cached token (query head h reads kv head h / group). */
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

/** Logits for every position, [ids.length * vocab]. Token t attends to tokens 0..t; `positions` (default
 *  0..n-1) only set the RoPE angles. */
export function referenceLogits(model: ReferenceModel, ids: number[], positions?: number[]): Float32Array {
  if (positions && positions.length !== ids.length) {
    throw invalidInput(`${positions.length} positions for ${ids.length} tokens`);
  }
  const V = model.config.vocabSize;
  const session = new Session(model);
  const out = new Float32Array(ids.length * V);
  ids.forEach((id, t) => {
    out.set(session.step(id, positions ? (positions[t] as number) : t), t * V);
  });
  return out;
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
  const session = new Session(model);
  let logits: Float32Array = new Float32Array(0);
  promptIds.forEach((id, t) => {
    logits = session.step(id, t);
  });
  const out: number[] = [];
  for (let i = 0; i < maxNewTokens; i++) {
    const next = argmax(logits);
    out.push(next);
    if (i + 1 < maxNewTokens) logits = session.step(next, promptIds.length + i);
  }
  return out;
}
