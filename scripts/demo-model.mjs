// Writes the chat demo's embedded models into public/models/ (generated, not committed), which Vite serves
// at /models/NAME/ beside the page:
//   chat-tiny, chat-tiny-concat, chat-tiny-merge  copied from the committed models/ folder (the default
//       model, trained here, and its ccm-concat and ccm-merge adapters); a file is copied only when its size
//       or modification time differs, and files the source no longer has are removed, so reruns are quick;
//   stories260K  converted from ../shared/fixtures (llama2.c format) with the compiled converter in dist/
//       (`npm run build`), as bin/ccmem.mjs uses it; skipped with a warning when the fixtures are absent.
// `--models DIR` takes the chat-tiny folders from DIR instead of models/ (your own trained files, say).
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const publicModels = path.join(root, 'public/models');
const CHAT_MODEL = 'chat-tiny';
const CHAT_ADAPTERS = ['chat-tiny-concat', 'chat-tiny-merge'];

function fail(message) {
  console.error(`demo-model: ${message}`);
  process.exit(1);
}

function modelsDir(argv) {
  const i = argv.indexOf('--models');
  if (i < 0) return path.join(root, 'models');
  const dir = argv[i + 1];
  if (!dir) fail('--models needs a folder (the one holding chat-tiny/)');
  return path.resolve(dir);
}

/** What the engine reads of a model or adapter folder (not a trainer's checkpoints, logs or plots). */
const served = (name) => name.endsWith('.json') || name.endsWith('.safetensors');

/** Mirrors the served files of `from` into `to`; returns how many were copied. */
function mirror(from, to) {
  mkdirSync(to, { recursive: true });
  const names = readdirSync(from).filter((n) => served(n) && statSync(path.join(from, n)).isFile());
  let copied = 0;
  for (const name of names) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    const s = statSync(src);
    const d = existsSync(dst) ? statSync(dst) : undefined;
    // (utimes keeps whole milliseconds at best)
    if (d && d.size === s.size && Math.abs(d.mtimeMs - s.mtimeMs) < 1) continue;
    copyFileSync(src, dst);
    utimesSync(dst, s.atime, s.mtime);
    copied++;
  }
  for (const name of readdirSync(to)) if (!names.includes(name)) rmSync(path.join(to, name), { recursive: true });
  return copied;
}

const source = modelsDir(process.argv.slice(2));
for (const name of [CHAT_MODEL, ...CHAT_ADAPTERS]) {
  const from = path.join(source, name);
  if (!existsSync(path.join(from, name === CHAT_MODEL ? 'config.json' : 'adapter_config.json'))) {
    if (name === CHAT_MODEL) fail(`${path.relative(root, from) || from} is missing: it is the demo's default model`);
    console.warn(`demo-model: ${path.relative(root, from)} is missing; its policy will not load in the demo`);
    rmSync(path.join(publicModels, name), { recursive: true, force: true });
    continue;
  }
  const copied = mirror(from, path.join(publicModels, name));
  console.log(`demo model: ${name} ${copied ? `copied (${copied} files)` : 'up to date'} in public/models/${name}/`);
}

const fixtures = path.resolve(root, '../shared/fixtures/stories260K');
const storiesOut = path.join(publicModels, 'stories260K');
if (!existsSync(path.join(fixtures, 'stories260K.bin'))) {
  console.warn(`demo-model: ${fixtures} is missing; the demo's stories260K will not load`);
  rmSync(storiesOut, { recursive: true, force: true });
} else {
  let convertLlama2c;
  try {
    ({ convertLlama2c } = await import('../dist/model/llama2c.js'));
  } catch (e) {
    fail(`cannot load dist/model/llama2c.js (run npm run build): ${e.message}`);
  }
  const files = convertLlama2c(
    readFileSync(path.join(fixtures, 'stories260K.bin')),
    readFileSync(path.join(fixtures, 'tok512.bin')),
  );
  mkdirSync(storiesOut, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(storiesOut, name), data);
  console.log('demo model: stories260K converted into public/models/stories260K/');
}
