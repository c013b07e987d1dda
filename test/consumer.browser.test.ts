// The built package as an app installs it: tsc's output and package.json under node_modules/ccmem, with
// only the packages its `dependencies` name beside it (not its dev dependencies, not the optional peer
// `webgpu`, Dawn for Node). The app's TypeScript must type-check against the published .d.ts files with
// skipLibCheck off and no ambient types of its own (as a Vite app and as a Node ESM project), Vite must
// build it without Dawn, and in Chromium it chats through its own bundled worker while a
// <ccm-memory-panel hook> shows the turn with no devtools code in the app: createEngine publishes it.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'vite';
import { afterAll, describe, expect, it } from 'vitest';
import type { MemoryStats } from '../src/index.js';
import { browserEnvWithStories } from './helpers/browser.js';

const { env, modelUrl } = browserEnvWithStories();

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

interface ConsumerReport {
  deltas: string[];
  text: string;
  owners: string[];
  panelTurns: (number | undefined)[];
  panelMemory: MemoryStats | undefined;
  memory: MemoryStats | undefined;
}

/** The app's code: only the public API; the panel is there, but nothing feeds it. */
const APP_MAIN = `import { CcmemError, createEngine, type GenerationResult, type MemoryStats } from 'ccmem';
import { type CcmMemoryPanel, PANEL_TAG } from 'ccmem/devtools';

interface ConsumerReport {
  deltas: string[];
  text: string;
  owners: string[];
  panelTurns: (number | undefined)[];
  panelMemory: MemoryStats | undefined;
  memory: MemoryStats | undefined;
}

declare global {
  interface Window {
    runConsumer(model: string): Promise<ConsumerReport>;
  }
}

window.runConsumer = async (model) => {
  const panel: CcmMemoryPanel = document.createElement(PANEL_TAG);
  panel.setAttribute('hook', '');
  document.body.append(panel);
  const engine = await createEngine({ model, capacity: 64 });
  const chat = engine.chat();
  const deltas: string[] = [];
  for await (const d of chat.send('Once upon a time', { maxNewTokens: 8, temperature: 0 })) deltas.push(d);
  const result: GenerationResult | undefined = await chat.lastResult();
  const { memory } = await engine.memory(chat);
  const report = { panelTurns: panel.samples.map((s) => s.turn), panelMemory: panel.samples.at(-1)?.memory, memory };
  const ledger = await engine.dispose();
  if (!ledger) throw new CcmemError('WORKER_LOST', 'the worker could not report its ledger');
  return { ...report, deltas, text: result?.text ?? '', owners: Object.keys(ledger.byOwner) };
};
`;

/** A strict consumer: no skipLibCheck, no ambient types (only what the package's own files bring). */
const tsconfig = (module: string, moduleResolution: string) =>
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module,
      moduleResolution,
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      types: [],
      strict: true,
      skipLibCheck: false,
      noEmit: true,
    },
    files: ['main.ts'],
  });

describe('the built package in a consumer app', () => {
  let dir: string | undefined;
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('type-checks with skipLibCheck off, builds without Dawn, and its chats show on a hook panel', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as PackageJson;
    // Dawn is for Node only: an optional peer, so npm does not install it into browser apps
    expect(Object.keys(pkg.dependencies)).not.toContain('webgpu');
    expect(pkg.peerDependenciesMeta?.webgpu?.optional).toBe(true);
    dir = await buildConsumerApp(pkg);
    const app = join(dir, 'app');
    for (const config of ['tsconfig.json', 'tsconfig.node.json']) {
      const tsc = spawnSync(resolve('node_modules/.bin/tsc'), ['-p', join(app, config)], { encoding: 'utf8' });
      expect(tsc.stdout + tsc.stderr, config).toBe('');
      expect(tsc.status, config).toBe(0);
    }
    await build({ root: app, base: './', configFile: false, logLevel: 'warn', build: { outDir: join(app, 'dist') } });

    const r = await env().withPage(`/${relative(process.cwd(), app)}/dist/index.html`, async (page) => {
      await page.waitForFunction(() => 'runConsumer' in window);
      return page.evaluate(
        (url) => (window as unknown as { runConsumer: (u: string) => Promise<ConsumerReport> }).runConsumer(url),
        modelUrl(),
      );
    });
    expect(r.deltas.length).toBeGreaterThan(1);
    expect(r.deltas.join('')).toBe(r.text);
    expect(r.owners).toEqual(['gpu']);
    // the panel got the turn from createEngine itself: one column, turn 1, engine.memory()'s numbers
    expect(r.panelTurns).toEqual([1]);
    expect(r.panelMemory).toEqual(r.memory);
  });
});

/**
 * The package under app/node_modules/ccmem: dist/ built by tsc, package.json, and node_modules holding
 * links to this checkout's copies of exactly the packages `dependencies` names. The app (its own
 * package.json, so that 'ccmem' is not this checkout by self-reference) lives in a fresh folder under
 * .tmp/, which the test's dev server serves.
 */
async function buildConsumerApp(pkgJson: PackageJson): Promise<string> {
  mkdirSync('.tmp', { recursive: true });
  const dir = resolve(mkdtempSync('.tmp/consumer-'));
  const pkg = join(dir, 'pkg');
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', join(pkg, 'dist')], { stdio: 'inherit' });
  copyFileSync('package.json', join(pkg, 'package.json'));
  for (const name of Object.keys(pkgJson.dependencies)) {
    const at = join(pkg, 'node_modules', name);
    mkdirSync(dirname(at), { recursive: true });
    symlinkSync(resolve('node_modules', name), at);
  }
  const app = join(dir, 'app');
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  symlinkSync(pkg, join(app, 'node_modules/ccmem'));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  writeFileSync(join(app, 'tsconfig.json'), tsconfig('ESNext', 'bundler'));
  writeFileSync(join(app, 'tsconfig.node.json'), tsconfig('NodeNext', 'NodeNext'));
  writeFileSync(join(app, 'main.ts'), APP_MAIN);
  writeFileSync(
    join(app, 'index.html'),
    '<!doctype html><html lang="en"><head><meta charset="utf-8" /><link rel="icon" href="data:," />' +
      '<title>ccmem consumer</title><script type="module" src="./main.ts"></script></head><body></body></html>\n',
  );
  return dir;
}
