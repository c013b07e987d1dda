// Writes the chat demo's embedded model: stories260K from ../shared/fixtures (llama2.c format) converted
// into a Hugging Face folder in public/models/stories260K/ (generated, not committed), which Vite serves
// at /models/stories260K/. Uses the compiled converter in dist/ (built by `npm ci`), as bin/ccmem.mjs does.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.resolve(root, '../shared/fixtures/stories260K');
const out = path.join(root, 'public/models/stories260K');

let convertLlama2c;
try {
  ({ convertLlama2c } = await import('../dist/model/llama2c.js'));
} catch (e) {
  console.error(`demo-model: cannot load dist/model/llama2c.js (run npm run build): ${e.message}`);
  process.exit(1);
}
const files = convertLlama2c(
  readFileSync(path.join(fixtures, 'stories260K.bin')),
  readFileSync(path.join(fixtures, 'tok512.bin')),
);
mkdirSync(out, { recursive: true });
for (const [name, data] of Object.entries(files)) writeFileSync(path.join(out, name), data);
console.log(`demo model: stories260K converted into ${path.relative(root, out)}/`);
