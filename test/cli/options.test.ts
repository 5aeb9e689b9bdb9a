/**
 * The option tables (main/cli/args.ts): parsing, each value's check, "did you mean", and the help written
 * from the same tables — every option listed with what it takes and its default, and examples that parse.
 */
import { describe, expect, it } from 'vitest';

import {
  choice,
  editDistance,
  flag,
  int,
  nearest,
  parseCommand,
  parseFraction,
  text,
  usage,
  type CommandSpec,
} from '../../main/cli/args.ts';
import { COMMANDS } from '../../main/cli/index.ts';
import { commandHelp, mainHelp, optionFacts } from '../../main/cli/help.ts';
import { COMPRESS_COMMAND } from '../../main/cli/commands/compress.ts';
import { DEFAULT_MAX_NEW_TOKENS, GENERATE_COMMAND } from '../../main/cli/commands/generate.ts';
import { EVAL_COMMAND } from '../../main/cli/commands/eval.ts';
import { DEFAULT_TRAIN_WINDOWS, STIEF_DEFAULTS } from '../../main/methods/stief-settings.ts';
import { runCli } from '../helpers/cli.ts';
import { badInputFrom } from '../helpers/errors.ts';

const TOY = {
  name: 'toy',
  summary: 'a command for tests',
  args: [{ name: 'DIR', help: 'a folder' }],
  options: {
    size: int('N', 'how many', { min: 2, default: 8 }),
    mode: choice('MODE', ['fast', 'slow'] as const, 'how'),
    name: text('TEXT', 'a name', { required: true }),
    verbose: flag('talk', { short: 'v' }),
  },
  examples: ['rankwise toy d --name x'],
} satisfies CommandSpec;

/** The bad-input message a call throws. */
const refusal = (f: () => unknown): string => badInputFrom(f).message;

/** A command line as a shell splits it (double quotes only: what the examples use). */
const words = (line: string) => [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);

describe('parseCommand', () => {
  it('gives typed values, defaults from the table, and the positionals', () => {
    const { values, positionals } = parseCommand(['d', '--name', 'x', '-v', '--mode=slow'], TOY);
    expect(positionals).toEqual(['d']);
    expect(values).toEqual({ size: 8, mode: 'slow', name: 'x', verbose: true });
    const given = parseCommand(['d', '--name', 'x', '--size', '3'], TOY).values;
    expect(given).toMatchObject({ size: 3, verbose: false });
    expect(given.mode).toBeUndefined();
  });

  it('takes a value that starts with "-" and lets its check refuse it, naming the option', () => {
    expect(refusal(() => parseCommand(['d', '--name', 'x', '--size', '-1'], TOY))).toBe(
      '--size must be an integer ≥ 2, got "-1"',
    );
  });

  it.each([
    [['d', '--name', 'x', '--sise', '3'], 'unknown option --sise; did you mean --size?'],
    [['d', '--name', 'x', '--nmae', 'y'], 'unknown option --nmae; did you mean --name?'],
    [['d', '--name', 'x', '--bogus'], 'unknown option --bogus; rankwise toy --help lists the options'],
    [
      ['d', '--name', 'x', '--mode', 'fats'],
      '--mode must be one of fast, slow, got "fats"; did you mean fast?',
    ],
    [['d', '--name'], '--name needs a value (TEXT)'],
    [['d', '--name', 'x', '--verbose=yes'], '--verbose takes no value, got "yes"'],
    [
      ['--name', 'x'],
      'missing DIR; usage: rankwise toy DIR --name TEXT [options] (rankwise toy --help says more)',
    ],
    [['d', 'e', '--name', 'x'], 'unexpected arguments: e; usage: rankwise toy DIR --name TEXT [options]'],
    [['d'], 'missing --name TEXT; usage:'],
  ])('%j is refused: %s', (argv, message) => {
    expect(refusal(() => parseCommand(argv, TOY))).toContain(message);
  });

  it('reads everything after -- as arguments', () => {
    expect(parseCommand(['--name', 'x', '--', '--size'], TOY).positionals).toEqual(['--size']);
  });
});

describe('--kv-fraction', () => {
  it.each([
    ['0.5', 0.5],
    ['50%', 0.5],
    [' 50 % ', 0.5],
    ['12.5%', 0.125],
    ['100%', 1],
    ['1', 1],
    ['.25', 0.25],
  ])('%j is %f', (raw, value) => {
    expect(parseFraction(raw, '--kv-fraction')).toBeCloseTo(value, 12);
  });

  it('50% reaches the job as 0.5', () => {
    const argv = ['m', '--calib', 'c', '--eval', 'e', '--method', 'kqsvd', '--kv-fraction', '50%'];
    expect(parseCommand(argv, COMPRESS_COMMAND).values['kv-fraction']).toBe(0.5);
  });

  it.each(['150%', '-1', 'abc', '0', '0%', '', '1.5', '0x1', '50%%', '1e3%'])('%j is refused', (raw) => {
    expect(refusal(() => parseFraction(raw, '--kv-fraction'))).toBe(
      `--kv-fraction must be in (0, 1] (a fraction such as 0.5, or a percentage such as 50%), got "${raw}"`,
    );
  });
});

describe('did you mean', () => {
  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('fractoin', 'fraction')).toBe(1);
    expect(editDistance('kv-fraction', 'kv-fraction')).toBe(0);
    expect(editDistance('windwos', 'window')).toBe(2);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests the nearest within two edits, else the one option that contains it, else nothing', () => {
    const known = ['--kv-fraction', '--k-rank', '--v-rank', '--window', '--calib-windows', '-q'];
    expect(nearest('--kv-fractoin', known)).toBe('--kv-fraction');
    expect(nearest('--kvfraction', known)).toBe('--kv-fraction');
    expect(nearest('--krank', known)).toBe('--k-rank');
    expect(nearest('--fraction', known)).toBe('--kv-fraction');
    expect(nearest('--windows', known)).toBe('--window');
    expect(nearest('--temperature', known)).toBeUndefined();
    // one letter is one edit from every other letter
    expect(nearest('-x', known)).toBeUndefined();
  });
});

