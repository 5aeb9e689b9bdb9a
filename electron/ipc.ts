/**
 * The main-process side of the desktop bridge: one `ipcMain.handle` per request method of RankwiseApi,
 * plus subscribe/unsubscribe for job events. Every message is checked before the engine sees it: the
 * sender must be the main frame of one of our windows showing the app's own origin, the payload must
 * have the method's shape, and every path in it must be one the user chose in a dialog.
 *
 * Electron is typed structurally here (and imported as types only) so the module loads in plain Node.
 */
import type { JobEvent, PathPurpose, RankwiseApi, RequestMethod, Unsubscribe } from '../main/api/contract.ts';
import { badInput, toErrorInfo } from '../main/api/errors.ts';
import {
  EVENT_CHANNEL,
  REQUEST_METHODS,
  SUBSCRIBE_CHANNEL,
  SUBSCRIPTION_ID_PATTERN,
  UNSUBSCRIBE_CHANNEL,
  channelOf,
  type IpcEnvelope,
} from './channels.ts';
import type { PathAccess, PathRegistry } from './path-registry.ts';

export interface FrameLike {
  readonly url: string;
  readonly parent: unknown;
}

/** The parts of a `WebContents` the bridge uses. */
export interface SenderLike {
  readonly id: number;
  readonly mainFrame?: FrameLike;
  send(channel: string, ...args: unknown[]): void;
  isDestroyed(): boolean;
  once(event: 'destroyed', listener: () => void): unknown;
  on(event: 'did-navigate', listener: () => void): unknown;
  removeListener(event: 'destroyed' | 'did-navigate', listener: () => void): unknown;
}

export interface InvokeEventLike {
  readonly sender: SenderLike;
  readonly senderFrame: FrameLike | null;
}

export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

export interface IpcOptions {
  /** Scheme and host the app is served from, e.g. 'app://rankwise'. */
  allowedOrigin: string;
  paths: PathRegistry;
  /** The webContents of the app's own windows; messages from any other are refused. */
  windows: () => readonly SenderLike[];
}

/** Thrown (so the renderer's invoke rejects) when a message does not come from the app's own page. */
export class UntrustedSenderError extends Error {
  constructor(reason: string) {
    super(`rankwise: IPC refused: ${reason}`);
    this.name = 'UntrustedSenderError';
  }
}

interface PathUse {
  path: string;
  access: PathAccess;
}

/** Checks a method's arguments and returns the paths in them, for the registry to vet. */
type Validator = (args: unknown[]) => PathUse[];

const MAX_STRING = 4096;
const PURPOSES: readonly PathPurpose[] = ['model', 'data', 'export'];
const BUILTIN_SOURCES: readonly string[] = ['demo-calibration', 'demo-evaluation'];

function argCount(method: string, args: unknown[], min: number, max: number): void {
  // structured clone keeps trailing undefineds: `browse(undefined)` arrives as one argument
  let n = args.length;
  while (n > min && args[n - 1] === undefined) n--;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw badInput(`${method}: expected ${want} argument(s), got ${args.length}`);
  }
}

function text(method: string, value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_STRING) {
    throw badInput(`${method}: ${what} must be a non-empty string`);
  }
  return value;
}

function record(method: string, value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badInput(`${method}: ${what} must be an object`);
  }
  return value as Record<string, unknown>;
}

function finite(method: string, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw badInput(`${method}: ${what} must be a number`);
  return value;
}

function source(method: string, value: unknown, what: string): PathUse[] {
  const src = record(method, value, what);
  // a path wins over a built-in name, so an object carrying both is vetted by its path
  if (src.path === undefined) {
    if (!BUILTIN_SOURCES.includes(src.builtin as string)) throw badInput(`${method}: ${what} names no file`);
    return [];
  }
  return [{ path: text(method, src.path, `${what}.path`), access: 'read' }];
}

function settings(method: string, value: unknown): PathUse[] {
  const s = record(method, value, 'settings');
  text(method, s.method, 'settings.method');
  return [
    { path: text(method, s.model, 'settings.model'), access: 'read' },
    ...source(method, s.calib, 'settings.calib'),
    ...source(method, s.eval, 'settings.eval'),
  ];
}

function jobIdOnly(method: string): Validator {
  return (args) => {
    argCount(method, args, 1, 1);
    text(method, args[0], 'job id');
    return [];
  };
}

