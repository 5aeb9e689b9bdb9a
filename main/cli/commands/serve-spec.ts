/** `rankwise serve`'s options: its parsing and its help (serve.ts runs it). */
import { COMMON, int, repeated, text, type CommandSpec } from '../args.ts';
import { DEFAULT_STATIC_DIR } from '../renderer-build.ts';

/** 0 lets the system choose a free port; the address printed says which. */
export const DEFAULT_PORT = 0;

export const SERVE_COMMAND = {
  name: 'serve',
  summary: 'the wizard in a browser: a local server, guarded by the token in its address',
  args: [],
  options: {
    port: int('P', 'listen on this port (0: a free port)', { min: 0, max: 65535, default: DEFAULT_PORT }),
    root: repeated('DIR', 'a folder the wizard may read and write in (repeat for more)', {
      defaultText: 'the current folder',
    }),
    static: text('DIR', 'serve this renderer build as it is', {
      defaultText: `${DEFAULT_STATIC_DIR} (built first when missing or older than its sources)`,
    }),
    ...COMMON,
  },
  examples: [
    'rankwise serve',
    'rankwise serve --port 8080 --root ~/models --root ~/data',
    'rankwise serve --json',
  ],
  notes: ['Ctrl-C stops the server.'],
} satisfies CommandSpec;
