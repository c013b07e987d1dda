// Chooses the next token from one row of logits in a single workgroup, so that only the id is read
// back. Order: repetition penalty, temperature (0 = greedy argmax), top-k, softmax, top-p, then an
// inverse-CDF draw over the kept ids in ascending id order. The top-k and top-p thresholds are found by
// a 32-round binary search over the order-preserving u32 encoding of the scaled logits, which keeps
// exactly the ids a sort-based definition keeps (src/kernels/sample.ref.ts) without sorting.
struct Params {
  vocab: u32,
  logits_offset: u32,
  out_index: u32,
  greedy: u32,
  top_k: u32, // 0 or >= vocab: off
  top_p: f32, // 1: off
  inv_temperature: f32,
  penalty: f32,
  inv_penalty: f32,
  seed: u32,
  step: u32,
  fan: u32, // = FAN, as a run-time loop bound: lavapipe's compiler takes ~15 s on the unrolled reductions
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

const WG = 256u; // one workgroup, the most invocations SwiftShader allows
const FAN = 16u; // WG = FAN * FAN: reductions take two levels, so only three barriers
const NONE = 0xffffffffu;
var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> total: f32;

// Penalised, temperature-scaled logit. Multiplications only (by reciprocals computed on the CPU): they
// are correctly rounded in WGSL, divisions are not, and the CPU reference must match bit for bit.
fn value(i: u32) -> f32 {
  var x = logits[p.logits_offset + i];
  if (seen[i] != 0u) { x = select(x * p.penalty, x * p.inv_penalty, x > 0.0); }
  return x * p.inv_temperature;
}

// Order-preserving u32 encoding of a float (-0 folded into +0, as comparisons treat them).
fn key(x: f32) -> u32 {
  let b = select(bitcast<u32>(x), 0u, x == 0.0);
  return b ^ select(0x80000000u, 0xffffffffu, (b >> 31u) == 1u);
}

// PCG hash (same as sampleUniform in sample.ref.ts): u in [0, 1) with 24 random bits.
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

// Workgroup reductions in a fixed order: FAN threads each fold FAN slots, then every thread folds the
// FAN partials itself (so the result needs no broadcast). Barriers on CPU adapters are costly.
fn sum_f(v: f32, lid: u32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  if (lid < FAN) {
    var a = 0.0;
    for (var i = 0u; i < p.fan; i++) { a += red_f[lid * FAN + i]; }
    red_f[lid * FAN] = a;
  }
  workgroupBarrier();
  var r = 0.0;
  for (var i = 0u; i < p.fan; i++) { r += red_f[i * FAN]; }
  workgroupBarrier();
  return r;
}

fn max_f(v: f32, lid: u32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  if (lid < FAN) {
    var a = red_f[lid * FAN];
    for (var i = 1u; i < p.fan; i++) { a = max(a, red_f[lid * FAN + i]); }
    red_f[lid * FAN] = a;
  }
  workgroupBarrier();
  var r = red_f[0];
  for (var i = 1u; i < p.fan; i++) { r = max(r, red_f[i * FAN]); }
  workgroupBarrier();
  return r;
}

fn sum_u(v: u32, lid: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  if (lid < FAN) {
    var a = 0u;
    for (var i = 0u; i < p.fan; i++) { a += red_u[lid * FAN + i]; }
    red_u[lid * FAN] = a;
  }
  workgroupBarrier();
  var r = 0u;
  for (var i = 0u; i < p.fan; i++) { r += red_u[i * FAN]; }
  workgroupBarrier();
  return r;
}

// Does candidate (f, id) beat (bf, bid) for argmax? Larger value, then lower id; NONE never wins.
fn beats(f: f32, id: u32, bf: f32, bid: u32) -> bool {
  return id != NONE && (bid == NONE || f > bf || (f == bf && id < bid));
}

// Unnormalised softmax mass of the ids whose key is >= threshold (a fixed summation order, so the result
// is monotone in the threshold).
fn mass(threshold: u32, m: f32, lid: u32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < p.vocab; i += WG) {
    let x = value(i);
    if (key(x) >= threshold) { s += exp(x - m); }
  }
  return sum_f(s, lid);
}

