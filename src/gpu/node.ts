// WebGPU in Node through Dawn (the npm package `webgpu`). Kept out of the browser bundle: only Node
// entry points (CLI, tests, benchmarks) import this file. Dawn is an optional peer dependency (132 MB
// that browser apps do not need), so a Node user who has not installed it gets a typed error saying how.
import { CcmemError } from '../errors.js';

let instance: GPU | undefined; // module-level on purpose: if Dawn's instance is collected, GPU promises never settle

interface Dawn {
  create: (flags: string[]) => GPU;
  globals: Record<string, unknown>;
}

export async function nodeGpu(flags: string[] = []): Promise<GPU> {
  if (instance) return instance;
  const { create, globals } = await importDawn();
  Object.assign(globalThis, globals);
  instance = create(flags);
  return instance;
}

async function importDawn(): Promise<Dawn> {
  try {
    return (await import('webgpu')) as unknown as Dawn;
  } catch (cause) {
    const missing = (cause as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' && String(cause).includes("'webgpu'");
    const why = missing
      ? 'ccmem needs Dawn to run WebGPU in Node, and the npm package `webgpu` is not installed: run `npm install webgpu`'
      : `Dawn (the npm package \`webgpu\`) could not be loaded: ${String(cause)}`;
    throw new CcmemError('WEBGPU_UNAVAILABLE', why, { cause });
  }
}
