// What a `ccmem` command is: its name, usage, flags and the function that runs it, and the flag values
// it receives. Its own module so that the commands (run.ts, memory.ts, ...) and the help text can name
// these types without importing main.ts, which imports them all.
import type { FLAGS, FlagName } from './flags.js';

type FlagValues = { [K in FlagName]?: (typeof FLAGS)[K]['type'] extends 'boolean' ? boolean : string };
export type CliValues = FlagValues & { readonly [flag: string]: string | boolean | undefined };

export interface Command {
  /** One word, or two for a sub-command ("convert llama2c"). */
  readonly name: string;
  readonly summary: string;
  /** What follows "ccmem NAME" in the usage line. */
  readonly usage: string;
  readonly flags: readonly FlagName[];
  run(values: CliValues, args: readonly string[]): Promise<void>;
}