describe('the tables', () => {
  it.each(COMMANDS.map((c) => [c.spec.name, c.spec] as const))(
    '%s: names, either-or sets and usage agree',
    (_, spec) => {
      for (const name of spec.oneOf?.flat(2) ?? []) expect(spec.options).toHaveProperty(name);
      for (const [, name] of usage(spec).matchAll(/--([\w-]+)/g)) expect(spec.options).toHaveProperty(name);
      for (const o of Object.values(spec.options)) {
        expect(o.help).not.toContain('\n');
        expect(o.type.length).toBeGreaterThan(0);
      }
      // a default in the table must pass the table's own check
      for (const [name, o] of Object.entries(spec.options)) {
        if (o.default !== undefined && o.arg && !Array.isArray(o.default)) {
          expect(o.read(String(o.default), `--${name}`)).toEqual(o.default);
        }
      }
    },
  );
});

describe('--help', () => {
  it.each(COMMANDS.map((c) => [c.spec.name, c.spec] as const))(
    '%s lists every option with what it takes and its default, and examples that parse',
    (name, spec) => {
      // wide enough that nothing wraps, so each option's facts are one line to find
      const help = commandHelp(spec, 1000);
      const lines = help.split('\n');
      for (const [option, o] of Object.entries(spec.options)) {
        const at = lines.findIndex((l) => new RegExp(`^ {2}(-\\w, )?--${option}\\b`).test(l));
        expect(at, `--${option} in ${name}'s help`).toBeGreaterThanOrEqual(0);
        if (o.arg) expect(lines[at]).toContain(`--${option} ${o.arg}`);
        expect(help).toContain(optionFacts(o));
        expect(optionFacts(o)).toMatch(o.required ? /; required$/ : /; default: \S/);
      }
      // at 100 columns only the examples (lines to paste) may be longer
      for (const l of commandHelp(spec, 100).split('\n')) {
        if (!/^ {2}rankwise /.test(l)) expect(l.length, l).toBeLessThanOrEqual(100);
      }
      const examples = spec.examples.map(words);
      expect(examples.length).toBeGreaterThan(0);
      for (const e of examples) {
        expect(e.slice(0, 2)).toEqual(['rankwise', name]);
        expect(() => parseCommand(e.slice(2), spec)).not.toThrow();
      }
    },
  );

  it('says the defaults the code uses, from the same constants', () => {
    const compress = commandHelp(COMPRESS_COMMAND, 100);
    expect(compress).toMatch(/--window N .*\n.*integer ≥ 2; default: 512\n/);
    expect(compress).toContain(`default: ${STIEF_DEFAULTS.steps}`);
    expect(compress).toContain(`default: ${STIEF_DEFAULTS.lr}`);
    expect(compress).toContain(`default: ${DEFAULT_TRAIN_WINDOWS}`);
    expect(compress).toMatch(/--kv-fraction F .*\n.*0\.5 or 50%; default: none/);
    expect(commandHelp(EVAL_COMMAND, 100)).toMatch(/--device NAME .*\n.*; default: cpu\n/);
    expect(commandHelp(GENERATE_COMMAND, 100)).toContain(`default: ${DEFAULT_MAX_NEW_TOKENS}`);
    // and the parser applies them
    expect(parseCommand(['m', '--data', 'f'], EVAL_COMMAND).values).toMatchObject({
      window: 512,
      device: 'cpu',
    });
  });

  it('rankwise --help lists every command', () => {
    const lines = mainHelp(COMMANDS.map((c) => c.spec)).split('\n');
    for (const c of COMMANDS) {
      expect(lines.find((l) => l.startsWith(`  ${c.spec.name} `))?.trim()).toMatch(
        new RegExp(`^${c.spec.name} +${c.spec.summary.split(' ')[0]}`),
      );
    }
  });

  it.each([
    [['compress', '--help']],
    [['compress', '-h']],
    [['help', 'compress']],
    // help wins over whatever else is wrong with the line
    [['compress', '--kv-fractoin', '2', '--help']],
  ])('%j prints the command help on stdout and exits 0', async (argv) => {
    const r = await runCli(argv);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${commandHelp(COMPRESS_COMMAND)}\n`);
    expect(r.stderr).toBe('');
  });

  it('help of an unknown command suggests the nearest (exit 2)', async () => {
    const r = await runCli(['help', 'compres']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('rankwise: unknown command "compres"; did you mean "compress"?\n');
  });

  it('-- --help is an argument, not a request for help', async () => {
    const r = await runCli(['inspect', 'a', '--', '--help']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^rankwise inspect: unexpected arguments: --help;/);
  });

  it('no command at all prints the help on stderr and exits 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^rankwise \d+\.\d+\.\d+ — /);
  });

  it.each([
    [['--verison'], 'rankwise: unknown option --verison; did you mean --version?'],
    [['frobnicate'], 'rankwise: unknown command "frobnicate"; try one of inspect, eval, compress'],
    [
      ['compress', 'm', '--kv-fractoin', '0.5'],
      'rankwise compress: unknown option --kv-fractoin; did you mean --kv-fraction?',
    ],
  ])('%j: %s (exit 2)', async (argv, message) => {
    const r = await runCli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toContain(message);
  });
});
