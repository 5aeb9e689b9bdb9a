/**
 * Runs the real CLI (`node bin/rankwise.mjs …`) as a child process and measures it: exit code, stdout,
 * stderr, wall time and peak resident memory. Peak RSS comes from `/usr/bin/time -f %M` when it exists,
 * else from polling the child's VmHWM in /proc. A child that runs past its limit is killed with its
 * whole process group and reported as timed out.
 *
 * `asUser` runs the child under another uid/gid (only possible as root): how the tests get real EACCES
 * errors on a machine whose tests run as root, who may read anything.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/paths.ts';

export const BIN = path.join(REPO_ROOT, 'bin', 'rankwise.mjs');
const GNU_TIME = '/usr/bin/time';
/** RANKWISE_NO_GNU_TIME=1 exercises the /proc fallback on a machine that has GNU time. */
export const HAVE_GNU_TIME = fs.existsSync(GNU_TIME) && !process.env.RANKWISE_NO_GNU_TIME;

export interface ChildResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Peak resident set size in KiB, or null when it could not be measured. */
  peakRssKb: number | null;
  timedOut: boolean;
}

export interface ChildUser {
  uid: number;
  gid: number;
  /** A HOME the user may write (onnxruntime and tsx keep small caches there). */
  home: string;
}

export interface RunOptions {
  timeoutMs?: number;
  asUser?: ChildUser;
}

let seq = 0;

export function runRankwise(args: string[], opts: RunOptions = {}): Promise<ChildResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  // /usr/bin/time writes its report as the child's user: the sticky, world-writable temp folder suits all
  const rssFile = path.join(os.tmpdir(), `rankwise-rss-${process.pid}-${seq++}-${Date.now()}.txt`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.RANKWISE_DEBUG;
  delete env.NODE_OPTIONS;
  if (opts.asUser) {
    env.HOME = opts.asUser.home;
    env.XDG_CACHE_HOME = path.join(opts.asUser.home, '.cache');
  }
  const [cmd, cmdArgs] = HAVE_GNU_TIME
    ? [GNU_TIME, ['-f', '%M', '-o', rssFile, process.execPath, BIN, ...args]]
    : [process.execPath, [BIN, ...args]];
  const start = performance.now();
  const child = spawn(cmd, cmdArgs, {
    cwd: REPO_ROOT,
    env,
    detached: true, // its own process group, so a timeout kills node under /usr/bin/time too
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.asUser ? { uid: opts.asUser.uid, gid: opts.asUser.gid } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));

  let polledKb: number | null = null;
  const poll = HAVE_GNU_TIME
    ? null
    : setInterval(() => {
        try {
          const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
          const m = /VmHWM:\s+(\d+) kB/.exec(status);
          if (m) polledKb = Math.max(polledKb ?? 0, Number(m[1]));
        } catch {
          // gone already
        }
      }, 20);

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already exited
    }
  }, timeoutMs);

  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - start;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      let peakRssKb = polledKb;
      if (HAVE_GNU_TIME) {
        try {
          const text = fs.readFileSync(rssFile, 'utf8');
          // GNU time prefixes "Command exited with non-zero status N" when the command failed
          const m = /(\d+)\s*$/.exec(text.trim());
          peakRssKb = m ? Number(m[1]) : null;
        } catch {
          peakRssKb = null;
        }
        fs.rmSync(rssFile, { force: true });
      }
      resolve({ code, signal, stdout, stderr, wallMs, peakRssKb, timedOut });
    });
  });
}

/** When the tests run as root, an unprivileged user to run EACCES cases as; otherwise undefined. */
export function unprivilegedUser(home: string): ChildUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  fs.mkdirSync(home, { recursive: true });
  fs.chownSync(home, 65534, 65534);
  return { uid: 65534, gid: 65534, home };
}

/** A progress line the CLI writes to stderr while it works ("[eval] layer 2 3/7, ETA 0.1 s"). */
export const PROGRESS_LINE =
  /^\[[\w-]+\]( layer \d+)? \d+\/\d+(, ETA (< 1 s|–|\d+(\.\d+)? s|\d+ min \d+ s|\d+ h \d+ min))?$/;

/** The lines of stderr that are not progress: what the CLI has to say about an error. */
export function messageLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim().length > 0 && !PROGRESS_LINE.test(l));
}
