// The cooperative GEMV for real GPUs (one or a few rows: decode): 64 invocations share each output, each
// reading every 64th 8-element chunk of its W row, so neighbouring invocations read neighbouring bytes
// (coalesced), then the 64 partial sums are reduced: subgroupAdd and one barrier where subgroups exist
// (subgroup sizes up to 64 divide the 64 lanes, so a subgroup never spans two outputs), a workgroup-memory
// tree otherwise. OUTS outputs per workgroup; rows r0..r0+RT of x per workgroup (grid y).
#include "matmul_out"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#include "wload"
const LANES = 64u;
const OUTS = {{OUTS}}u;
const RT = {{RT}}u;
var<workgroup> part: array<f32, LANES * OUTS * RT>;

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
  let wrow = min(n, p.n - 1u) * (p.w_stride / 8u);
  var acc: array<f32, RT>;
  if (!gated_off) {
    for (var c = lane; c < k8; c += LANES) {
      let wv = w8(wrow + c);
      for (var j = 0u; j < RT; j++) {
        let xb = (p.x_row_offset + min(r0 + j, p.rows - 1u)) * (p.k / 4u) + 2u * c;
        acc[j] += dot(x[xb], wv.lo) + dot(x[xb + 1u], wv.hi);
      }
    }
  }
#if SUBGROUPS
  for (var j = 0u; j < RT; j++) {
    let s = subgroupAdd(acc[j]);
    if (sg_lane == 0u) { part[(j * OUTS + out_in_wg) * LANES + lane / sg_size] = s; }
  }
  workgroupBarrier();
  if (lane == 0u && n < p.n && !gated_off) {
    for (var j = 0u; j < RT; j++) {
      if (r0 + j >= p.rows) { break; }
      var total = 0.0;
      for (var i = 0u; i < LANES / sg_size; i++) { total += part[(j * OUTS + out_in_wg) * LANES + i]; }
      store_out(r0 + j, n, total);
    }
  }
#else
  for (var j = 0u; j < RT; j++) { part[(j * OUTS + out_in_wg) * LANES + lane] = acc[j]; }
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lane < s) {
      for (var j = 0u; j < RT; j++) {
        let i = (j * OUTS + out_in_wg) * LANES + lane;
        part[i] += part[i + s];
      }
    }
  }
  if (lane == 0u && n < p.n && !gated_off) {
    for (var j = 0u; j < RT; j++) {
      if (r0 + j < p.rows) { store_out(r0 + j, n, part[(j * OUTS + out_in_wg) * LANES]); }
    }
  }
#endif
}
