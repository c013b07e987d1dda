// The kernels' WGSL by name: shaders/NAME.wgsl, generated into wgsl.gen.ts by scripts/gen.mjs. Kernels
// name their own shader source here and hand it to Gpu.pipeline, so the GPU layer needs no shader table.
import type { ShaderSource } from '../gpu/device.js';
import { WGSL } from './wgsl.gen.js';

const sources = new Map<string, ShaderSource>();

/** shaders/NAME.wgsl, whose `#include`s name the other files of shaders/. Made once per name. */
export function shader(name: string): ShaderSource {
  let source = sources.get(name);
  if (!source) {
    const code = WGSL[name];
    if (code === undefined) throw new Error(`unknown shader "${name}"`);
    source = { name, code, snippets: WGSL };
    sources.set(name, source);
  }
  return source;
}
