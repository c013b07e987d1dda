// Re-rotates cached keys (rotate_half layout, already RoPE'd) by one position delta shared by every
// row: angle = delta * inv_freq[i]. Rotations compose, so a key rotated at p becomes the key rotated
// at p + delta. The delta is a kernel parameter, so several re-rotations can share one Batch.
// One invocation per rotated pair of one head of one row, as in rope.wgsl.
struct Params { count: u32, heads: u32, half_dim: u32, row_offset: u32, delta: i32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> k: array<f32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;

#include "rope_cos_sin"

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  if (t >= p.count) { return; }
  let i = t % p.half_dim;
  let head_row = t / p.half_dim; // r * heads + h
  let base = (p.row_offset * p.heads + head_row) * 2u * p.half_dim + i;
  let cs = cos_sin(f32(p.delta) * inv_freq[i]);
  let x1 = k[base];
  let x2 = k[base + p.half_dim];
  k[base] = x1 * cs.x - x2 * cs.y;
  k[base + p.half_dim] = x2 * cs.x + x1 * cs.y;
}
