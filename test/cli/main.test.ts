// The CLI in process, without a GPU: help with a description for every command and flag, "did you mean"
// for mistyped commands and flags, files that cannot be read or written as one typed error line (exit 2),
// and unexpected errors as one line (exit 1) with the stack only under CCMEM_DEBUG=1 (issue 11, items 5, 11).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Command } from '../../src/cli/command.js';
import { FLAGS } from '../../src/cli/flags.js';
import { editDistance, suggest } from '../../src/cli/help.js';
import { COMMANDS, main, reportError } from '../../src/cli/main.js';

const work = mkdtempSync(join(tmpdir(), 'ccmem-cli-unit-'));

let out: string[];
let err: string[];

beforeEach(() => {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(format(...a)));
  vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(format(...a)));
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

/** Runs the CLI; stdout and stderr as text. */
async function ccmem(...argv: string[]) {
  const code = await main(argv);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

function expectOneErrorLine(stderr: string, pattern: RegExp) {
  const lines = stderr.split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^ccmem: error \[[A-Z_]+\]: /);
  expect(lines[0]).toMatch(pattern);
}

describe('help', () => {
  it('--help lists every command with its description, and says hub ids work', async () => {
    const r = await ccmem('--help');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    for (const c of COMMANDS) {
      expect(
        lines.find((l) => l.startsWith(`  ${c.name} `) && l.endsWith(c.summary)),
        c.name,
      ).toBeDefined();
    }
    expect(r.stdout).toContain('--model DIR|URL|HUB_ID');
    expect(r.stdout).not.toMatch(/--model DIR\|URL /);
    expect(r.stdout).toContain('HF_ENDPOINT');
  });

  it('COMMAND --help lists every flag the command takes with a one-line description', async () => {
    for (const c of COMMANDS) {
      out = [];
      const r = await ccmem(...c.name.split(' '), '--help');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`usage: ccmem ${c.name} `);
      for (const name of c.flags) {
        const line = r.stdout
          .slice(r.stdout.indexOf('\nflags:\n'))
          .split('\n')
          .find((l) => l.trimStart().startsWith(`--${name} `) || l.trim() === `--${name}`);
        expect(line, `${c.name} --${name}`).toContain(FLAGS[name].description);
      }
    }
    for (const [name, flag] of Object.entries(FLAGS)) {
      expect(flag.description.length, name).toBeGreaterThan(10);
      expect(flag.description, name).not.toMatch(/\n/);
    }
  });

  it('no command prints the help on stderr and exits 2', async () => {
    const r = await ccmem();
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('commands:');
  });
});

describe('did you mean', () => {
  it('a mistyped flag names the closest flag of the command, in one line', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['generate', '--max-new-token', '5'],
        /unknown flag --max-new-token \(did you mean --max-new-tokens\?\); see ccmem generate --help/,
      ],
      [['generate', '--tempreature', '1'], /did you mean --temperature\?/],
      [['chat', '--turn', 'x.json'], /did you mean --turns\?/],
      [['convert', 'gguf', 'x', '--dtpye', 'f16'], /did you mean --dtype\?/],
      [
        ['logits', '--frobnicate'],
        /^ccmem: error \[INVALID_INPUT\]: unknown flag --frobnicate; see ccmem logits --help$/,
      ],
    ];
    for (const [argv, pattern] of cases) {
      err = [];
      const r = await ccmem(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expectOneErrorLine(r.stderr, pattern);
    }
  });

  it('a mistyped command names the closest command', async () => {
    const cases: [string[], RegExp][] = [
      [['generat'], /unknown command "generat" \(did you mean "generate"\?\)/],
      [['chta'], /did you mean "chat"\?/],
      [['memory-logit'], /did you mean "memory-logits"\?/],
      [['convert', 'llama2'], /unknown command "convert llama2"; try "convert llama2c", "convert gguf"/],
      [['convert'], /"convert" needs one of "convert llama2c", "convert gguf"/],
      [['frobnicate'], /^ccmem: error \[INVALID_INPUT\]: unknown command "frobnicate"; see ccmem --help$/],
    ];
    for (const [argv, pattern] of cases) {
      err = [];
      const r = await ccmem(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expectOneErrorLine(r.stderr, pattern);
    }
  });

  it('a flag value missing is one line too', async () => {
    const r = await ccmem('generate', '--model');
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, /--model.*see ccmem generate --help/);
  });

  it('suggest: cut-off names and small edit distances, nothing for unrelated words', () => {
    const flags = Object.keys(FLAGS);
    expect(suggest('max-new', flags)).toBe('max-new-tokens');
    expect(suggest('promt', flags)).toBe('prompt');
    expect(suggest('adpater', flags)).toBe('adapter');
    expect(suggest('zzz', flags)).toBeUndefined();
    expect(suggest('x', ['y'])).toBe('y');
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('ab', 'ba')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });
});

