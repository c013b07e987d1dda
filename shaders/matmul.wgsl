// out[(out_row_offset + r) * N + n] = (accumulate ? old : 0) + sum_k x[(x_row_offset + r) * K + k] * W[n, k]
//   + (bias ? bias[n] : 0) + (lora ? gate[r] * lora_scale * sum_j lora_u[r, j] * lora_b[n, j] : 0).
// Each invocation computes a tile of RT rows x NT outputs, so one read of a W pair feeds RT rows and one
// read of an x pair feeds NT outputs. Tile rows/columns past the edge read clamped (valid) addresses and
// skip the write. No barriers or workgroup memory: CPU-emulated adapters run plain loops fastest.
// With GATED (the LoRA-down pass u = X A^T), tiles whose rows all have gate 0 write nothing.
struct Params {
  rows: u32,
  n: u32,
  k: u32,
  w_stride: u32,
  x_row_offset: u32,
  out_row_offset: u32,
  flags: u32,
  rank: u32,
  lora_scale: f32,
  n_tiles: u32,
  count: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#include "wload"
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> gate: array<f32>;
@group(0) @binding(5) var<storage, read> lora_u: array<f32>;
@group(0) @binding(6) var<storage, read> lora_b: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

const ACCUMULATE = 1u;
const BIAS = 2u;
const LORA = 4u;
const GATED = 8u;
const RT = {{RT}}u;
const NT = {{NT}}u;

fn tile_is_gated_off(r0: u32) -> bool {
  for (var j = 0u; j < RT; j++) {
    if (r0 + j < p.rows && gate[r0 + j] != 0.0) { return false; }
  }
  return true;
}

fn lora_term(r: u32, n: u32) -> f32 {
  var s = 0.0;
  for (var j = 0u; j < p.rank; j++) { s += lora_u[r * p.rank + j] * lora_b[n * p.rank + j]; }
  return gate[r] * p.lora_scale * s;
}

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  if (t >= p.count) { return; }
  let n0 = (t % p.n_tiles) * NT;
  let r0 = (t / p.n_tiles) * RT;
  if ((p.flags & GATED) != 0u && tile_is_gated_off(r0)) { return; }

  var xb: array<u32, RT>;
  for (var j = 0u; j < RT; j++) { xb[j] = (p.x_row_offset + min(r0 + j, p.rows - 1u)) * p.k; }
  var wb: array<u32, NT>;
  for (var i = 0u; i < NT; i++) { wb[i] = min(n0 + i, p.n - 1u) * p.w_stride; }

  var acc: array<f32, RT * NT>;
  var k = 0u;
  for (; k + 1u < p.k; k += 2u) {
    var xv: array<vec2<f32>, RT>;
    for (var j = 0u; j < RT; j++) { xv[j] = vec2<f32>(x[xb[j] + k], x[xb[j] + k + 1u]); }
    for (var i = 0u; i < NT; i++) {
      let wv = w_pair(wb[i] + k);
      for (var j = 0u; j < RT; j++) { acc[j * NT + i] += dot(xv[j], wv); }
    }
  }
  if (k < p.k) {
    for (var i = 0u; i < NT; i++) {
      let wv = w_at(wb[i] + k);
      for (var j = 0u; j < RT; j++) { acc[j * NT + i] += x[xb[j] + k] * wv; }
    }
  }

  for (var j = 0u; j < RT; j++) {
    let r = r0 + j;
    for (var i = 0u; i < NT; i++) {
      let n = n0 + i;
      if (r >= p.rows || n >= p.n) { continue; }
      var v = acc[j * NT + i];
      if ((p.flags & BIAS) != 0u) { v += bias[n]; }
      if ((p.flags & LORA) != 0u && gate[r] != 0.0) { v += lora_term(r, n); }
      let o = (p.out_row_offset + r) * p.n + n;
      if ((p.flags & ACCUMULATE) != 0u) { v += out[o]; }
      out[o] = v;
    }
  }
}
