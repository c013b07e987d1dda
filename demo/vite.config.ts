// The chat demo as its own Vite app: `vite --config demo/vite.config.ts` serves it at /, and
// `vite build --config demo/vite.config.ts` writes a static site to demo/dist/. public/ (the embedded
// model that scripts/demo-model.mjs writes into public/models/) is served and copied beside the page.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const demoDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.dirname(demoDir);

export default defineConfig({
  root: demoDir,
  // unknown paths are 404s: the engine probes optional model files (a chat template, say), and an
  // index.html fallback would be taken for one
  appType: 'mpa',
  publicDir: path.join(repoRoot, 'public'),
  build: { outDir: path.join(demoDir, 'dist'), emptyOutDir: true, target: 'es2022' },
  // the engine's worker is a module worker that imports shared chunks
  worker: { format: 'es' },
});
