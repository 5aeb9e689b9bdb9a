/**
 * The main-process side of the desktop bridge: one `ipcMain.handle` per request method of the manifest
 * (main/contract), plus subscribe/unsubscribe for job events. Every message is checked before the engine
 * sees it: the sender must be the main frame of one of our windows showing the app's own origin, the
 * payload must pass the manifest's schema (`checkCall`), and every path in it must be one the user chose
 * in a dialog, for the access its role needs (resolved to its real path, which is what the engine is then
 * given).
 *
 * Electron is typed structurally here (and imported as types only) so the module loads in plain Node.
 */
import {
  checkCall,
  pathFields,
  type JobEvent,
  type JobId,
  type RankwiseApi,
  type RequestMethod,
  type Unsubscribe,
} from '../main/contract/index.ts';
import { badInput, toErrorInfo } from '../main/core/errors.ts';
import {
  EVENT_CHANNEL,
  REQUEST_METHODS,
  SUBSCRIBE_CHANNEL,
  SUBSCRIPTION_ID_PATTERN,
  UNSUBSCRIBE_CHANNEL,
  channelOf,
  type IpcEnvelope,
} from './channels.ts';
import type { PathRegistry } from './path-registry.ts';

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

/** subscribe and unsubscribe are the bridge's own: their argument counts are checked here. */
function argCount(method: string, args: unknown[], min: number, max: number): void {
  // structured clone keeps trailing undefineds
  let n = args.length;
  while (n > min && args[n - 1] === undefined) n--;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw badInput(`${method}: expected ${want} argument(s), got ${args.length}`);
  }
}

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

  /**
   * The call's arguments checked against the manifest's schema, with every path in them vetted against
   * the dialogs' picks (for writing, an export folder) and replaced by the real path the registry resolved.
   */
  const vet = (method: RequestMethod, args: unknown[]): unknown[] => {
    const checked = checkCall(method, args);
    for (const field of pathFields(method, checked)) {
      const real = opts.paths.resolve(field.path, field.access);
      if (real === null) {
        const how = field.access === 'write' ? 'as an export folder ' : '';
        throw badInput(`was not chosen ${how}in a file dialog in this session; choose it again`, field.path);
      }
      field.replace(real);
    }
    return checked;
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
    const call = api[method] as (...args: unknown[]) => Promise<unknown>;
    handle(channelOf(method), async (event, ...args): Promise<IpcEnvelope<unknown>> => {
      assertTrusted(event);
      try {
        return { ok: true, value: await call.apply(api, vet(method, args)) };
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
      const [jobId] = checkCall('subscribe', [args[0]]) as [JobId];
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
      const subscriptionId = args[0];
      if (typeof subscriptionId !== 'string' || !SUBSCRIPTION_ID_PATTERN.test(subscriptionId)) {
        throw badInput('unsubscribe: malformed subscription id');
      }
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
