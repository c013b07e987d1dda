// Running-mean merge of cache rows, K and V of one layer: dst = (1 - weight) * dst + weight * src over
// `count` contiguous f32 elements. src and dst ranges do not overlap, so one in-place pass is exact.
// One invocation per element.
struct Params { count: u32, dst_base: u32, src_base: u32, weight: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  if (t >= p.count) { return; }
  let keep = 1.0 - p.weight;
  k[p.dst_base + t] = keep * k[p.dst_base + t] + p.weight * k[p.src_base + t];
  v[p.dst_base + t] = keep * v[p.dst_base + t] + p.weight * v[p.src_base + t];
}
