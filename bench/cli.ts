// What every benchmark entry point shares: usage errors, logging to stderr (stdout carries --json), and
// running main() so that Node exits once output is flushed (Dawn keeps the event loop alive).

/** A bad flag: printed without a stack trace. */
export class UsageError extends Error {}

export const log = (line: string) => process.stderr.write(`${line}\n`);

/** A comma-separated flag value, each item one of `allowed`; `usage` is printed with an unknown one. */
export function parseList<T extends string>(name: string, value: string, allowed: readonly T[], usage: string): T[] {
  return value.split(',').map((v) => {
    if (!allowed.includes(v as T)) throw new UsageError(`unknown ${name} ${v}\n${usage}`);
    return v as T;
  });
}

export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    // node:util parseArgs rejects unknown flags with ERR_PARSE_ARGS_* errors: usage errors too
    const usage = e instanceof UsageError || String((e as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    log(usage ? (e as Error).message : e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  }
  process.stdout.write('', () => process.exit());
}
