// Runs the Python side of the adapter pipeline (train/, in the .venv that train/setup.sh creates) for the
// tests: a command's stdout, and the output of train/ccm_testdata.py (a tiny model, CCM adapters trained
// on it, PyTorch's logits, tokenized chats, training layouts), made once per version of train/*.py.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PYTHON = join(ROOT, '.venv/bin/python');

/** stdout of `.venv/bin/python args...` run at the repository root; throws with stderr on failure. */
export function python(args: string[], timeoutMs = 240_000): string {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run train/setup.sh (scripts/setup.sh runs it)`);
  const r = spawnSync(PYTHON, args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  if (r.status !== 0) {
    throw new Error(`python ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr.slice(-4000)}`);
  }
  return r.stdout;
}

/** Folder written by train/ccm_testdata.py for the current train/*.py sources (cached under .tmp/). */
export function pipelineData(): string {
  const hash = createHash('sha256');
  const train = join(ROOT, 'train');
  for (const name of readdirSync(train)
    .filter((f) => f.endsWith('.py'))
    .sort()) {
    hash.update(name).update(readFileSync(join(train, name)));
  }
  const dir = join(ROOT, '.tmp/train-test', hash.digest('hex').slice(0, 16));
  if (existsSync(join(dir, 'done'))) return dir;
  const tmp = `${dir}.${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  python(['train/ccm_testdata.py', '--out', tmp]);
  writeFileSync(join(tmp, 'done'), '');
  try {
    renameSync(tmp, dir);
  } catch (e) {
    if (!existsSync(join(dir, 'done'))) throw e; // another process made it meanwhile
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

export function readJson<T>(dir: string, name: string): T {
  return JSON.parse(readFileSync(join(dir, name), 'utf8')) as T;
}
