// Loading bad model folders gives typed, clear errors and leaves nothing allocated.
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCcmemError } from '../../src/errors.js';
import { loadModel } from '../../src/model/load.js';
import { testGpu } from '../helpers/gpu.js';
import { randomModel, writeModelDir } from '../helpers/randomModel.js';

const root = mkdtempSync(join(tmpdir(), 'ccmem-bad-'));
let n = 0;

function goodDir(): string {
  const dir = join(root, `m${++n}`);
  writeModelDir(
    dir,
    randomModel({ hidden: 32, layers: 1, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed: n }),
    'F16',
  );
  return dir;
}

async function expectLoadError(dir: string, code: string, message: RegExp) {
  const gpu = await testGpu();
  const before = gpu.ledger.snapshot().current;
  const e = await loadModel(gpu, dir).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isCcmemError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).toBe(code);
  expect((e as Error).message).toMatch(message);
  expect(gpu.ledger.snapshot().current).toBe(before);
}

const editConfig = (dir: string, edit: (c: Record<string, unknown>) => void) => {
  const path = join(dir, 'config.json');
  const c = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(c);
  writeFileSync(path, JSON.stringify(c));
};

describe('loadModel on bad input', () => {
  it('loads the good folder (control)', async () => {
    const gpu = await testGpu();
    const model = await loadModel(gpu, goodDir());
    expect(model.weights.format).toBe(gpu.features.f16 ? 'f16' : 'f16p');
    gpu.releaseOwner(model.owner);
  });

  it('missing config.json', async () => {
    const dir = goodDir();
    rmSync(join(dir, 'config.json'));
    await expectLoadError(dir, 'MODEL_FORMAT', /config\.json/);
  });

  it('missing weights', async () => {
    const dir = goodDir();
    rmSync(join(dir, 'model.safetensors'));
    await expectLoadError(dir, 'MODEL_FORMAT', /model\.safetensors/);
  });

  it('truncated weights', async () => {
    const dir = goodDir();
    const path = join(dir, 'model.safetensors');
    truncateSync(path, readFileSync(path).length - 100);
    await expectLoadError(dir, 'MODEL_FORMAT', /truncated|model\.safetensors/);
  });

  it('a header that lies about offsets', async () => {
    const dir = goodDir();
    const path = join(dir, 'model.safetensors');
    const bytes = readFileSync(path);
    const len = Number(bytes.readBigUInt64LE(0));
    const header = bytes
      .subarray(8, 8 + len)
      .toString('utf8')
      .replace(/"data_offsets":\[(\d+),(\d+)\]/, (_, a, b) => `"data_offsets":[${a},${Number(b) + 1000000}]`);
    const fixed = Buffer.alloc(8 + Buffer.byteLength(header) + bytes.length - 8 - len);
    fixed.writeBigUInt64LE(BigInt(Buffer.byteLength(header)), 0);
    fixed.write(header, 8, 'utf8');
    bytes.copy(fixed, 8 + Buffer.byteLength(header), 8 + len);
    writeFileSync(path, fixed);
    await expectLoadError(dir, 'MODEL_FORMAT', /offset|bound|size|truncated/i);
  });

  it('a shape that disagrees with the config', async () => {
    const dir = goodDir();
    editConfig(dir, (c) => {
      c.intermediate_size = 50;
    });
    await expectLoadError(dir, 'MODEL_FORMAT', /mlp\.(gate|up|down)_proj/);
  });

  it('an unsupported architecture', async () => {
    const dir = goodDir();
    editConfig(dir, (c) => {
      c.model_type = 'gpt2';
    });
    await expectLoadError(dir, 'UNSUPPORTED_MODEL', /gpt2/);
  });

  it('a model larger than the device allows', async () => {
    // a sparse file whose header claims a 4.3 GB embedding: refused before any byte is read or allocated
    const gpu = await testGpu();
    const dir = join(root, 'huge');
    writeModelDir(
      dir,
      randomModel({ hidden: 32, layers: 1, heads: 4, kvHeads: 2, intermediate: 48, vocab: 40, seed: 1 }),
      'F32',
    );
    const vocab = Math.ceil((gpu.limits.maxStorageBufferBindingSize + 1) / (32 * 4)) + 1;
    editConfig(dir, (c) => {
      c.vocab_size = vocab;
    });
    const path = join(dir, 'model.safetensors');
    const bytes = readFileSync(path);
    const len = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + len).toString('utf8')) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    let offset = 0;
    for (const [name, t] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') t.shape = [vocab, 32];
      const size = t.shape.reduce((a, b) => a * b, 1) * 4;
      t.data_offsets = [offset, offset + size];
      offset += size;
    }
    const text = JSON.stringify(header);
    const fd = openSync(path, 'w');
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
    writeSync(fd, head);
    writeSync(fd, text);
    closeSync(fd);
    truncateSync(path, 8 + Buffer.byteLength(text) + offset); // sparse: no data is written
    await expectLoadError(
      dir,
      'DEVICE_LIMIT',
      /model\.embed_tokens\.weight.*(maxBufferSize|maxStorageBufferBindingSize)/,
    );
  });
});
