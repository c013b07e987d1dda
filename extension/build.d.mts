/** Writes the unpacked extension into `outDir` (default extension/dist, replaced) and returns that folder. */
export function buildExtension(outDir?: string): Promise<string>;
