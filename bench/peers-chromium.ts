// The browser engines' harness: build bench/browser/ with Vite (a production build, so timings carry no
// dev-server transforms), serve it with the model files, open one page in a fresh headless Chromium
// (Debian's, through playwright-core) and sample the summed RSS of Chromium's whole process tree from /proc.
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_BASE_ARGS } from '../test/helpers/chromium.js';
import { log } from './cli.js';
import { startBenchServer } from './peers-server.js';

const PAGES = 'bench/browser';
/** Where buildBrowserPages writes the pages (gitignored). */
export const BROWSER_DIST = '.tmp/bench-browser';
const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';

/** How Chromium is started: its switches and the Vulkan driver its loader sees. */
export interface ChromiumProfile {
  /** The WebGPU adapter path, for the report. */
  label: string;
  args: string[];
  /** VK_ICD_FILENAMES for Chromium; undefined = unset (Chromium's own SwiftShader). */
  icd: string | undefined;
}

/** WebGPU on Chromium's bundled SwiftShader (Dawn's Vulkan backend), as the browser tests run. */
export const SWIFTSHADER: ChromiumProfile = {
  label: 'SwiftShader (Dawn Vulkan backend)',
  args: [...CHROMIUM_BASE_ARGS, '--use-webgpu-adapter=swiftshader'],
  icd: undefined,
};

/**
 * WebGPU on lavapipe, the only way found (bench/README.md): Chromium refuses lavapipe as a Vulkan WebGPU
 * adapter, but with ANGLE on Vulkan (lavapipe) its Dawn OpenGL ES backend is accepted, in WebGPU
 * compatibility mode: Dawn GLES -> ANGLE -> Vulkan -> lavapipe.
 */
export const LAVAPIPE_GLES: ChromiumProfile = {
  label: 'lavapipe through ANGLE (Dawn OpenGL ES backend, compatibility mode)',
  args: [
    ...CHROMIUM_BASE_ARGS,
    '--ignore-gpu-blocklist',
    '--use-angle=vulkan',
    '--enable-features=Vulkan',
    '--use-vulkan=native',
    '--use-webgpu-adapter=opengles',
    '--force-webgpu-compat',
  ],
  icd: LAVAPIPE_ICD,
};

/** Vite production build of the benchmark pages (ccmem.html + its worker, wllama.html) into BROWSER_DIST. */
export async function buildBrowserPages(): Promise<void> {
  const { build } = await import('vite');
  const root = resolve(PAGES);
  await build({
    root,
    base: './',
    configFile: false,
    logLevel: 'warn',
    build: {
      outDir: resolve(BROWSER_DIST),
      emptyOutDir: true,
      target: 'es2022',
      rollupOptions: { input: { ccmem: `${root}/ccmem.html`, wllama: `${root}/wllama.html` } },
    },
    worker: { format: 'es' },
  });
}

/** VmRSS of every process below `root` (not `root` itself: the Node process that serves the files), in bytes. */
function descendantsRss(root: number): number {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // the process ended while listing
    }
  }
  let bytes = 0;
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    stack.push(...(children.get(pid) ?? []));
    try {
      const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      bytes += Number(kb ?? 0) * 1024;
    } catch {
      // ended meanwhile
    }
  }
  return bytes;
}

/**
 * Serves BROWSER_DIST at / and `mounts` beside it, opens `page` in a fresh Chromium started with `profile`,
 * runs `fn` and closes everything. The page's uncaught errors fail the run; its console errors and
 * warnings go to stderr. peakRssBytes: the summed RSS of Chromium's processes, sampled every 100 ms.
 */
export async function withChromiumPage<T>(
  profile: ChromiumProfile,
  page: string,
  mounts: Record<string, string>,
  fn: (page: Page) => Promise<T>,
): Promise<{ result: T; peakRssBytes: number; version: string }> {
  const server = await startBenchServer({ '/': BROWSER_DIST, ...mounts });
  const env = { ...process.env };
  if (profile.icd) env.VK_ICD_FILENAMES = profile.icd;
  else delete env.VK_ICD_FILENAMES;
  let peakRssBytes = 0;
  const sample = () => {
    peakRssBytes = Math.max(peakRssBytes, descendantsRss(process.pid));
  };
  const sampler = setInterval(sample, 100);
  try {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: profile.args, env });
    try {
      const tab = await browser.newPage();
      let uncaught: Error | undefined;
      tab.on('pageerror', (e) => {
        uncaught ??= e;
      });
      tab.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') log(`  [chromium ${m.type()}] ${m.text()}`);
      });
      const response = await tab.goto(new URL(page, server.url).href);
      if (!response?.ok()) throw new Error(`GET ${page}: HTTP ${response?.status()}`);
      const result = await fn(tab);
      if (uncaught) throw uncaught;
      sample();
      return { result, peakRssBytes, version: browser.version() };
    } finally {
      await browser.close();
    }
  } finally {
    clearInterval(sampler);
    await server.close();
  }
}
