// Shared helpers for GPU tests: one device per test file, the weight formats this adapter can run,
// seeded random data and tolerance checks.
import { expect } from 'vitest';
import { acquireGpu, type Gpu } from '../../src/gpu/device.js';
import { nodeGpu } from '../../src/gpu/node.js';
import type { WeightFormat } from '../../src/gpu/tensor.js';
import { mulberry32 } from '../../src/util/random.js';

let gpu: Promise<Gpu> | undefined;

/** The test device. CCMEM_EXPECT_F16 (set by scripts/test.mjs) pins which f16 path this run covers. */
export function testGpu(): Promise<Gpu> {
  gpu ??= (async () => {
    const g = await acquireGpu({ gpu: await nodeGpu() });
    const expected = process.env.CCMEM_EXPECT_F16;
    if (expected !== undefined && g.features.f16 !== (expected === '1')) {
      throw new Error(`expected shader-f16=${expected} on ${g.adapterName}, got ${g.features.f16}`);
    }
    return g;
  })();
  return gpu;
}

/** Every weight format this adapter runs: f16 packed in u32 always, native f16 where shader-f16 exists. */
export function weightFormats(g: Gpu): WeightFormat[] {
  return g.features.f16 ? ['f32', 'f16p', 'f16'] : ['f32', 'f16p'];
}

/** Seeded generator (mulberry32) so failures reproduce from the printed seed. */
export const rng = mulberry32;

/** Uniform values in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** |a - e| <= atol + rtol * |e| elementwise, reporting the worst index on failure. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}
