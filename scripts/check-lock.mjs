#!/usr/bin/env node
// Checks that the packages installed in DIR/node_modules are the ones DIR/package-lock.json locks.
// npm records the tree it installed in node_modules/.package-lock.json; this compares that record
// with the lockfile, entry by entry:
//   - an installed package whose version or integrity differs from the locked one fails;
//   - a locked package that is neither optional nor installed fails (an optional one may be skipped:
//     another platform's build, or one the registry does not serve today);
//   - an installed package the lockfile does not name is reported, not failed (an optional platform
//     build the registry started serving after the lockfile was written).
// Exit 0 when the tree matches, 1 with one line per difference when not, 2 when there is no record.
// Usage: node scripts/check-lock.mjs [DIR] [--omit=optional]
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function compareLock(locked, installed, { omitOptional = false } = {}) {
  const problems = [];
  const extras = [];
  for (const [path, entry] of Object.entries(installed)) {
    if (path === '') continue;
    const want = locked[path];
    if (!want) {
      extras.push(`${path}@${entry.version}`);
      continue;
    }
    if (want.link || entry.link) continue;
    if (want.version !== entry.version) {
      problems.push(`${path}: installed ${entry.version}, locked ${want.version}`);
    } else if (want.integrity && entry.integrity && want.integrity !== entry.integrity) {
      problems.push(`${path}: installed integrity differs from the locked one`);
    }
  }
  for (const [path, want] of Object.entries(locked)) {
    if (path === '' || installed[path] || want.optional || want.peer) continue;
    if (omitOptional && want.devOptional) continue;
    problems.push(`${path}: locked ${want.version} but not installed`);
  }
  return { problems, extras };
}

function main() {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith('--')) ?? '.';
  const omitOptional = args.includes('--omit=optional');
  const recordPath = join(dir, 'node_modules', '.package-lock.json');
  if (!existsSync(recordPath)) {
    console.error(`check-lock: ${dir}/node_modules is not installed`);
    process.exit(2);
  }
  const locked = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')).packages;
  const installed = JSON.parse(readFileSync(recordPath, 'utf8')).packages;
  const { problems, extras } = compareLock(locked, installed, { omitOptional });
  for (const extra of extras) console.error(`check-lock: ${dir}: installed but not locked (optional build?): ${extra}`);
  if (problems.length > 0) {
    for (const p of problems) console.error(`check-lock: ${dir}: ${p}`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
