// Hugging Face rotate_half RoPE, in place. One invocation per rotated pair (x[i], x[i + half]) of one
// head of one row: angle = position * inv_freq[i]. Positions are a u32 tensor read as i32 (same bits),
// so a position table may hold negative values (rotating by a negative delta undoes a rotation).
// DELTA: every row rotates by one parameter (re-rotating cached keys when slots move: rotations
// compose, so a key rotated at p becomes the key rotated at p + delta; several re-rotations can then
// share one Batch, which a position table written before the submit could not).
#if DELTA
struct Params { count: u32, heads: u32, half_dim: u32, row_offset: u32, delta: i32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
#else
struct Params { count: u32, heads: u32, half_dim: u32, pos_offset: u32, row_offset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
#endif

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
#if DELTA
  let position = p.delta;
#else
  let position = positions[p.pos_offset + head_row / p.heads];
#endif
  let cs = cos_sin(f32(position) * inv_freq[i]);
  let x1 = x[base];
  let x2 = x[base + p.half_dim];
  x[base] = x1 * cs.x - x2 * cs.y;
  x[base + p.half_dim] = x2 * cs.x + x1 * cs.y;
}
