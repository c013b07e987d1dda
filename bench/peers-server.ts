// A static file server for the browser engines of the peers benchmark: the production build of
// bench/browser/, the model files and wllama's assets, each folder under a URL prefix. Every answer carries
// COOP/COEP (wllama's threads need crossOriginIsolated) and single byte ranges are honoured (ccmem's HTTP
// model source reads each tensor by range, as from any static host).
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { parseRange } from '../test/helpers/http-range.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

export interface BenchServer {
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `mounts` (URL prefix like '/model/' -> folder); the longest matching prefix wins. */
export async function startBenchServer(mounts: Record<string, string>): Promise<BenchServer> {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const prefix = prefixes.find((p) => path.startsWith(p));
    const root = prefix === undefined ? undefined : resolve(mounts[prefix]!);
    const file = root && join(root, path.slice(prefix!.length) || 'index.html');
    let size = -1;
    try {
      const st = file?.startsWith(root + sep) ? statSync(file) : undefined;
      if (st?.isFile()) size = st.size;
    } catch {
      // a missing file is a 404 below
    }
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    res.setHeader('Cache-Control', 'no-store');
    if (!file || size < 0 || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const range = parseRange(req.headers.range, size);
    res.setHeader('Accept-Ranges', 'bytes');
    if (range === 'unsatisfiable') {
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${size}`);
      res.end();
      return;
    }
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.setHeader('Content-Length', range ? range[1] - range[0] + 1 : size);
    if (range) {
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${range[0]}-${range[1]}/${size}`);
    }
    if (req.method === 'HEAD') res.end();
    else createReadStream(file, range ? { start: range[0], end: range[1] } : {}).pipe(res);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
