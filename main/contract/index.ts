/**
 * main/contract: what crosses between the engine and its faces. The API manifest (manifest.ts: every
 * method, its argument schema, result and events), the schema language and its one validator (schema.ts),
 * every wire type (api.ts, model.ts, report.ts, try.ts) and the browser-mode frames (protocol.ts). It
 * imports main/core alone, so Electron's main process and preload, the server and the renderer all load it.
 */
export type { ErrorInfo, ErrorKind } from '../core/errors.ts';
export type { KeySpace, MethodId } from '../core/kv.ts';
export * from './api.ts';
export * from './manifest.ts';
export * from './model.ts';
export * from './protocol.ts';
export * from './report.ts';
export * from './schema.ts';
export * from './try.ts';
export type { TryRunResult as TryResult } from './try.ts';
