// WebGPU in Node through Dawn (the npm package `webgpu`). Kept out of the browser bundle: only Node
// entry points (CLI, tests, benchmarks) import this file.
let instance: GPU | undefined; // module-level on purpose: if Dawn's instance is collected, GPU promises never settle

export async function nodeGpu(flags: string[] = []): Promise<GPU> {
  if (instance) return instance;
  const { create, globals } = (await import('webgpu')) as unknown as {
    create: (flags: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  Object.assign(globalThis, globals);
  instance = create(flags);
  return instance;
}
