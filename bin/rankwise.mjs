#!/usr/bin/env node
// The engine is TypeScript run through tsx's loader: one source of truth, no build step for the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../main/cli/index.ts');
const code = await main(process.argv.slice(2));
// Worker threads or native thread pools left idle must not keep a finished command (or a stopped
// server) alive; stdout and stderr are synchronous for files and pipes on POSIX, so nothing is lost.
process.exit(code);
