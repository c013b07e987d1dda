// What the matmul designs (matmul, gemv_coop) share: the parameters, the epilogue bindings, store_out
// (adds bias, the row-gated LoRA term and the accumulated old value before writing) and silu.
struct Params {
  rows: u32,
  n: u32,
  k: u32,
  w_stride: u32,
  x_row_offset: u32,
  out_row_offset: u32,
  flags: u32,
  rank: u32,
  lora_scale: f32,
  n_tiles: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> gate: array<f32>;
@group(0) @binding(5) var<storage, read> lora_u: array<f32>;
@group(0) @binding(6) var<storage, read> lora_b: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

const ACCUMULATE = 1u;
const BIAS = 2u;
const LORA = 4u;
const GATED = 8u;

fn lora_term(r: u32, n: u32) -> f32 {
  var s = 0.0;
  for (var j = 0u; j < p.rank; j++) { s += lora_u[r * p.rank + j] * lora_b[n * p.rank + j]; }
  return gate[r] * p.lora_scale * s;
}

/** out[r, n] = (accumulate ? old : 0) + v + bias + LoRA; r and n must be in range. */
fn store_out(r: u32, n: u32, dot_value: f32) {
  var v = dot_value;
  if ((p.flags & BIAS) != 0u) { v += bias[n]; }
  if ((p.flags & LORA) != 0u && gate[r] != 0.0) { v += lora_term(r, n); }
  let o = (p.out_row_offset + r) * p.n + n;
  if ((p.flags & ACCUMULATE) != 0u) { v += out[o]; }
  out[o] = v;
}

// exp(-|v|) lies in (0, 1], so no intermediate overflows (WGSL leaves f32 overflow undefined):
// sigmoid(v) = 1 / (1 + e) for v >= 0 and e / (1 + e) below.
fn silu(v: f32) -> f32 {
  let e = exp(-abs(v));
  return v * select(e, 1.0, v >= 0.0) / (1.0 + e);
}

/** With GATED (the LoRA-down pass u = X A^T): whether rows [r0, r0 + count) all have gate 0. */
fn rows_gated_off(r0: u32, count: u32) -> bool {
  for (var j = 0u; j < count; j++) {
    if (r0 + j < p.rows && gate[r0 + j] != 0.0) { return false; }
  }
  return true;
}