const VALIDATORS: Record<RequestMethod, Validator> = {
  inspect: (args) => {
    argCount('inspect', args, 1, 1);
    return [{ path: text('inspect', args[0], 'model folder'), access: 'read' }];
  },
  previewData: (args) => {
    argCount('previewData', args, 1, 1);
    const req = record('previewData', args[0], 'request');
    finite('previewData', req.window, 'request.window');
    return [
      { path: text('previewData', req.model, 'request.model'), access: 'read' },
      ...source('previewData', req.source, 'request.source'),
    ];
  },
  estimate: (args) => {
    argCount('estimate', args, 1, 1);
    return settings('estimate', args[0]);
  },
  startJob: (args) => {
    argCount('startJob', args, 1, 1);
    return settings('startJob', args[0]);
  },
  cancelJob: jobIdOnly('cancelJob'),
  resumeJob: jobIdOnly('resumeJob'),
  getResult: jobIdOnly('getResult'),
  getExportReport: jobIdOnly('getExportReport'),
  reallocate: (args) => {
    argCount('reallocate', args, 1, 1);
    text('reallocate', record('reallocate', args[0], 'request').jobId, 'request.jobId');
    return [];
  },
  exportJob: (args) => {
    argCount('exportJob', args, 1, 1);
    const req = record('exportJob', args[0], 'request');
    text('exportJob', req.jobId, 'request.jobId');
    if (req.force !== undefined && typeof req.force !== 'boolean') {
      throw badInput('exportJob: request.force must be a boolean');
    }
    return [{ path: text('exportJob', req.out, 'request.out'), access: 'write' }];
  },
  startTry: (args) => {
    argCount('startTry', args, 1, 1);
    const req = record('startTry', args[0], 'request');
    if (typeof req.prompt !== 'string') throw badInput('startTry: request.prompt must be a string');
    const uses: PathUse[] = [];
    for (const [key, value] of [
      ['model', req.model],
      ['compare', req.compare],
    ] as const) {
      if (value === undefined && key === 'compare') continue;
      const m = record('startTry', value, `request.${key}`);
      if (m.dir !== undefined)
        uses.push({ path: text('startTry', m.dir, `request.${key}.dir`), access: 'read' });
      else text('startTry', m.jobId, `request.${key}.jobId`);
    }
    return uses;
  },
  getTryResult: jobIdOnly('getTryResult'),
  listJobs: (args) => {
    argCount('listJobs', args, 0, 0);
    return [];
  },
  choosePath: (args) => {
    argCount('choosePath', args, 1, 1);
    if (!PURPOSES.includes(args[0] as PathPurpose)) {
      throw badInput(`choosePath: purpose must be one of ${PURPOSES.join(', ')}`);
    }
    return [];
  },
  browse: (args) => {
    argCount('browse', args, 0, 1);
    if (args[0] === undefined) return [];
    return [{ path: text('browse', args[0], 'folder'), access: 'read' }];
  },
};

/** `scheme://host`, lower-cased; Node gives non-special schemes such as app: an opaque 'null' origin. */
export function originOf(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (!parsed.host || parsed.username || parsed.password) return null;
  return `${parsed.protocol}//${parsed.host}`.toLowerCase();
}

function fail(e: unknown): IpcEnvelope<never> {
  return { ok: false, error: toErrorInfo(e) };
}

/**
 * Registers every handler and returns a function that removes them and ends every subscription
 * (for app shutdown and tests).
 */
