// Attention, pass 1 of 2 (flash-decoding): one invocation per (query, key split, head) runs an online
// softmax over its split of the KV cache and writes the partial max m, sum l and unnormalised weighted
// values o[HD] to scratch; attention_combine.wgsl merges the splits. One invocation per item with a
// plain loop and no barriers: the fastest shape on CPU-emulated adapters, and fine on GPUs.
struct Params {
  queries: u32,
  keys: u32,
  heads: u32,
  group: u32, // query heads per KV head
  kv_heads: u32,
  splits: u32,
  split_len: u32,
  scale: f32,
  past: u32, // keys - queries: query t sees keys j <= past + t without a mask
  mask_words: u32, // ceil(keys / 32): u32 words per mask row
  head_dim: u32, // HD, as a run-time loop bound: lavapipe's compiler is slow on fully unrolled loops
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
#if VEC4
// head_dim in whole 4s: K/V rows read as vec4 (a quarter of the loads and private-array accesses)
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
const LANES = 4u;
alias Vec = vec4<f32>;
fn vdot(a: Vec, b: Vec) -> f32 { return dot(a, b); }
#else
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
const LANES = 1u;
alias Vec = f32;
fn vdot(a: Vec, b: Vec) -> f32 { return a * b; }
#endif
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>;
#if MASK
@group(0) @binding(5) var<storage, read> mask: array<u32>;
#endif

const HD = {{HD}}u;
const HDV = HD / LANES; // elements of Vec per head
const NO_SCORE = -3.0e38; // below any real score; a split that sees no key keeps l = 0

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let item = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  if (item >= p.queries * p.splits * p.heads) { return; }
  // Heads vary fastest so that neighbouring invocations share K/V rows (GQA) and adjacent memory.
  let h = item % p.heads;
  let s = (item / p.heads) % p.splits;
  let t = item / (p.heads * p.splits);
  let kv_base = (h / p.group) * HDV;
  let kv_stride = p.kv_heads * HDV;
  let hdv = p.head_dim / LANES;

  var qs: array<Vec, HDV>;
  let q_base = (t * p.heads + h) * HD;
  for (var d = 0u; d < hdv; d++) {
#if VEC4
    let b = q_base + d * 4u;
    qs[d] = vec4<f32>(q[b], q[b + 1u], q[b + 2u], q[b + 3u]) * p.scale;
#else
    qs[d] = q[q_base + d] * p.scale;
#endif
  }

  let j0 = s * p.split_len;
#if MASK
  let j1 = min(j0 + p.split_len, p.keys);
  let mask_row = t * p.mask_words;
#else
  let j1 = min(min(j0 + p.split_len, p.keys), p.past + t + 1u);
#endif
  var acc: array<Vec, HDV>;
  var m = NO_SCORE;
  var l = 0.0;
  for (var j = j0; j < j1; j++) {
#if MASK
    if (((mask[mask_row + (j >> 5u)] >> (j & 31u)) & 1u) == 0u) { continue; }
#endif
    let kb = j * kv_stride + kv_base;
    var score = 0.0;
    for (var d = 0u; d < hdv; d++) { score += vdot(qs[d], k[kb + d]); }
    if (score > m) {
      // A new running max: rescale what was accumulated so far (rare after the first few keys).
      let c = exp(m - score);
      l *= c;
      for (var d = 0u; d < hdv; d++) { acc[d] *= c; }
      m = score;
    }
    let w = exp(score - m);
    l += w;
    for (var d = 0u; d < hdv; d++) { acc[d] += w * v[kb + d]; }
  }
  let out = item * (HD + 2u);
  scratch[out] = m;
  scratch[out + 1u] = l;
  for (var d = 0u; d < hdv; d++) {
#if VEC4
    for (var e = 0u; e < 4u; e++) { scratch[out + 2u + d * 4u + e] = acc[d][e]; }
#else
    scratch[out + 2u + d] = acc[d];
#endif
  }
}
