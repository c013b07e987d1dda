// cos and sin of a RoPE angle, computed here rather than with the builtins: WGSL only bounds their
// error on [-pi, pi] (SwiftShader's are off by ~1e-4 even there, some GPUs far worse outside), and
// angles reach ~1e5. Cody-Waite reduction by pi/2 (split in three parts whose products with k stay
// exact for |k| < 2^19), then Taylor polynomials on [-pi/4, pi/4] (truncation error < 2e-9).
// Negative angles work too: round() is symmetric and i32(k) & 3 is the two's-complement quadrant.
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
