/** `--help`, written from the commands' option tables (args.ts), and `--version`, from package.json. */
import fs from 'node:fs';
import { optionLabel, usage, type CommandSpec, type Opt } from './args.ts';

/** The version in package.json, read when asked: the one place it is written. */
export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** What an option's absence means, as help says it. */
export function defaultOf(o: Opt<unknown>): string {
  if (o.defaultText !== undefined) return o.defaultText;
  if (o.default !== undefined) return Array.isArray(o.default) ? o.default.join(',') : String(o.default);
  return 'none';
}

/** What help's second line says of an option: what it takes, and its default (or that it is required). */
export function optionFacts(o: Opt<unknown>): string {
  return `${o.type}; ${o.required ? 'required' : `default: ${defaultOf(o)}`}`;
}

const INDENT = '  ';
/** Labels longer than this put their description on the next line instead of widening every row. */
const MAX_LABEL = 28;
/** Help is wrapped to the terminal, but never narrower than this nor wider than the widest that reads well. */
const MIN_WIDTH = 60;
const MAX_WIDTH = 100;

/** The width help is wrapped to: the terminal's (stdout's, where help goes), within bounds. */
export function helpWidth(columns = process.stdout.columns): number {
  return Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, columns || MAX_WIDTH));
}

/**
 * `text` in lines of at most `width` characters, the first starting with `first`, the rest with `rest`
 * (a hanging indent). "default: X" is never split, so a default always reads on one line.
 */
export function wrap(text: string, width: number, first: string, rest = first): string {
  const words = text.replace(/default: /g, 'default:\u00a0').split(' ');
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const w of words) {
    if (!empty && line.length + 1 + w.length > width) {
      lines.push(line);
      line = rest;
      empty = true;
    }
    line += `${empty ? '' : ' '}${w}`;
    empty = false;
  }
  lines.push(line);
  return lines.join('\n').replace(/\u00a0/g, ' ');
}

/**
 * One command's help: usage, arguments, the options by group (each with its value's name and a one-line
 * description, then what it takes and its default on the line below), notes and examples.
 */
export function commandHelp(spec: CommandSpec, width = helpWidth()): string {
  const entries = Object.entries(spec.options);
  const labels = entries.map(([name, o]) => optionLabel(name, o));
  const col = Math.min(
    MAX_LABEL,
    Math.max(...labels.map((l) => l.length), ...spec.args.map((a) => a.name.length)),
  );
  const pad = ' '.repeat(INDENT.length + col + 2);
  const row = (label: string, text: string) =>
    label.length <= col
      ? wrap(text, width, `${INDENT}${label.padEnd(col)}  `, pad)
      : `${INDENT}${label}\n${wrap(text, width, pad)}`;

  const out = [
    wrap(`rankwise ${spec.name} — ${spec.summary}`, width, ''),
    '',
    'Usage:',
    wrap(usage(spec), width, INDENT, `${INDENT}    `),
  ];
  if (spec.args.length > 0) {
    out.push('', 'Arguments:', ...spec.args.map((a) => row(a.name, a.help)));
  }
  const groups = new Map<string, string[]>();
  entries.forEach(([, o], i) => {
    const group = o.group ?? 'Options';
    const lines = groups.get(group) ?? [];
    lines.push(row(labels[i], o.help), wrap(optionFacts(o), width, pad));
    groups.set(group, lines);
  });
  for (const [group, lines] of groups) out.push('', `${group}:`, ...lines);
  if (spec.notes?.length) {
    // a note's continuation lines hang under its text, past a leading "  name  " column when it has one
    out.push(
      '',
      ...spec.notes.map((n) => wrap(n, width, '', ' '.repeat(/^ +\S+ +/.exec(n)?.[0].length ?? 0))),
    );
  }
  out.push('', 'Examples:', ...spec.examples.map((e) => `${INDENT}${e}`));
  return out.join('\n');
}

export const TOP_OPTIONS = {
  help: { short: 'h', text: 'print this help, or with a command its options (also: rankwise help COMMAND)' },
  version: { short: 'V', text: 'print the version' },
} as const;

/** `rankwise --help`: the commands, the global options, the exit codes. */
export function mainHelp(commands: readonly CommandSpec[], width = helpWidth()): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  const hang = ' '.repeat(INDENT.length + w + 2);
  return [
    wrap(
      `rankwise ${packageVersion()} — compress the KV cache of transformer language models with low-rank projections`,
      width,
      '',
    ),
    '',
    'Usage:',
    `${INDENT}rankwise COMMAND [arguments] [options]`,
    `${INDENT}rankwise help COMMAND      the command's options, their defaults, and examples`,
    '',
    'Commands:',
    ...commands.map((c) => wrap(c.summary, width, `${INDENT}${c.name.padEnd(w)}  `, hang)),
    '',
    'Options:',
    ...Object.entries(TOP_OPTIONS).map(([name, o]) =>
      wrap(o.text, width, `${INDENT}${`-${o.short}, --${name}`.padEnd(15)}`, ' '.repeat(INDENT.length + 15)),
    ),
    '',
    wrap(
      'Every command takes --json (one JSON document on stdout; progress goes to stderr) and -q/--quiet. ' +
        'Exit codes: 0 success, 2 bad input (the message names the file or option and the problem), ' +
        '1 internal failure, 130 stopped by Ctrl-C (a job is cancelled; rerun the command and its finished ' +
        'layers come from the cache). Jobs are kept in RANKWISE_HOME (default ~/.rankwise), beside those of ' +
        '`rankwise serve`.',
      width,
      '',
    ),
    '',
    'Examples:',
    `${INDENT}rankwise demo`,
    `${INDENT}rankwise inspect ../shared/testdata/stories260K-llama`,
    `${INDENT}rankwise help compress`,
  ].join('\n');
}
