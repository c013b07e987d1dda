// Dawn (the npm package `webgpu`) is an optional peer dependency: Node code that needs it and finds it
// missing gets WEBGPU_UNAVAILABLE saying what to install, not Node's raw ERR_MODULE_NOT_FOUND. The real
// src/gpu/node.ts is compiled into a folder outside this checkout (so no node_modules above it holds
// `webgpu`) and imported by a plain Node process: with no `webgpu` at all, with one that fails to load,
// and with a stand-in that works.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir = '';
let nodeJs = '';

/** Runs nodeGpu() in a fresh Node process; its outcome as JSON. */
function runNodeGpu(): { ok: true; gpu: unknown } | { ok: false; name: string; code: string; message: string } {
  const script = `
    const { nodeGpu } = await import(${JSON.stringify(pathToFileURL(nodeJs).href)});
    try { console.log(JSON.stringify({ ok: true, gpu: await nodeGpu(['x']) })); }
    catch (e) { console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message })); }`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

function writeWebgpuPackage(source: string): void {
  const pkg = join(dir, 'node_modules/webgpu');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'webgpu', type: 'module', main: 'index.js' }));
  writeFileSync(join(pkg, 'index.js'), source);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccmem-dawn-'));
  const tsc = join(process.cwd(), 'node_modules/.bin/tsc');
  const compile = ['--outDir', join(dir, 'dist'), '--rootDir', 'src', '--module', 'nodenext', '--target', 'es2022'];
  execFileSync(tsc, [...compile, '--types', '@webgpu/types', '--skipLibCheck', 'src/gpu/node.ts'], {
    stdio: 'inherit',
  });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  nodeJs = join(dir, 'dist/gpu/node.js');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('nodeGpu without Dawn', () => {
  it('names the package to install when `webgpu` is not installed', () => {
    const r = runNodeGpu();
    expect(r).toMatchObject({ ok: false, name: 'CcmemError[WEBGPU_UNAVAILABLE]', code: 'WEBGPU_UNAVAILABLE' });
    expect(!r.ok && r.message).toContain('npm install webgpu');
  });

  it('says why when `webgpu` is there but cannot load (a missing native build)', () => {
    writeWebgpuPackage("throw new Error('dawn.node: no build for this platform');\n");
    const r = runNodeGpu();
    expect(r).toMatchObject({ ok: false, code: 'WEBGPU_UNAVAILABLE' });
    expect(!r.ok && r.message).toContain('no build for this platform');
    expect(!r.ok && r.message).not.toContain('npm install webgpu');
  });

  it('uses `webgpu` when it is installed', () => {
    writeWebgpuPackage('export const globals = {};\nexport const create = (flags) => ({ dawn: flags });\n');
    expect(runNodeGpu()).toEqual({ ok: true, gpu: { dawn: ['x'] } });
  });
});
