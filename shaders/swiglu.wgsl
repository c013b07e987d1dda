// SwiGLU: out[i] = silu(gate[i]) * up[i]. One invocation per element over a 2-D grid of workgroups.
struct Params { count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// exp(-|v|) lies in (0, 1], so no intermediate overflows (WGSL leaves f32 overflow undefined):
// sigmoid(v) = 1 / (1 + e) for v >= 0 and e / (1 + e) below.
fn silu(v: f32) -> f32 {
  let e = exp(-abs(v));
  return v * select(e, 1.0, v >= 0.0) / (1.0 + e);
}

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  if (i >= p.count) { return; }
  out[i] = silu(gate[i]) * up[i];
}