fn choose(id: u32) {
  out[p.out_index] = id;
  seen[id] = 1u;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = p.vocab;
  if (p.greedy == 1u) {
    // Argmax, ties to the lowest id: each thread scans ascending ids, the reduction prefers the lower id.
    var best = 0.0;
    var best_id = NONE;
    for (var i = lid; i < n; i += WG) {
      let x = value(i);
      if (best_id == NONE || x > best) { best = x; best_id = i; }
    }
    red_f[lid] = best;
    red_u[lid] = best_id;
    workgroupBarrier();
    if (lid < FAN) {
      best = red_f[lid * FAN];
      best_id = red_u[lid * FAN];
      for (var i = 1u; i < p.fan; i++) {
        let j = lid * FAN + i;
        if (beats(red_f[j], red_u[j], best, best_id)) { best = red_f[j]; best_id = red_u[j]; }
      }
      red_f[lid * FAN] = best;
      red_u[lid * FAN] = best_id;
    }
    workgroupBarrier();
    if (lid == 0u) {
      for (var i = 1u; i < p.fan; i++) {
        let j = i * FAN;
        if (beats(red_f[j], red_u[j], best, best_id)) { best = red_f[j]; best_id = red_u[j]; }
      }
      choose(best_id);
    }
    return;
  }

  var local_max = value(lid % n);
  for (var i = lid; i < n; i += WG) { local_max = max(local_max, value(i)); }
  let m = max_f(local_max, lid);

  // Top-k: the largest key with at least k ids at or above it is the k-th largest value's key.
  var tk = 0u;
  if (p.top_k > 0u && p.top_k < n) {
    for (var bit = 31i; bit >= 0i; bit--) {
      let cand = tk | (1u << u32(bit));
      var c = 0u;
      for (var i = lid; i < n; i += WG) { c += select(0u, 1u, key(value(i)) >= cand); }
      if (sum_u(c, lid) >= p.top_k) { tk = cand; }
    }
  }

  // Top-p: the largest key whose mass at or above it still reaches top_p of the top-k mass.
  var tau = tk;
  if (p.top_p < 1.0) {
    let needed = p.top_p * mass(tk, m, lid);
    var tp = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
      let cand = tp | (1u << u32(bit));
      if (mass(max(cand, tk), m, lid) >= needed) { tp = cand; }
    }
    tau = max(tp, tk);
  }

  // Draw: contiguous chunks in id order, an exclusive scan of their masses, then the one chunk that
  // holds u * total scans its ids.
  let chunk = (n + WG - 1u) / WG;
  let lo = min(lid * chunk, n);
  let hi = min(lo + chunk, n);
  var cs = 0.0;
  for (var i = lo; i < hi; i++) {
    let x = value(i);
    if (key(x) >= tau) { cs += exp(x - m); }
  }
  red_f[lid] = cs;
  workgroupBarrier();
  if (lid == 0u) {
    var run = 0.0;
    for (var t = 0u; t < WG; t++) {
      let c = red_f[t];
      red_f[t] = run;
      run += c;
    }
    total = run;
  }
  workgroupBarrier();
  let before = red_f[lid];
  let draw = f32(pcg(pcg(p.seed) + p.step) >> 8u) * (1.0 / 16777216.0) * total;
  // before + cs repeats the scan's own addition, so exactly one chunk satisfies this.
  if (draw >= before && draw < before + cs) {
    let rest = draw - before;
    var run = 0.0;
    var pick = NONE;
    for (var i = lo; i < hi; i++) {
      let x = value(i);
      if (key(x) >= tau) {
        run += exp(x - m);
        pick = i;
        if (run > rest) { break; }
      }
    }
    choose(pick); // the last kept id of the chunk when rounding leaves `rest` at the chunk's mass
  }
}
