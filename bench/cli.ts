// What every benchmark entry point shares: usage errors, logging to stderr (stdout carries --json), and
// running main() so that Node exits once output is flushed (Dawn keeps the event loop alive).

/** A bad flag: printed without a stack trace. */
export class UsageError extends Error {}

export const log = (line: string) => process.stderr.write(`${line}\n`);

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
