/** `rankwise demo`'s options: its parsing and its help (demo.ts runs it). */
import { COMMON, text, type CommandSpec } from '../args.ts';

export const DEFAULT_DEMO_OUT = 'rankwise-demo';

export const DEMO_COMMAND = {
  name: 'demo',
  summary: 'the whole job on the bundled stories260K model: inspect, eval, compress, export',
  args: [],
  options: {
    out: text('DIR', 'write the export and its report here (a folder an earlier demo wrote is replaced)', {
      default: DEFAULT_DEMO_OUT,
    }),
    ...COMMON,
  },
  examples: ['rankwise demo', 'rankwise demo --out /tmp/rankwise-demo --json'],
} satisfies CommandSpec;
