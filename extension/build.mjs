// Builds the unpacked Chrome extension: node extension/build.mjs [OUT_DIR] (default extension/dist).
// The pages are ES modules; content scripts cannot be, so each script is its own IIFE bundle.
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCRIPTS = { hook: 'hook-main.ts', relay: 'relay.ts', background: 'background.ts' };

/** Writes the extension into `outDir` (replacing it) and returns that folder. */
export async function buildExtension(outDir = path.join(here, 'dist')) {
  const common = { root: here, configFile: false, logLevel: 'warn', publicDir: false };
  await build({
    ...common,
    base: './',
    build: {
      outDir,
      emptyOutDir: true,
      modulePreload: { polyfill: false },
      rolldownOptions: { input: { panel: path.join(here, 'panel.html'), devtools: path.join(here, 'devtools.html') } },
    },
  });
  for (const [name, entry] of Object.entries(SCRIPTS)) {
    await build({
      ...common,
      build: {
        outDir,
        emptyOutDir: false,
        lib: { entry: path.join(here, entry), formats: ['iife'], name: `ccmem_${name}`, fileName: () => `${name}.js` },
      },
    });
  }
  copyFileSync(path.join(here, 'manifest.json'), path.join(outDir, 'manifest.json'));
  return outDir;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = await buildExtension(process.argv[2] && path.resolve(process.argv[2]));
  console.log(`extension built in ${out} (chrome://extensions, Developer mode, Load unpacked)`);
}
