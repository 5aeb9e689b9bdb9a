/**
 * `rankwise serve` as its own process, with the fake engine: what the serve tests signal. Exits as the
 * CLI would (main/cli/index.ts) once the command returns or fails.
 */
import { serveCommand } from '../../main/cli/commands/serve.ts';
import { toErrorInfo } from '../../main/core/errors.ts';
import { fakeApi } from './fake-api.ts';

try {
  await serveCommand(process.argv.slice(2), () => fakeApi());
  process.stderr.write('serve returned\n');
} catch (e) {
  process.stderr.write(`${toErrorInfo(e).message}\n`);
  process.exitCode = 2;
}
