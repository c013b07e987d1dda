// The cooperative GEMV for real GPUs (one or a few rows: decode): 64 invocations share each output, each
// reading every 64th 8-element chunk of its W row, so neighbouring invocations read neighbouring bytes
// (coalesced), then the 64 partial sums are reduced: subgroupAdd and one barrier where subgroups exist
// (subgroup sizes up to 64 divide the 64 lanes, so a subgroup never spans two outputs), a workgroup-memory
// tree otherwise. OUTS outputs per workgroup; rows r0..r0+RT of x per workgroup (grid y). With SWIGLU each
// output reads its gate row n and its up row p.n + n (W is [2N, K]) and stores silu(gate) * up.
#include "matmul_out"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#include "wload"
const LANES = 64u;
const OUTS = {{OUTS}}u;
const RT = {{RT}}u;
const NW = {{W_ROWS}}u; // W rows per output
const SUMS = RT * NW; // sums per output
var<workgroup> part: array<f32, LANES * OUTS * SUMS>;

/** The finished sums of one output (gate and up with SWIGLU) for row j, as stored. */
fn result(sums: array<f32, SUMS>, j: u32) -> f32 {
#if SWIGLU
  return silu(sums[j * NW]) * sums[j * NW + 1u];
#else
  return sums[j];
#endif
}

@compute @workgroup_size(LANES * OUTS)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS
  @builtin(subgroup_invocation_id) sg_lane: u32,
  @builtin(subgroup_size) sg_size: u32,
#endif
) {
  let lane = lid % LANES;
  let out_in_wg = lid / LANES;
  let n = (wid.x + wid.z * nwg.x) * OUTS + out_in_wg;
  let r0 = wid.y * RT;
  let gated_off = (p.flags & GATED) != 0u && rows_gated_off(r0, RT);
  let k8 = p.k / 8u;
  var acc: array<f32, SUMS>;
  if (!gated_off) {
    for (var i = 0u; i < NW; i++) {
      let wrow = (min(n, p.n - 1u) + i * p.n) * (p.w_stride / 8u);
      for (var c = lane; c < k8; c += LANES) {
        let wv = w8(wrow + c);
        for (var j = 0u; j < RT; j++) {
          let xb = (p.x_row_offset + min(r0 + j, p.rows - 1u)) * (p.k / 4u) + 2u * c;
          acc[j * NW + i] += dot(x[xb], wv.lo) + dot(x[xb + 1u], wv.hi);
        }
      }
    }
  }
  let base = out_in_wg * SUMS * LANES;
#if SUBGROUPS
  for (var s = 0u; s < SUMS; s++) {
    let total = subgroupAdd(acc[s]);
    if (sg_lane == 0u) { part[base + s * LANES + lane / sg_size] = total; }
  }
  workgroupBarrier();
  if (lane == 0u && n < p.n && !gated_off) {
    var sums: array<f32, SUMS>;
    for (var s = 0u; s < SUMS; s++) {
      for (var i = 0u; i < LANES / sg_size; i++) { sums[s] += part[base + s * LANES + i]; }
    }
    for (var j = 0u; j < RT; j++) {
      if (r0 + j < p.rows) { store_out(r0 + j, n, result(sums, j)); }
    }
  }
#else
  for (var s = 0u; s < SUMS; s++) { part[base + s * LANES + lane] = acc[s]; }
  for (var half = LANES / 2u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lane < half) {
      for (var s = 0u; s < SUMS; s++) { part[base + s * LANES + lane] += part[base + s * LANES + lane + half]; }
    }
  }
  if (lane == 0u && n < p.n && !gated_off) {
    var sums: array<f32, SUMS>;
    for (var s = 0u; s < SUMS; s++) { sums[s] = part[base + s * LANES]; }
    for (var j = 0u; j < RT; j++) {
      if (r0 + j < p.rows) { store_out(r0 + j, n, result(sums, j)); }
    }
  }
#endif
}
