// out[(out_row_offset + r) * N + n] = (accumulate ? old : 0) + sum_k x[(x_row_offset + r) * K + k] * W[n, k]
//   + (bias ? bias[n] : 0) + (lora ? gate[r] * lora_scale * sum_j lora_u[r, j] * lora_b[n, j] : 0).
// Each invocation computes a tile of RT rows x NT outputs, so one read of W feeds RT rows and one read of
// x feeds NT outputs. W is read in pairs, or with VEC8 eight at a time (16-byte loads of f16: on
// CPU-emulated adapters every per-invocation load is a gather, so wider loads mean fewer of them). Tile
// rows/columns past the edge read clamped (valid) addresses and skip the write. No barriers or workgroup memory: CPU-emulated adapters run plain loops fastest.
// With GATED (the LoRA-down pass u = X A^T), tiles whose rows all have gate 0 write nothing.
// With SWIGLU, W is [2N, K] (gate rows, then up rows) and out = silu(x . gate) * (x . up): the MLP's
// gate/up projections and SwiGLU in one pass.
#include "matmul_out"
#if VEC8
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#endif
#include "wload"
const RT = {{RT}}u;
const NT = {{NT}}u;
// W rows read per tile: NT, or with SWIGLU the NT gate rows and the NT up rows p.n rows further down
const NW = NT * {{W_ROWS}}u;

/**
 * Output i of tile t. Row-major weights: NT consecutive outputs. Blocked weights (NT = 4): eight
 * neighbouring tiles take neighbouring rows of one 32-row block, so their loads are adjacent in memory.
 */
fn tile_n(t: u32, i: u32) -> u32 {
#if BLOCKED
  return (t / 8u) * 32u + i * 8u + t % 8u;
#else
  return t * NT + i;
#endif
}

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // output tiles along x (folded into z past the per-dimension limit), row tiles along y: the rows, and so
  // the x addresses, are the same for the whole workgroup, which CPU adapters load once instead of gathering
  let t = (wid.z * nwg.x + wid.x) * {{WG}}u + lid;
  if (t >= p.n_tiles) { return; }
  let r0 = wid.y * RT;
  if ((p.flags & GATED) != 0u && rows_gated_off(r0, RT)) { return; }

  var xb: array<u32, RT>;
  for (var j = 0u; j < RT; j++) { xb[j] = (p.x_row_offset + min(r0 + j, p.rows - 1u)) * p.k; }
  var acc: array<f32, RT * NW>;
  var wrow: array<u32, NW>;
  for (var i = 0u; i < NW; i++) { wrow[i] = min(tile_n(t, i % NT), p.n - 1u) + (i / NT) * p.n; }
#if VEC8
  var wb: array<u32, NW>;
  for (var i = 0u; i < NW; i++) { wb[i] = w_row_base(wrow[i], p.w_stride) / 8u; }
  // K8 is k / 8 as a constant in single-row pipelines (which the compiler then unrolls fully: about twice
  // as fast on lavapipe) and read from the parameters otherwise (a full unroll of RT > 1 compiles for seconds)
  let k8 = {{K8}};
  for (var c = 0u; c < k8; c++) {
    var xlo: array<vec4<f32>, RT>;
    var xhi: array<vec4<f32>, RT>;
    for (var j = 0u; j < RT; j++) {
      let b = xb[j] / 4u + 2u * c;
      xlo[j] = x[b];
      xhi[j] = x[b + 1u];
    }
    for (var i = 0u; i < NW; i++) {
      let wv = w8(wb[i] + c * W_CHUNK_STEP);
      for (var j = 0u; j < RT; j++) { acc[j * NW + i] += dot(xlo[j], wv.lo) + dot(xhi[j], wv.hi); }
    }
  }
#else
  var wb: array<u32, NW>;
  for (var i = 0u; i < NW; i++) { wb[i] = w_row_base(wrow[i], p.w_stride); }
  var k = 0u;
  for (; k + 1u < p.k; k += 2u) {
    var xv: array<vec2<f32>, RT>;
    for (var j = 0u; j < RT; j++) { xv[j] = vec2<f32>(x[xb[j] + k], x[xb[j] + k + 1u]); }
    for (var i = 0u; i < NW; i++) {
      let wv = w_pair(wb[i] + w_col(k));
      for (var j = 0u; j < RT; j++) { acc[j * NW + i] += dot(xv[j], wv); }
    }
  }
  if (k < p.k) {
    for (var i = 0u; i < NW; i++) {
      let wv = w_at(wb[i] + w_col(k));
      for (var j = 0u; j < RT; j++) { acc[j * NW + i] += x[xb[j] + k] * wv; }
    }
  }
#endif

  for (var j = 0u; j < RT; j++) {
    let r = r0 + j;
    for (var i = 0u; i < NT; i++) {
      let n = tile_n(t, i);
      if (r >= p.rows || n >= p.n) { continue; }
#if SWIGLU
      store_out(r, n, silu(acc[j * NW + i]) * acc[j * NW + NT + i]);
#else
      store_out(r, n, acc[j * NW + i]);
#endif
    }
  }
}
