// Runs the whole test suite: unit tests, the GPU tests once on SwiftShader (no shader-f16: the
// packed-u32 f16 path) and once on Mesa lavapipe (native f16), then the headless-Chromium tests.
// Prints one closing line "tests: N passed, N failed, N skipped".
//   node scripts/test.mjs [run-name ...] [-- vitest filters]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';

const ICD = {
  swiftshader: '/usr/lib/chromium/vk_swiftshader_icd.json',
  lavapipe: '/usr/share/vulkan/icd.d/lvp_icd.json',
};
const RUNS = [
  { name: 'unit', project: 'unit', env: {} },
  { name: 'gpu:swiftshader', project: 'gpu', env: { VK_ICD_FILENAMES: ICD.swiftshader, CCMEM_EXPECT_F16: '0' } },
  { name: 'gpu:lavapipe', project: 'gpu', env: { VK_ICD_FILENAMES: ICD.lavapipe, CCMEM_EXPECT_F16: '1' } },
  { name: 'browser', project: 'browser', env: {} },
];

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const names = dash < 0 ? argv : argv.slice(0, dash);
const filters = dash < 0 ? [] : argv.slice(dash + 1);
const selected = names.length ? RUNS.filter((r) => names.includes(r.name)) : RUNS;

mkdirSync('.tmp', { recursive: true });
const total = { passed: 0, failed: 0, skipped: 0 };
const failedRuns = [];
for (const run of selected) {
  const icd = run.env.VK_ICD_FILENAMES;
  if (icd && !existsSync(icd)) {
    console.error(`[${run.name}] Vulkan driver ${icd} is missing: run .ci/run's install step`);
    failedRuns.push(run.name);
    total.failed++;
    continue;
  }
  const out = `.tmp/vitest-${run.name.replace(':', '-')}.json`;
  rmSync(out, { force: true });
  console.log(`\n=== ${run.name} ===`);
  const res = spawnSync(
    'npx',
    [
      'vitest',
      'run',
      '--project',
      run.project,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${out}`,
      '--passWithNoTests',
      ...filters,
    ],
    { stdio: 'inherit', env: { ...process.env, ...run.env } },
  );
  if (existsSync(out)) {
    const r = JSON.parse(readFileSync(out, 'utf8'));
    total.passed += r.numPassedTests;
    total.failed += r.numFailedTests;
    total.skipped += r.numPendingTests + r.numTodoTests;
    if (r.numFailedTestSuites > 0 && r.numFailedTests === 0) total.failed++; // a file that failed to load
  } else {
    total.failed++;
  }
  if (res.status !== 0) failedRuns.push(run.name);
}
if (failedRuns.length) console.log(`\nfailed runs: ${failedRuns.join(', ')}`);
console.log(`\ntests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(failedRuns.length || total.failed ? 1 : 0);
