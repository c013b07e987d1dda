// One 8-wide step of shaders/matmul.wgsl, included once per unrolled step: for chunk `cu`,
// acc[j, i] += x[tile row j, 8cu .. 8cu + 8) . W[W row i, 8cu .. 8cu + 8).
var xlo: array<vec4<f32>, RT>;
var xhi: array<vec4<f32>, RT>;
for (var j = 0u; j < RT; j++) {
  let b = xb[j] / 4u + 2u * cu;
  xlo[j] = x[b];
  xhi[j] = x[b + 1u];
}
for (var i = 0u; i < NW; i++) {
  let wv = w8(wb[i] + cu * W_CHUNK_STEP);
  for (var j = 0u; j < RT; j++) { acc[j * NW + i] += dot(xlo[j], wv.lo) + dot(xhi[j], wv.hi); }
}