describe('files the CLI cannot read or write: one line, status 2 (issue 11, item 5)', () => {
  it('convert llama2c with a missing checkpoint or tokenizer', async () => {
    let r = await ccmem('convert', 'llama2c', '/nope.bin', '--out', join(work, 'out'));
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, /INVALID_INPUT.*checkpoint \/nope\.bin: no such file or folder/);
    const bin = join(work, 'model.bin');
    writeFileSync(bin, new Uint8Array(8));
    err = [];
    r = await ccmem('convert', 'llama2c', bin, '--tokenizer', '/nope-tok.bin', '--out', join(work, 'out'));
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, /--tokenizer \/nope-tok\.bin: no such file/);
    err = [];
    r = await ccmem('convert', 'llama2c', work, '--out', join(work, 'out'));
    expectOneErrorLine(r.stderr, /checkpoint .*: it is a folder, not a file/);
  });

  it('chat with a missing or invalid turns file (read before any GPU work)', async () => {
    let r = await ccmem('chat', '--model', work, '--memory', 'full', '--turns', '/nope.json');
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, /INVALID_INPUT.*--turns \/nope\.json: no such file or folder/);
    const bad = join(work, 'bad.json');
    writeFileSync(bad, '["Hi", ');
    err = [];
    r = await ccmem('chat', '--model', work, '--memory', 'full', '--turns', bad);
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, /--turns .*bad\.json: invalid JSON/);
  });

  it('convert gguf from a missing folder, and outputs that cannot be written', async () => {
    let r = await ccmem('convert', 'gguf', join(work, 'no-model'), '--out', join(work, 'x.gguf'));
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, /MODEL_FORMAT.*no-model: no such folder/);
    // a llama2c conversion into a folder whose path runs through a file
    const blocker = join(work, 'a-file');
    writeFileSync(blocker, 'x');
    const { FIXTURES } = await import('../helpers/stories.js');
    err = [];
    r = await ccmem('convert', 'llama2c', join(FIXTURES, 'stories260K/stories260K.bin'), '--out', join(blocker, 'sub'));
    expect(r.code).toBe(2);
    expectOneErrorLine(r.stderr, /--out .*a-file\/sub: (a part of the path is not a folder|a file of that name)/);
  });
});

describe('unexpected errors (a bug): one line, status 1', () => {
  const explode: Command = {
    name: 'explode',
    summary: 'a command that fails with a plain TypeError',
    usage: '',
    flags: [],
    run: async () => {
      throw new TypeError('x.y is undefined');
    },
  };

  it('main prints one line without the stack', async () => {
    (COMMANDS as Command[]).push(explode);
    try {
      const r = await ccmem('explode');
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('ccmem: internal error: TypeError: x.y is undefined (CCMEM_DEBUG=1 shows the stack)');
    } finally {
      (COMMANDS as Command[]).pop();
    }
  });

  it('CCMEM_DEBUG=1 prints the stack; a CcmemError is always one line with status 2', async () => {
    vi.stubEnv('CCMEM_DEBUG', '1');
    expect(reportError(new Error('boom'))).toBe(1);
    expect(err.join('\n')).toMatch(/boom[\s\S]*\n\s+at /);
    err = [];
    const { invalidInput } = await import('../../src/errors.js');
    expect(reportError(invalidInput('bad\nvalue'))).toBe(2);
    expect(err).toEqual(['ccmem: error [INVALID_INPUT]: bad value']);
  });
});

describe('flags that do nothing for a command', () => {
  it('say so on stderr', async () => {
    const r = await ccmem('convert', 'llama2c', '/nope.bin', '--out', join(work, 'o'), '--window', '4');
    expect(r.stderr.split('\n')[0]).toBe('ccmem: warning: --window has no effect on convert llama2c');
  });
});