export function registerIpc(ipcMain: IpcMainLike, api: RankwiseApi, opts: IpcOptions): () => void {
  const allowedOrigin = originOf(opts.allowedOrigin);
  if (allowedOrigin === null) throw new Error(`registerIpc: '${opts.allowedOrigin}' is not an origin`);

  const assertTrusted = (event: InvokeEventLike): void => {
    const frame = event.senderFrame;
    if (!frame) throw new UntrustedSenderError('the sending frame is gone or unknown');
    const sender = event.sender;
    // the app never embeds frames; a subframe is content the app did not write
    if (frame.parent !== null || (sender.mainFrame !== undefined && sender.mainFrame !== frame)) {
      throw new UntrustedSenderError('the sender is not the main frame');
    }
    const origin = originOf(frame.url);
    if (origin !== allowedOrigin) {
      throw new UntrustedSenderError(
        `the sender's origin ${origin ?? `of '${frame.url}'`} is not ${allowedOrigin}`,
      );
    }
    if (!opts.windows().some((w) => w.id === sender.id)) {
      throw new UntrustedSenderError('the sender is not a Rankwise window');
    }
  };

  const vet = (uses: PathUse[]): void => {
    for (const use of uses) {
      if (!opts.paths.allows(use.path, use.access)) {
        const how = use.access === 'write' ? 'as an export folder ' : '';
        throw badInput(`was not chosen ${how}in a file dialog in this session; choose it again`, use.path);
      }
    }
  };

  const channels: string[] = [];
  const handle = (
    channel: string,
    listener: (event: InvokeEventLike, ...args: unknown[]) => unknown,
  ): void => {
    ipcMain.handle(channel, listener);
    channels.push(channel);
  };

  for (const method of REQUEST_METHODS) {
    const validate = VALIDATORS[method];
    const call = api[method] as (...args: unknown[]) => Promise<unknown>;
    handle(channelOf(method), async (event, ...args): Promise<IpcEnvelope<unknown>> => {
      assertTrusted(event);
      try {
        vet(validate(args));
        return { ok: true, value: await call.apply(api, args) };
      } catch (e) {
        return fail(e);
      }
    });
  }

  interface SenderSubscriptions {
    subs: Map<string, Unsubscribe>;
    detach: () => void;
  }
  const bySender = new Map<number, SenderSubscriptions>();

  const stopQuietly = (stop: Unsubscribe): void => {
    try {
      stop();
    } catch {
      // the page is gone or moving on; an engine that fails to forget a listener must not stop the rest
    }
  };

  const dropSender = (id: number): void => {
    const entry = bySender.get(id);
    if (!entry) return;
    bySender.delete(id);
    entry.detach();
    for (const stop of entry.subs.values()) stopQuietly(stop);
  };

  const subscriptionsOf = (sender: SenderLike): SenderSubscriptions => {
    const existing = bySender.get(sender.id);
    if (existing) return existing;
    const drop = (): void => dropSender(sender.id);
    sender.once('destroyed', drop);
    // a reload or navigation starts a new page whose preload knows none of the old subscriptions
    sender.on('did-navigate', drop);
    const entry: SenderSubscriptions = {
      subs: new Map(),
      detach: () => {
        sender.removeListener('destroyed', drop);
        sender.removeListener('did-navigate', drop);
      },
    };
    bySender.set(sender.id, entry);
    return entry;
  };

  handle(SUBSCRIBE_CHANNEL, (event, ...args): IpcEnvelope<string> => {
    assertTrusted(event);
    try {
      argCount('subscribe', args, 2, 2);
      const jobId = text('subscribe', args[0], 'job id');
      const subscriptionId = args[1];
      if (typeof subscriptionId !== 'string' || !SUBSCRIPTION_ID_PATTERN.test(subscriptionId)) {
        throw badInput('subscribe: malformed subscription id');
      }
      const { sender } = event;
      const entry = subscriptionsOf(sender);
      if (entry.subs.has(subscriptionId)) throw badInput(`subscribe: ${subscriptionId} is already in use`);
      let live = true;
      // the engine may call the listener before subscribe returns (the job's current state)
      const unsubscribe = api.subscribe(jobId, (jobEvent: JobEvent) => {
        if (live && !sender.isDestroyed()) sender.send(EVENT_CHANNEL, subscriptionId, jobEvent);
      });
      entry.subs.set(subscriptionId, () => {
        live = false;
        unsubscribe();
      });
      return { ok: true, value: subscriptionId };
    } catch (e) {
      return fail(e);
    }
  });

  handle(UNSUBSCRIBE_CHANNEL, (event, ...args): IpcEnvelope<void> => {
    assertTrusted(event);
    try {
      argCount('unsubscribe', args, 1, 1);
      const subscriptionId = text('unsubscribe', args[0], 'subscription id');
      // only the page that subscribed can end it; an unknown id is already ended
      const entry = bySender.get(event.sender.id);
      const stop = entry?.subs.get(subscriptionId);
      if (entry && stop) {
        entry.subs.delete(subscriptionId);
        stop();
      }
      return { ok: true, value: undefined };
    } catch (e) {
      return fail(e);
    }
  });

  return () => {
    for (const channel of channels) ipcMain.removeHandler(channel);
    for (const id of [...bySender.keys()]) dropSender(id);
  };
}
