import { isUserError, RankwiseError, toErrorInfo } from '../core/errors.ts';
import { evalCommand, EVAL_USAGE } from './commands/eval.ts';
import { inspectCommand, INSPECT_USAGE } from './commands/inspect.ts';
import { demoCommand, DEMO_USAGE } from './commands/demo.ts';
import { compressCommand, COMPRESS_USAGE } from './commands/compress.ts';
import { exportCommand, EXPORT_USAGE } from './commands/export.ts';
import { generateCommand, GENERATE_USAGE } from './commands/generate.ts';
import { serveCommand, SERVE_USAGE } from './commands/serve.ts';
import { openEngine } from './engine-client.ts';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<unknown>; usage: string }> = {
  inspect: { run: inspectCommand, usage: INSPECT_USAGE },
  eval: { run: evalCommand, usage: EVAL_USAGE },
  compress: { run: compressCommand, usage: COMPRESS_USAGE },
  export: { run: exportCommand, usage: EXPORT_USAGE },
  generate: { run: generateCommand, usage: GENERATE_USAGE },
  serve: {
    run: (argv) => serveCommand(argv, openEngine),
    usage: SERVE_USAGE,
  },
  demo: { run: demoCommand, usage: DEMO_USAGE },
};

const HELP = `rankwise — compress the KV cache of transformer language models with low-rank projections

Commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join('\n')}

Every command takes --json (one JSON document on stdout; progress goes to stderr).
Exit codes: 0 success, 2 bad input (the message names the file and the problem), 1 internal failure,
130 stopped by Ctrl-C (a job is cancelled; rerun the command and its finished layers come from the cache).
Jobs are kept in RANKWISE_HOME (default ~/.rankwise), beside those of \`rankwise serve\`.`;

/** Runs one CLI invocation and returns its exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${HELP}\n`);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(
      `rankwise: unknown command "${name}"; try one of ${Object.keys(COMMANDS).join(', ')}\n`,
    );
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${command.usage}\n`);
    return 0;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (e) {
    const info = toErrorInfo(e);
    if (rest.includes('--json')) process.stdout.write(`${JSON.stringify({ error: info })}\n`);
    process.stderr.write(`rankwise ${name}: ${info.message.split('\n')[0]}\n`);
    if (!isUserError(e) && e instanceof Error && e.stack && process.env.RANKWISE_DEBUG) {
      process.stderr.write(`${e.stack}\n`);
    }
    // 130: what a shell reports for a command Ctrl-C stopped, which is what a cancelled job was
    const cancelled = e instanceof RankwiseError && e.kind === 'cancelled';
    return isUserError(e) ? 2 : cancelled ? 130 : 1;
  }
}
