// The import rules of ARCHITECTURE.md, checked over src/: no import cycle between files, and no import
// from a layer up into a layer above it. Every relative import counts, type-only ones too: a type-only
// cycle still means neither file can be read (or moved) without the other, and an upward type import
// still ties a lower layer to the code above it. Imports are read with TypeScript's own pre-processor
// (import, export ... from, import(), import type), not with a regular expression.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The layers, top to bottom: a file may import its own layer (without a cycle) and the layers below it.
 * A path ending in '/' is a folder, any other a single file.
 */
const LAYERS: readonly { name: string; paths: readonly string[] }[] = [
  { name: 'entry', paths: ['src/index.ts'] }, // the package entry `ccmem`: re-exports the API and its types
  { name: 'cli', paths: ['src/cli/'] }, // the Node command line
  { name: 'eval', paths: ['src/eval/'] }, // recall evaluation over a Session (ccmem eval-memory)
  { name: 'client', paths: ['src/client/'] }, // the page-side API
  // The panel and the global hook the client publishes memory samples into: below the client for that
  // reason; it reads only the engine's, memory's and ledger's types and names.
  { name: 'devtools', paths: ['src/devtools/'] },
  { name: 'worker', paths: ['src/worker/'] },
  { name: 'engine', paths: ['src/engine/'] },
  // The tests' CPU oracle, beside the stack: it may use what lies below, nothing in src/ may import it.
  { name: 'reference', paths: ['src/reference/'] },
  { name: 'memory', paths: ['src/memory/'] },
  // Adapters are part of the model: loading merges an ungated LoRA, the forward pass reads the GPU adapter.
  { name: 'model', paths: ['src/model/', 'src/adapters/'] },
  { name: 'kernels', paths: ['src/kernels/'] },
  { name: 'gpu', paths: ['src/gpu/'] },
  { name: 'base', paths: ['src/errors.ts', 'src/util/'] }, // typed errors, small helpers: import nothing above
];

/** Layers only the tests may import: the layer itself aside, an import of them from src/ is refused. */
const TEST_ONLY = new Set(['reference']);

type ImportGraph = ReadonlyMap<string, readonly string[]>;

/** Every relative import of every .ts file under `root` ('src'), as repository paths ('src/a/b.ts'). */
function readImportGraph(repo: string, root: string): ImportGraph {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(repo, dir), { withFileTypes: true })) {
      const path = posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith('.ts')) graph.set(path, importsOf(path, readFileSync(join(repo, path), 'utf8')));
    }
  };
  walk(root);
  return graph;
}

function importsOf(file: string, text: string): string[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles
    .map((i) => i.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => posix.normalize(posix.join(posix.dirname(file), name)).replace(/\.js$/, '.ts'));
}

function layerOf(file: string): number {
  return LAYERS.findIndex((l) => l.paths.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p)));
}

/** Each rule an import breaks, as one line "from -> to: why". */
function layerViolations(graph: ImportGraph): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    const own = layerOf(from);
    if (own < 0) out.push(`${from}: in no layer (add its folder to LAYERS)`);
    for (const to of targets) {
      const their = layerOf(to);
      const edge = `${from} -> ${to}`;
      if (their < 0) out.push(`${edge}: imports a file outside the layers`);
      else if (own < 0) continue;
      else if (their < own) out.push(`${edge}: ${LAYERS[own]!.name} imports ${LAYERS[their]!.name}, a layer above`);
      else if (their !== own && TEST_ONLY.has(LAYERS[their]!.name)) {
        out.push(`${edge}: ${LAYERS[their]!.name} is for tests only`);
      }
    }
  }
  return out;
}

/** The import cycles: each strongly connected set of files (Tarjan), one sorted list per cycle. */
function importCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        if (!graph.has(w)) continue; // not a source file here: nothing to follow
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const members: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      members.push(w);
    } while (w !== v);
    if (members.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(members.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('imports in src/', () => {
  const graph = readImportGraph(repo, 'src');

  it('form no cycle', () => {
    expect(importCycles(graph).map((c) => c.join(' <-> '))).toEqual([]);
  });

  it('never reach up a layer (nor into the test oracle)', () => {
    expect(layerViolations(graph)).toEqual([]);
  });
});

describe('the import checks', () => {
  // A small graph with one of each fault, so the checks above are known to be able to fail.
  const graph: ImportGraph = new Map([
    ['src/engine/a.ts', ['src/engine/b.ts', 'src/reference/s.ts', 'src/model/m.ts']],
    ['src/engine/b.ts', ['src/engine/c.ts']],
    ['src/engine/c.ts', ['src/engine/a.ts']],
    ['src/engine/d.ts', ['test/helpers/h.ts']],
    ['src/model/m.ts', ['src/engine/d.ts', 'src/model/m.ts', 'src/reference/r.ts']],
    ['src/reference/r.ts', ['src/reference/s.ts']],
    ['src/reference/s.ts', []],
    ['src/stray/x.ts', ['src/errors.ts']],
  ]);

  it('find every cycle, a self-import included', () => {
    expect(importCycles(graph)).toEqual([
      ['src/model/m.ts'],
      ['src/engine/a.ts', 'src/engine/b.ts', 'src/engine/c.ts'],
    ]);
  });

  it('find an upward import, an import of the oracle, a file in no layer and an import out of src/', () => {
    expect(layerViolations(graph)).toEqual([
      'src/engine/a.ts -> src/reference/s.ts: reference is for tests only',
      'src/engine/d.ts -> test/helpers/h.ts: imports a file outside the layers',
      'src/model/m.ts -> src/engine/d.ts: model imports engine, a layer above',
      'src/model/m.ts -> src/reference/r.ts: model imports reference, a layer above',
      'src/stray/x.ts: in no layer (add its folder to LAYERS)',
    ]);
  });
});
