// Attention, pass 2 of 2: merges the per-split partials of attention.wgsl into the output. One
// invocation per output element (query, head, d). A query that saw no key at all outputs zero.
struct Params { queries: u32, heads: u32, head_dim: u32, splits: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scratch: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  if (i >= p.queries * p.heads * p.head_dim) { return; }
  let d = i % p.head_dim;
  let h = (i / p.head_dim) % p.heads;
  let t = i / (p.head_dim * p.heads);
  let item_size = p.head_dim + 2u;
  // Partial (t, s, h) sits at item ((t * splits + s) * heads + h), as written by pass 1.
  let first = t * p.splits * p.heads + h;
  let step = p.heads * item_size;
  var m = -3.0e38;
  for (var s = 0u; s < p.splits; s++) {
    let b = (first * item_size) + s * step;
    if (scratch[b + 1u] > 0.0) { m = max(m, scratch[b]); }
  }
  var l = 0.0;
  var o = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    let b = (first * item_size) + s * step;
    let ls = scratch[b + 1u];
    if (ls > 0.0) {
      let c = exp(scratch[b] - m);
      l += ls * c;
      o += scratch[b + 2u + d] * c;
    }
  }
  out[i] = select(0.0, o / l, l > 0.0);
}
