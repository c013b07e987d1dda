// out[(out_row_offset + r) * N + n] = (accumulate ? old : 0) + sum_k x[(x_row_offset + r) * K + k] * W[n, k]
//   + (bias ? bias[n] : 0), with W held as ggml blocks of 32 weights and dequantized in the loop (f32
// accumulation): Q8_0 (8 words of four int8 per block, value q * d) or, with Q4, Q4_0 (4 words of eight
// nibbles per block: byte j's low nibble is element j, its high nibble element j + 16; value (q - 8) * d).
// Block (n, b) has its words at (n * p.w_stride + b) * WORDS in `qs` (p.w_stride = blocks per row) and its
// scale d, an f16, at the same index in `scales` (two per u32, read with unpack2x16float: no shader-f16).
// Like matmul.wgsl, each invocation computes a tile of RT rows x NT outputs without barriers; one
// dequantized block feeds RT rows and one block of x feeds NT outputs. With SWIGLU, W is [2N, K] (gate
// rows, then up rows) and out = silu(x . gate) * (x . up).
#include "matmul_out"
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qs: array<u32>;
@group(0) @binding(8) var<storage, read> scales: array<u32>;
const RT = {{RT}}u;
const NT = {{NT}}u;
const NW = NT * {{W_ROWS}}u;
#if Q4
const WORDS = 4u;
#else
const WORDS = 8u;
#endif

fn block_scale(s: u32) -> f32 { return unpack2x16float(scales[s >> 1u])[s & 1u]; }

/** The 32 weights of the block whose words start at q, as 8 vec4 (elements 4i .. 4i + 3 in v[i]). */
fn dequant_block(q: u32) -> array<vec4<f32>, 8> {
  var v: array<vec4<f32>, 8>;
#if Q4
  for (var i = 0u; i < 4u; i++) {
    let wd = qs[q + i];
    let bytes = vec4<u32>(wd, wd >> 8u, wd >> 16u, wd >> 24u);
    v[i] = vec4<f32>(bytes & vec4<u32>(15u)) - 8.0;
    v[i + 4u] = vec4<f32>((bytes >> vec4<u32>(4u)) & vec4<u32>(15u)) - 8.0;
  }
#else
  for (var i = 0u; i < 8u; i++) {
    let wd = qs[q + i];
    // each byte moved to the top, then an arithmetic shift: the sign-extended int8
    let top = vec4<u32>(wd << 24u, wd << 16u, wd << 8u, wd);
    v[i] = vec4<f32>(bitcast<vec4<i32>>(top) >> vec4<u32>(24u));
  }
#endif
  return v;
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // output tiles along x (folded into z past the per-dimension limit), row tiles along y
  let t = (wid.z * nwg.x + wid.x) * {{WG}}u + lid;
  if (t >= p.n_tiles) { return; }
  let r0 = wid.y * RT;
  let nb = p.w_stride;

  var xb: array<u32, RT>;
  for (var j = 0u; j < RT; j++) { xb[j] = (p.x_row_offset + min(r0 + j, p.rows - 1u)) * p.k / 4u; }
  var wrow: array<u32, NW>;
  for (var i = 0u; i < NW; i++) { wrow[i] = min(t * NT + i % NT, p.n - 1u) + (i / NT) * p.n; }
  var acc: array<f32, RT * NW>;
  for (var b = 0u; b < nb; b++) {
    var xv: array<vec4<f32>, RT * 8u>;
    for (var j = 0u; j < RT; j++) {
      for (var i = 0u; i < 8u; i++) { xv[j * 8u + i] = x[xb[j] + b * 8u + i]; }
    }
    for (var o = 0u; o < NW; o++) {
      let s = wrow[o] * nb + b;
      let d = block_scale(s);
      let wv = dequant_block(s * WORDS);
      for (var j = 0u; j < RT; j++) {
        var sum = 0.0;
        for (var i = 0u; i < 8u; i++) { sum += dot(xv[j * 8u + i], wv[i]); }
        acc[j * NW + o] += d * sum;
      }
    }
  }

  for (var j = 0u; j < RT; j++) {
    let r = r0 + j;
    for (var i = 0u; i < NT; i++) {
      let n = t * NT + i;
      if (r >= p.rows || n >= p.n) { continue; }
#if SWIGLU
      store_out(r, n, silu(acc[j * NW + i]) * acc[j * NW + NT + i]);
#else
      store_out(r, n, acc[j * NW + i]);
#endif
    }
  }
}
