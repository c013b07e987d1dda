#!/usr/bin/env node
// The CLI entry: runs the compiled TypeScript in dist/ (built by scripts/setup.sh, or `npm run build`).
const { main } = await import('../dist/cli/main.js');
const code = await main(process.argv.slice(2));
// Dawn keeps the event loop alive; exit explicitly once output is flushed.
process.stdout.write('', () => process.exit(code));
