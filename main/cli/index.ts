import { isUserError, RankwiseError, toErrorInfo } from '../core/errors.ts';
import { nearest, wantsHelp, type CommandSpec } from './args.ts';
import { inFlags } from './flags.ts';
import { evalCommand, EVAL_COMMAND } from './commands/eval.ts';
import { inspectCommand, INSPECT_COMMAND } from './commands/inspect.ts';
import { demoCommand } from './commands/demo.ts';
import { DEMO_COMMAND } from './commands/demo-spec.ts';
import { compressCommand, COMPRESS_COMMAND } from './commands/compress.ts';
import { exportCommand, EXPORT_COMMAND } from './commands/export.ts';
import { generateCommand, GENERATE_COMMAND } from './commands/generate.ts';
import { serveCommand } from './commands/serve.ts';
import { SERVE_COMMAND } from './commands/serve-spec.ts';
import { openEngine } from './engine-client.ts';
import { commandHelp, mainHelp, packageVersion, TOP_OPTIONS } from './help.ts';
import { clearProgress, setPlainProgress } from './output.ts';

interface Command {
  spec: CommandSpec;
  run: (argv: string[]) => Promise<unknown>;
}

/** In the order `rankwise --help` lists them: a model's card, then the work, then the app. */
export const COMMANDS: readonly Command[] = [
  { spec: INSPECT_COMMAND, run: inspectCommand },
  { spec: EVAL_COMMAND, run: evalCommand },
  { spec: COMPRESS_COMMAND, run: compressCommand },
  { spec: EXPORT_COMMAND, run: exportCommand },
  { spec: GENERATE_COMMAND, run: generateCommand },
  { spec: SERVE_COMMAND, run: (argv) => serveCommand(argv, openEngine) },
  { spec: DEMO_COMMAND, run: demoCommand },
];

const find = (name: string) => COMMANDS.find((c) => c.spec.name === name);

function unknownCommand(name: string): number {
  const names = COMMANDS.map((c) => c.spec.name);
  const near = nearest(name, names);
  process.stderr.write(
    `rankwise: unknown command "${name}"; ${near ? `did you mean "${near}"?` : `try one of ${names.join(', ')}`}\n`,
  );
  return 2;
}

const TOP_SPELLINGS = Object.entries(TOP_OPTIONS).flatMap(([name, o]) => [`--${name}`, `-${o.short}`]);

/** Runs one CLI invocation and returns its exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const specs = COMMANDS.map((c) => c.spec);
  if (name === undefined) {
    // no command is a usage error: the help goes where errors go
    process.stderr.write(`${mainHelp(specs)}\n`);
    return 2;
  }
  if (name === '--help' || name === '-h') {
    process.stdout.write(`${mainHelp(specs)}\n`);
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (name === 'help') {
    if (rest.length === 0) {
      process.stdout.write(`${mainHelp(specs)}\n`);
      return 0;
    }
    const command = find(rest[0]);
    if (!command) return unknownCommand(rest[0]);
    process.stdout.write(`${commandHelp(command.spec)}\n`);
    return 0;
  }
  if (name.startsWith('-')) {
    const near = nearest(name, TOP_SPELLINGS);
    process.stderr.write(
      `rankwise: unknown option ${name}; ${near ? `did you mean ${near}?` : 'a command comes first (rankwise --help lists them)'}\n`,
    );
    return 2;
  }
  const command = find(name);
  if (!command) return unknownCommand(name);
  if (wantsHelp(rest)) {
    process.stdout.write(`${commandHelp(command.spec)}\n`);
    return 0;
  }
  const json = rest.includes('--json');
  setPlainProgress(json);
  try {
    await command.run(rest);
    return 0;
  } catch (e) {
    clearProgress();
    const info = inFlags(toErrorInfo(e));
    if (json) process.stdout.write(`${JSON.stringify({ error: info })}\n`);
    process.stderr.write(`rankwise ${name}: ${info.message.split('\n')[0]}\n`);
    if (!isUserError(e) && e instanceof Error && e.stack && process.env.RANKWISE_DEBUG) {
      process.stderr.write(`${e.stack}\n`);
    }
    // 130: what a shell reports for a command Ctrl-C stopped, which is what a cancelled job was
    const cancelled = e instanceof RankwiseError && e.kind === 'cancelled';
    return isUserError(e) ? 2 : cancelled ? 130 : 1;
  } finally {
    clearProgress();
    setPlainProgress(false);
  }
}
