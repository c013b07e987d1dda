// Embedding lookup, one invocation per output element: out[r, c] = table[id, c] for id < vocab,
// extra[id - vocab, c] for the appended f32 rows (COMP/sentinel), and 0 for any id past both, so a
// bad id never reads out of bounds.
struct Params { count: u32, dim: u32, vocab: u32, extra_rows: u32, ids_offset: u32, table_stride: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
#include "wload"
@group(0) @binding(3) var<storage, read> extra: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * {{WG}}u + lid;
  if (i >= p.count) { return; }
  let r = i / p.dim;
  let c = i % p.dim;
  let id = ids[p.ids_offset + r];
  var v = 0.0;
  if (id < p.vocab) {
    v = w_at(w_row_base(id, p.table_stride) + w_col(c));
  } else if (id - p.vocab < p.extra_rows) {
    v = extra[(id - p.vocab) * p.dim + c];
  }
  out[i] = v;
}
