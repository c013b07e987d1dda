#!/usr/bin/env node
// The CLI entry: runs the compiled TypeScript in dist/ (built by scripts/setup.sh, or `npm run build`).
// runCli re-runs this file in a child process that filters Dawn's native stderr notices (see entry.ts).
import { fileURLToPath } from 'node:url';

const { runCli } = await import('../dist/cli/entry.js');
await runCli(process.argv.slice(2), fileURLToPath(import.meta.url));
