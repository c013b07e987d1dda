// The dev server of the browser tests serves ../shared/fixtures under /fixtures/ (vite.config.ts) with
// byte ranges, as the engine's HTTP model source expects from a static host.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserEnv, startBrowserEnv } from '../helpers/browser.js';

const BIN = 'stories260K/stories260K.bin';
const bin = readFileSync(path.resolve('../shared/fixtures', BIN));

describe('fixtures over HTTP', () => {
  let env: BrowserEnv | undefined;
  beforeAll(async () => {
    env = await startBrowserEnv();
  });
  afterAll(() => env?.close());

  const get = (file: string, init?: RequestInit) => fetch(new URL(`/fixtures/${file}`, env!.baseUrl), init);
  const bytes = async (res: Response) => new Uint8Array(await res.arrayBuffer());

  it('serves whole files and HEAD', async () => {
    const whole = await get(BIN);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await bytes(whole)).equals(bin)).toBe(true);
    const head = await get(BIN, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(bin.length));
  });

  it('serves single byte ranges and refuses ranges past the end', async () => {
    const cases: [string, number, number][] = [
      ['bytes=28-1051', 28, 1052],
      ['bytes=-16', bin.length - 16, bin.length],
      [`bytes=${bin.length - 10}-`, bin.length - 10, bin.length],
      [`bytes=${bin.length - 4}-${bin.length + 100}`, bin.length - 4, bin.length],
    ];
    for (const [range, start, end] of cases) {
      const res = await get(BIN, { headers: { Range: range } });
      expect(res.status, range).toBe(206);
      expect(res.headers.get('content-range'), range).toBe(`bytes ${start}-${end - 1}/${bin.length}`);
      expect(Buffer.from(await bytes(res)).equals(bin.subarray(start, end)), range).toBe(true);
    }
    const past = await get(BIN, { headers: { Range: `bytes=${bin.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${bin.length}`);
  });

  it('serves nothing outside the fixtures folder', async () => {
    for (const file of ['..%2fREADME.md', 'stories260K/..%2f..%2fREADME.md', 'missing.bin', 'stories260K']) {
      const res = await get(file);
      expect([403, 404], file).toContain(res.status);
    }
  });

  it('a page fetches a range from its own origin', async () => {
    const header = await env!.withPage('/test/browser/blank.html', (page) =>
      page.evaluate(async (file) => {
        const res = await fetch(`/fixtures/${file}`, { headers: { Range: 'bytes=0-27' } });
        return [res.status, ...new Int32Array(await res.arrayBuffer())];
      }, BIN),
    );
    // llama2.c header: status, then dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len.
    expect(header).toEqual([206, 64, 172, 5, 8, 4, 512, 512]);
  });
});
