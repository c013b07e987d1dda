import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTensorBytes, readWeightIndex, toF32, writeSafetensors } from '../../src/model/safetensors.js';
import {
  DEFAULT_REMOTE_HOST,
  type FileSource,
  hubFolderUrl,
  isUrlOrHubId,
  memorySource,
  openSource,
  type SourceOptions,
} from '../../src/model/source.js';
import { typedError } from '../helpers/checks.js';

const weights = writeSafetensors([
  { name: 'a', dtype: 'F32', shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i) },
  { name: 'b', dtype: 'F16', shape: [7], data: Float32Array.from({ length: 7 }, (_, i) => 1 - i) },
]);
const FILES: Record<string, string | Uint8Array> = {
  'config.json': '{"model_type": "llama"}',
  'bad.json': '{"x": ',
  'model.safetensors': weights,
  'sub/dir/notes.txt': 'héllo',
};

let dir: string;
let server: Server;
let baseUrl: string;
/** Every request the server answered: method, path, Range header, status and body bytes sent. */
const log: { method: string; path: string; range?: string; status: number; sent: number }[] = [];
/** When false the server ignores Range headers and answers 200 with the whole file. */
let honourRanges = true;
/** When false HEAD answers carry no Content-Length. */
let headLength = true;

/** A static file server over `dir` with HEAD, single-range GET (206/416) and 404. */
function serve(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const range = req.headers.range;
  const answer = (status: number, headers: Record<string, string | number>, body?: Uint8Array) => {
    const sent = req.method === 'HEAD' || !body ? 0 : body.length;
    log.push({ method: req.method ?? '', path, range, status, sent });
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (path === '/error/config.json') return answer(500, {});
  let data: Uint8Array;
  try {
    // /model/ is a plain folder URL; /hub/ a Hugging Face mirror holding org/name at revision v1 only
    data = readFileSync(join(dir, path.replace(/^\/model\//, '').replace(/^\/hub\/org\/name\/resolve\/v1\//, '')));
  } catch {
    return answer(404, {}, new TextEncoder().encode('not found'));
  }
  const m = honourRanges && range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
  if (!m) return answer(200, req.method === 'HEAD' && !headLength ? {} : { 'content-length': data.length }, data);
  const start = Number(m[1]);
  const end = Math.min(Number(m[2]), data.length - 1);
  if (start >= data.length) return answer(416, { 'content-range': `bytes */${data.length}` });
  const body = data.subarray(start, end + 1);
  answer(206, { 'content-length': body.length, 'content-range': `bytes ${start}-${end}/${data.length}` }, body);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccmem-source-'));
  for (const [name, data] of Object.entries(FILES)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  server = createServer(serve);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((ok) => server.close(ok));
  rmSync(dir, { recursive: true, force: true });
});

const kinds: [string, (o?: SourceOptions) => FileSource][] = [
  ['local folder', (o) => openSource(dir, o)],
  ['http folder', (o) => openSource(`${baseUrl}/model/`, o)],
  ['memory', () => memorySource(FILES)],
];

describe.each(kinds)('%s source', (_, open) => {
  it('answers exists, size, text and json', async () => {
    const src = open();
    expect(await src.exists('config.json')).toBe(true);
    expect(await src.exists('sub/dir/notes.txt')).toBe(true);
    expect(await src.exists('nope.json')).toBe(false);
    expect(await src.size('model.safetensors')).toBe(weights.length);
    expect(await src.text('sub/dir/notes.txt')).toBe('héllo');
    expect(await src.json('config.json')).toEqual({ model_type: 'llama' });
  });

  it('reads exact byte ranges', async () => {
    const src = open();
    expect(await src.read('model.safetensors', 10, 20)).toEqual(weights.subarray(10, 30));
    expect(await src.read('model.safetensors', weights.length - 3, 3)).toEqual(weights.subarray(weights.length - 3));
    expect(await src.read('model.safetensors', 5, 0)).toEqual(new Uint8Array(0));
  });

  it('streams tensors through readWeightIndex', async () => {
    const src = open();
    const index = await readWeightIndex(src);
    expect([...toF32(index.get('a')!, await readTensorBytes(src, index.get('a')!))]).toEqual([...Array(15).keys()]);
    expect([...toF32(index.get('b')!, await readTensorBytes(src, index.get('b')!))]).toEqual([
      1, 0, -1, -2, -3, -4, -5,
    ]);
  });

  it('names the file when it is missing, truncated or not JSON', async () => {
    const src = open();
    for (const call of [() => src.size('nope.bin'), () => src.read('nope.bin', 0, 4), () => src.text('nope.bin')]) {
      const e = await typedError(call());
      expect(e.code).toBe('MODEL_FORMAT');
      expect(e.message).toMatch(/missing file nope.bin/);
    }
    const e = await typedError(src.read('model.safetensors', weights.length - 2, 4));
    expect(e.code).toBe('MODEL_FORMAT');
    expect(e.message).toMatch(/model.safetensors: truncated/);
    const past = await typedError(src.read('config.json', 1000, 4));
    expect(past.message).toMatch(/config.json: truncated/);
    const bad = await typedError(src.json('bad.json'));
    expect(bad.code).toBe('MODEL_FORMAT');
    expect(bad.message).toMatch(/bad.json: invalid JSON/);
  });

  it('rejects file names that escape the folder and invalid ranges', async () => {
    const src = open();
    expect((await typedError(src.read('../secret', 0, 1))).message).toMatch(/invalid file name "..\/secret"/);
    expect((await typedError(src.read('config.json', -1, 1))).code).toBe('INVALID_INPUT');
  });
});

describe('local source', () => {
  it('reports cumulative progress per file', async () => {
    const seen: { file: string; loaded: number; total: number }[] = [];
    const src = openSource(dir, { onProgress: (p) => seen.push(p) });
    await src.read('model.safetensors', 0, 8);
    await src.read('model.safetensors', 8, 16);
    expect(seen).toEqual([
      { file: 'model.safetensors', loaded: 8, total: weights.length },
      { file: 'model.safetensors', loaded: 24, total: weights.length },
    ]);
  });
});

describe('http source', () => {
  it('sends Range requests and transfers only the requested bytes', async () => {
    log.length = 0;
    const src = openSource(`${baseUrl}/model`);
    await src.read('model.safetensors', 100, 50);
    expect(log).toEqual([
      { method: 'GET', path: '/model/model.safetensors', range: 'bytes=100-149', status: 206, sent: 50 },
    ]);
  });

  it('slices a 200 answer from a server that ignores Range', async () => {
    honourRanges = false;
    try {
      const src = openSource(`${baseUrl}/model`);
      expect(await src.read('model.safetensors', 33, 17)).toEqual(weights.subarray(33, 50));
      const e = await typedError(src.read('model.safetensors', weights.length - 1, 2));
      expect(e.message).toMatch(/truncated/);
    } finally {
      honourRanges = true;
    }
  });

  it('learns the size from Content-Range when HEAD gives no Content-Length', async () => {
    headLength = false;
    log.length = 0;
    try {
      expect(await openSource(`${baseUrl}/model`).size('model.safetensors')).toBe(weights.length);
      expect(log.map((r) => [r.method, r.range, r.status])).toEqual([
        ['HEAD', undefined, 200],
        ['GET', 'bytes=0-0', 206],
      ]);
    } finally {
      headLength = true;
    }
  });

  it('reports progress against the file size', async () => {
    const seen: number[] = [];
    const src = openSource(`${baseUrl}/model`, { onProgress: (p) => seen.push(p.loaded / p.total) });
    await src.size('model.safetensors');
    await src.read('model.safetensors', 0, weights.length);
    expect(seen.at(-1)).toBe(1);
  });

  it('turns server and network failures into FETCH errors', async () => {
    const e = await typedError(openSource(`${baseUrl}/error`).text('config.json'));
    expect(e.code).toBe('FETCH');
    expect(e.message).toMatch(/HTTP 500/);
    const closed = createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((ok) => closed.close(ok));
    const refused = await typedError(openSource(`http://127.0.0.1:${port}/m`).exists('config.json'));
    expect(refused.code).toBe('FETCH');
    expect(refused.message).toContain(`http://127.0.0.1:${port}/m/config.json`);
  });

  it('maps hub ids to huggingface.co resolve URLs', async () => {
    const urls: string[] = [];
    const fetchSpy = (async (input: RequestInfo | URL) => {
      urls.push(String(input));
      return new Response('{}', { status: 200, headers: { 'content-length': '2' } });
    }) as typeof fetch;
    await openSource('HuggingFaceTB/SmolLM2-135M-Instruct', { fetch: fetchSpy }).json('config.json');
    await openSource('org/name', { fetch: fetchSpy, revision: 'refs/pr/1' }).text('sub dir/x.json');
    expect(urls).toEqual([
      'https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/config.json',
      'https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/sub%20dir/x.json',
    ]);
  });
});

describe('hub ids on another host (issue 11, item 10)', () => {
  it('reads org/name at a revision from a mirror (remoteHost), ranges included', async () => {
    log.length = 0;
    const src = openSource('org/name', { remoteHost: `${baseUrl}/hub/`, revision: 'v1' });
    expect(src.id).toBe('org/name');
    expect(await src.json('config.json')).toEqual({ model_type: 'llama' });
    expect(await src.read('model.safetensors', 10, 20)).toEqual(weights.subarray(10, 30));
    expect(log.map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/hub/org/name/resolve/v1/config.json', 200],
      ['GET', '/hub/org/name/resolve/v1/model.safetensors', 206],
    ]);
    expect(hubFolderUrl('org/name', { remoteHost: 'https://hf-mirror.com', revision: 'refs/pr/2' })).toBe(
      'https://hf-mirror.com/org/name/resolve/refs%2Fpr%2F2',
    );
    expect(hubFolderUrl('org/name')).toBe(`${DEFAULT_REMOTE_HOST}/org/name/resolve/main`);
  });

  it('a revision the mirror lacks is a missing file naming the URL', async () => {
    const e = await typedError(openSource('org/name', { remoteHost: `${baseUrl}/hub` }).json('config.json'));
    expect(e.code).toBe('MODEL_FORMAT');
    expect(e.message).toContain(`${baseUrl}/hub/org/name/resolve/main/config.json`);
  });

  it('refuses a host that is not an http(s) URL, an empty revision, and a revision of a URL or folder', async () => {
    const cases: [() => unknown, RegExp][] = [
      [() => openSource('org/name', { remoteHost: 'hf-mirror.com' }), /hub host must be an http\(s\) URL/],
      [() => openSource('org/name', { revision: '' }), /revision must be a branch, tag or commit/],
      [() => openSource(dir, { revision: 'v1' }), /applies to hub ids/],
      [() => openSource(`${baseUrl}/model`, { revision: 'v1' }), /applies to hub ids/],
    ];
    for (const [call, message] of cases) {
      const e = await typedError(call);
      expect(e.code).toBe('INVALID_INPUT');
      expect(e.message).toMatch(message);
    }
  });
});

describe('local folder that is not there', () => {
  it('says so rather than naming its first file', async () => {
    const e = await typedError(openSource(join(dir, 'no-such-model')).json('config.json'));
    expect(e.code).toBe('MODEL_FORMAT');
    expect(e.message).toBe(`${join(dir, 'no-such-model')}: no such folder`);
    expect((await typedError(openSource(dir).text('nope.json'))).message).toBe(`${dir}: missing file nope.json`);
  });
});

describe('isUrlOrHubId', () => {
  it('tells URLs and hub ids from local paths', () => {
    for (const s of ['https://example.com/m', 'HTTP://x/y', 'meta-llama/Llama-3.2-1B', 'Qwen/Qwen2.5-0.5B-Instruct']) {
      expect(isUrlOrHubId(s), s).toBe(true);
    }
    for (const s of ['/abs/path', './org/name', '../shared/fixtures', 'a/b/c', 'model', 'C:\\models\\x', '.hidden/x']) {
      expect(isUrlOrHubId(s), s).toBe(false);
    }
  });
});

describe('HTTP source behind a single-page-app fallback', () => {
  it('treats an HTML answer as a missing file', async () => {
    const fetchFn = (async () =>
      new Response('<!doctype html><title>app</title>', {
        status: 200,
        headers: { 'content-type': 'text/html; charset=utf-8', 'content-length': '33' },
      })) as unknown as typeof fetch;
    const src = openSource('http://127.0.0.1:9/model', { fetch: fetchFn });
    expect(await src.exists('chat_template.jinja')).toBe(false);
    await expect(src.text('tokenizer_config.json')).rejects.toThrow(/HTML page/);
  });
});

describe('a local folder shaped like a hub id', () => {
  // `ccmem chat --model models/chat-tiny` must read the committed folder, not fetch hub id models/chat-tiny
  it('is read from disk when it exists, and is a hub id when it does not', async () => {
    const top = mkdtempSync(join(process.cwd(), 'hubshape-'));
    const spec = `${top.slice(process.cwd().length + 1)}/model`;
    try {
      mkdirSync(join(top, 'model'));
      writeFileSync(join(top, 'model', 'config.json'), '{"ok": true}');
      expect(isUrlOrHubId(spec)).toBe(false);
      expect(await openSource(spec).json('config.json')).toEqual({ ok: true });
      expect(isUrlOrHubId(`${spec}-missing`)).toBe(true);
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
});
