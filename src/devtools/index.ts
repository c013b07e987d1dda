// The `ccmem/devtools` entry: the memory-usage panel element and the global devtools hook.
// The published .d.ts files name WebGPU types (GPUBuffer, ...); @webgpu/types is a dependency for them.
/// <reference types="@webgpu/types" preserve="true" />
export { formatBytes } from './chart.js';
export {
  type CcmemDevtoolsHook,
  HOOK_NAME,
  HOOK_VERSION,
  type HookEvent,
  type HookListener,
  installHook,
  publishSample,
  sanitizeEvent,
} from './hook.js';
export { CcmMemoryPanel, fullContextEquivalent, gpuBands, PANEL_TAG } from './panel.js';
export { type MemorySample, sanitizeSample } from './stats.js';
