// Vite serves pages and module workers that import the engine straight from src/ (TypeScript, no build
// step). The browser tests start it programmatically (test/helpers/browser.ts). ../shared/fixtures, the
// real model files beside the checkout, is served under /fixtures/ so that pages and workers fetch them
// over HTTP as a deployed app fetches its model; models that tests convert on the fly are written to
// .tmp/browser-models and served under /models/ the same way.
import { createReadStream, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { parseRange } from './test/helpers/http-range.js';

const repoRoot = path.dirname(fileURLToPath(import.meta.url));
const fixturesDir = path.resolve(repoRoot, '../shared/fixtures');
/** Where browser tests write converted model folders (gitignored); served under /models/. */
export const browserModelsDir = path.join(repoRoot, '.tmp/browser-models');

const CONTENT_TYPES: Record<string, string> = { '.json': 'application/json', '.md': 'text/markdown' };

/**
 * GET/HEAD <mount>/<file> from `dir`, with single byte ranges (the engine's HTTP model source reads
 * tensors by range, as from any static host). Paths outside that folder are refused.
 */
function serveFolder(mount: string, dir: string): Plugin {
  return {
    name: `ccmem-serve${mount}`,
    configureServer(server) {
      server.middlewares.use(mount, (req, res, next) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return next();
        const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
        const file = path.join(dir, pathname);
        if (!file.startsWith(dir + path.sep)) return next();
        let size: number;
        try {
          const st = statSync(file);
          if (!st.isFile()) return next();
          size = st.size;
        } catch {
          return next();
        }
        const range = parseRange(req.headers.range, size);
        res.setHeader('Accept-Ranges', 'bytes');
        res.setHeader('Cache-Control', 'no-store');
        if (range === 'unsatisfiable') {
          res.statusCode = 416;
          res.setHeader('Content-Range', `bytes */${size}`);
          return res.end();
        }
        res.setHeader('Content-Type', CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream');
        if (range) {
          res.statusCode = 206;
          res.setHeader('Content-Range', `bytes ${range[0]}-${range[1]}/${size}`);
        }
        res.setHeader('Content-Length', range ? range[1] - range[0] + 1 : size);
        if (req.method === 'HEAD') return res.end();
        const stream = range ? createReadStream(file, { start: range[0], end: range[1] }) : createReadStream(file);
        stream.on('error', next).pipe(res);
      });
    },
  };
}

export default defineConfig({
  root: repoRoot,
  appType: 'mpa', // unknown paths are 404s, not a fallback index.html
  plugins: [serveFolder('/fixtures', fixturesDir), serveFolder('/models', browserModelsDir)],
  // Pre-bundle the dependencies of every test page and worker before the first request, so that a
  // late discovery never reloads a page in the middle of a test.
  optimizeDeps: { entries: ['test/browser/**/*.html', 'test/browser/**/*.ts'] },
});
