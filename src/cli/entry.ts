// The `ccmem` process (bin/ccmem.mjs): main() inside two guards.
// 1. Dawn writes notices from native code straight to file descriptor 2 while it reads the adapter's limits,
//    e.g. on Mesa lavapipe "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from
//    1000000 to 16 to fit dynamic offset allocation limit." (and the same for storage buffers). They come
//    from requestAdapter, before any limit is requested, and JavaScript cannot redirect a native write: so
//    the CLI runs itself in a child process whose stderr passes through a filter that drops exactly those
//    lines. CCMEM_DEBUG=1 runs in place and shows them.
// 2. A catch-all: an error that escapes main() (a bug, an unhandled rejection) still prints one line;
//    the stack only with CCMEM_DEBUG=1.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { main, reportError } from './main.js';

const CHILD_ENV = 'CCMEM_CLI_CHILD';
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function runCli(argv: string[], bin: string): Promise<void> {
  if (process.env[CHILD_ENV] === '1' || process.env.CCMEM_DEBUG === '1') return runHere(argv);
  return runFiltered(argv, bin);
}

async function runHere(argv: string[]): Promise<void> {
  const fail = (e: unknown) => exit(reportError(e));
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  // a reader that stops early (ccmem ... | head) is not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(0) : fail(e)));
  exit(await main(argv));
}

/** Exits once stdout is flushed (Dawn keeps the event loop alive, so the process must exit explicitly). */
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

async function runFiltered(argv: string[], bin: string): Promise<void> {
  const columns = process.stderr.isTTY ? { CCMEM_STDERR_TTY: String(process.stderr.columns || 80) } : {};
  const child = spawn(process.execPath, [...process.execArgv, bin, ...argv], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, ...columns, [CHILD_ENV]: '1' },
  });
  const forward = Object.fromEntries(SIGNALS.map((s) => [s, () => child.kill(s)]));
  for (const s of SIGNALS) process.on(s, forward[s]!);
  const filter = new DawnNoticeFilter();
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => process.stderr.write(filter.push(text)));
  child.stderr.on('end', () => process.stderr.write(filter.end()));
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const failed = once(child, 'error').then(([e]) => Promise.reject(e));
  let result: [number | null, NodeJS.Signals | null];
  try {
    result = await Promise.race([closed, failed]);
  } catch (e) {
    exit(reportError(e));
    return;
  }
  const [code, signal] = result;
  for (const s of SIGNALS) process.off(s, forward[s]!);
  if (signal)
    process.kill(process.pid, signal); // end as the child did (e.g. Ctrl-C)
  else process.exit(code ?? 1);
}

const NOTICE =
  /Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?\n/g;
const NOTICE_START = 'Warning: maxDynamic';

/**
 * Drops Dawn's limit notices from a stream of stderr text and passes everything else on at once, holding
 * back only an unfinished line that may still become a notice.
 */
export class DawnNoticeFilter {
  private held = '';

  push(text: string): string {
    const all = (this.held + text).replace(NOTICE, '');
    const lineStart = all.lastIndexOf('\n') + 1;
    const tail = all.slice(lineStart);
    const at = tail.indexOf(NOTICE_START);
    let hold = at >= 0 ? tail.length - at : 0;
    for (let n = Math.min(tail.length, NOTICE_START.length - 1); hold === 0 && n > 0; n--) {
      if (NOTICE_START.startsWith(tail.slice(-n))) hold = n;
    }
    this.held = all.slice(all.length - hold);
    return all.slice(0, all.length - hold);
  }

  /** What is still held when the stream ends (it never became a notice). */
  end(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }
}
