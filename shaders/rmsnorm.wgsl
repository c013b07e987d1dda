// RMSNorm: y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight. One workgroup per row.
struct Params { rows: u32, dim: u32, eps: f32, x_row_offset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let xbase = (row + p.x_row_offset) * p.dim;
  var acc = 0.0;
  for (var i = lid; i < p.dim; i += {{WG}}u) {
    let v = x[xbase + i];
    acc += v * v;
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let scale = inverseSqrt(partial[0] / f32(p.dim) + p.eps);
  let ybase = row * p.dim;
  for (var i = lid; i < p.dim; i += {{WG}}u) {
    y[ybase + i] = x[xbase + i] * scale * weight[i];
  }
}
