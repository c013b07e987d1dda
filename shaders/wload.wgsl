// Weight storage in one of three formats, read as f32. Include after declaring W_BINDING. F16: native
// array<f16> (shader-f16). F16P: two halves packed per u32 (no shader-f16 needed). Otherwise f32. Rows of
// the f16 formats have an even stride, so pairs never straddle rows.
// Element (row, k) lies at w_row_base(row, stride) + w_col(k), in elements; the 8-element chunk c of a row
// at w_row_base(row, stride) / 8 + c * W_CHUNK_STEP, in 16-byte vectors. With BLOCKED (Tensor.blocked)
// rows are interleaved in 32-row blocks, 8 halves at a time; otherwise row-major.
// With VEC8 the weights are read eight at a time, w8(c) = W[8c .. 8c + 8), as one 16-byte load for both
// f16 formats (the bytes are the same) or two for f32; the caller guarantees 8-aligned rows and lengths.
#if BLOCKED
const W_CHUNK_STEP = 32u;
fn w_row_base(row: u32, stride: u32) -> u32 { return (row >> 5u) * stride * 32u + (row & 31u) * 8u; }
fn w_col(k: u32) -> u32 { return (k >> 3u) * 256u + (k & 7u); }
#else
const W_CHUNK_STEP = 1u;
fn w_row_base(row: u32, stride: u32) -> u32 { return row * stride; }
fn w_col(k: u32) -> u32 { return k; }
#endif

#if VEC8
struct W8 { lo: vec4<f32>, hi: vec4<f32> }
#if HALF
@group(0) @binding({{W_BINDING}}) var<storage, read> w: array<vec4<u32>>;
fn w8(c: u32) -> W8 {
  let v = w[c];
  return W8(
    vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)),
    vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w)),
  );
}
#else
@group(0) @binding({{W_BINDING}}) var<storage, read> w: array<vec4<f32>>;
fn w8(c: u32) -> W8 { return W8(w[2u * c], w[2u * c + 1u]); }
#endif
#else
#if F16
@group(0) @binding({{W_BINDING}}) var<storage, read> w: array<f16>;
fn w_at(i: u32) -> f32 { return f32(w[i]); }
#else
#if F16P
@group(0) @binding({{W_BINDING}}) var<storage, read> w: array<u32>;
fn w_at(i: u32) -> f32 { return unpack2x16float(w[i >> 1u])[i & 1u]; }
#else
@group(0) @binding({{W_BINDING}}) var<storage, read> w: array<f32>;
fn w_at(i: u32) -> f32 { return w[i]; }
#endif
#endif

// W[i], W[i + 1]. i must be even for f16p (rows have an even stride), so the pair is one u32.
fn w_pair(i: u32) -> vec2<f32> {
#if F16P
  return unpack2x16float(w[i >> 1u]);
#else
  return vec2<f32>(w_at(i), w_at(i + 1u));
#endif
}
#endif
