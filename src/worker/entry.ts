// The engine's module worker: `new Worker(new URL('./entry.js', import.meta.url), { type: 'module' })`, or
// `import 'ccmem/worker'` as the first line of an app's own worker module. It owns the GPU device, the
// model and the chats, and serves them to createEngine() (src/client) over Comlink.
// The published .d.ts files name WebGPU types (GPUBuffer, ...); @webgpu/types is a dependency for them.
/// <reference types="@webgpu/types" preserve="true" />
import * as Comlink from 'comlink';
import { WorkerEngine } from './engine.js';
import { loadGpuCore } from './gpu-core.js';
import { registerErrorTransfer } from './protocol.js';

registerErrorTransfer();
Comlink.expose(new WorkerEngine((init, onProgress) => loadGpuCore(init, onProgress)));
