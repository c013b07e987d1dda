import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/gpu/batch.js';
import { roundToF16 } from '../../src/gpu/half.js';
import { readF32, uploadTensor, uploadU32, type WeightFormat } from '../../src/gpu/tensor.js';
import { embedding } from '../../src/kernels/embedding.js';
import { embeddingRef } from '../../src/kernels/embedding.ref.js';
import { expectClose, randomArray, rng, testGpu, weightFormats } from '../helpers/gpu.js';

interface Case {
  rows: number;
  dim: number;
  vocab: number;
  extraRows: number; // 0: no extra tensor
  format: WeightFormat;
  idsOffset: number;
  seed: number;
  ids?: number[];
  /** The table in the blocked layout (half formats, vocab in 32s, dim in 8s), as a tied LM head is. */
  blocked?: boolean;
}

async function check(c: Case) {
  const gpu = await testGpu();
  const owner = `test-embedding-${c.seed}`;
  const r = rng(c.seed);
  // Ids cluster around the boundaries (table end, extra end, past both) as well as anywhere.
  const edges = [0, c.vocab - 1, c.vocab, c.vocab + c.extraRows - 1, c.vocab + c.extraRows, 0xffffffff];
  const pick = () => (r() < 0.5 ? (edges[Math.floor(r() * edges.length)] as number) : Math.floor(r() * c.vocab));
  const ids = Uint32Array.from(c.ids ?? Array.from({ length: c.idsOffset + c.rows }, pick));
  const table = randomArray(c.vocab * c.dim, c.seed + 1);
  const extra = c.extraRows ? randomArray(c.extraRows * c.dim, c.seed + 2) : undefined;
  const out = uploadTensor(
    gpu,
    { tag: 'scratch', owner, label: 'out', shape: [c.rows, c.dim] },
    randomArray(c.rows * c.dim, 3),
  );
  const b = new Batch(gpu);
  embedding(b, {
    ids: uploadU32(gpu, { tag: 'scratch', owner, label: 'ids', shape: [ids.length] }, ids),
    idsOffset: c.idsOffset,
    table: uploadTensor(
      gpu,
      { tag: 'weights', owner, label: 'table', shape: [c.vocab, c.dim], format: c.format, blocked: c.blocked },
      table,
    ),
    extra: extra && uploadTensor(gpu, { tag: 'scratch', owner, label: 'extra', shape: [c.extraRows, c.dim] }, extra),
    out,
    rows: c.rows,
    dim: c.dim,
    vocab: c.vocab,
  });
  b.submit();
  const got = await readF32(gpu, out);
  gpu.releaseOwner(owner);
  const tableRef = c.format === 'f32' ? table : roundToF16(table);
  expectClose(got, embeddingRef(ids, tableRef, extra, c.rows, c.dim, c.vocab, c.idsOffset), 0, 0);
}

describe('embedding', async () => {
  const formats = weightFormats(await testGpu());

  it('matches the CPU reference on random shapes, formats, extra rows and boundary ids', async () => {
    const arb = fc.record({
      rows: fc.integer({ min: 1, max: 9 }),
      dim: fc.integer({ min: 1, max: 200 }),
      vocab: fc.integer({ min: 1, max: 300 }),
      extraRows: fc.integer({ min: 0, max: 5 }),
      format: fc.constantFrom(...formats),
      idsOffset: fc.integer({ min: 0, max: 3 }),
      seed: fc.nat(),
    });
    await fc.assert(fc.asyncProperty(arb, check), { numRuns: 30 });
  });

  it.each(formats)('pinned: odd dim in %s, ids at both boundaries and past them', (format) =>
    check({
      rows: 7,
      dim: 5,
      vocab: 3,
      extraRows: 2,
      format,
      idsOffset: 1,
      seed: 1,
      ids: [9, 2, 3, 4, 5, 0, 1000, 0xffffffff],
    }),
  );

  it.each(formats.filter((f) => f !== 'f32'))('blocked %s table (a tied LM head on a CPU adapter)', (format) =>
    check({ rows: 9, dim: 24, vocab: 96, extraRows: 2, format, idsOffset: 2, seed: 5, blocked: true }),
  );

  it('refuses ids that are not u32', async () => {
    const gpu = await testGpu();
    const f = uploadTensor(gpu, { tag: 'scratch', owner: 'neg', label: 'f', shape: [4, 2] }, new Float32Array(8));
    expect(() => embedding(new Batch(gpu), { ids: f, table: f, out: f, rows: 1, dim: 2, vocab: 4 })).toThrow(
      /embedding.ids/,
    );
    gpu.releaseOwner('neg');
  });
});
