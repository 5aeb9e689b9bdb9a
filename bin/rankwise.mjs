#!/usr/bin/env node
// The engine is TypeScript run through tsx's loader: one source of truth, no build step for the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../main/cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
