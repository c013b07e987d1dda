// Hugging Face rotate_half RoPE, in place. One invocation per rotated pair (x[i], x[i + half]) of one
// head of one row: angle = position * inv_freq[i].
struct Params { count: u32, heads: u32, half_dim: u32, pos_offset: u32, row_offset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;

// cos and sin of the angle, computed here rather than with the builtins: WGSL only bounds their error
// on [-pi, pi] (SwiftShader's are off by ~1e-4 even there, some GPUs far worse outside), and angles
// reach ~1e5. Cody-Waite reduction by pi/2 (split in three parts whose products with k stay exact for
// k < 2^19), then Taylor polynomials on [-pi/4, pi/4] (truncation error < 2e-9).
fn cos_sin(a: f32) -> vec2<f32> {
  let k = round(a * 0.6366197723675814);
  let t = ((a - k * 1.5625) - k * 0.00830078125) + k * 4.454455103442001e-6;
  let t2 = t * t;
  let s = t * (1.0 + t2 * (-1.0 / 6.0 + t2 * (1.0 / 120.0 + t2 * (-1.0 / 5040.0 + t2 * (1.0 / 362880.0)))));
  let c = 1.0 + t2 * (-0.5 + t2 * (1.0 / 24.0 + t2 * (-1.0 / 720.0 + t2 * (1.0 / 40320.0 + t2 * (-1.0 / 3628800.0)))));
  switch (i32(k) & 3) {
    case 0: { return vec2<f32>(c, s); }
    case 1: { return vec2<f32>(-s, c); }
    case 2: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}

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
  let r = head_row / p.heads;
  let base = (p.row_offset * p.heads + head_row) * 2u * p.half_dim + i;
  let cs = cos_sin(f32(positions[p.pos_offset + r]) * inv_freq[i]);
  let x1 = x[base];
  let x2 = x[base + p.half_dim];
  x[base] = x1 * cs.x - x2 * cs.y;
  x[base + p.half_dim] = x2 * cs.x + x1 * cs.y;
}
