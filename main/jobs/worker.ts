/**
 * A job's worker thread: onnxruntime and the native kernels run here, never on the main thread. It runs
 * one task, streams progress and profile events, honours cancel between units of work, and reports done
 * or the error.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

import { badInput, RankwiseError, toErrorInfo } from '../core/errors.ts';
import { exportPlan } from '../export/export.ts';
import { compressToPlan, type CompressionPlan } from './compress.ts';
import type { CompressReport } from '../contract/report.ts';
import { layerFile, readPlanMeta, PLAN_META, RESULT_FILE, writeFileAtomic } from './job-files.ts';
import { loadStoredLayer, readStoredLayer, writeStoredLayer } from './layer-store.ts';
import type { Progress } from '../core/progress.ts';
import type { CompressTask, ExportTask, FromWorker, ToWorker, TryTask, TryTaskModel } from './messages.ts';
import type { RankOverride } from '../contract/api.ts';
import type { TrySource } from '../generate/decoder.ts';
import { runTry } from '../generate/try-run.ts';

const port = ((): MessagePort => {
  if (!parentPort) throw new Error('worker.ts runs only as a worker thread');
  return parentPort;
})();
const controller = new AbortController();
// Intra-op threads of every stage. A host whose main thread serves a UI or a server keeps a core for itself
// (the default); the CLI's main thread only waits for job events, and on a 2-core machine leaving it a core
// halved every stage (issue 15: compress ran on one core), so it hands the job all of them (JobManagerOptions).
const threads =
  (workerData as { threads?: number } | null)?.threads ?? Math.max(1, os.availableParallelism() - 1);
const post = (m: FromWorker) => port.postMessage(m);

function progress(p: Progress) {
  post({ type: 'progress', ...p, memoryBytes: process.memoryUsage().rss });
}

/** The error's own words, without the `file: ` its message starts with. */
function reasonOf(e: RankwiseError): string {
  return e.file && e.message.startsWith(`${e.file}: `) ? e.message.slice(e.file.length + 2) : e.message;
}

async function runCompress(task: CompressTask): Promise<void> {
  await fs.promises.mkdir(task.cacheDir, { recursive: true });
  const { report, plan } = await compressToPlan(
    { ...task.settings, threads },
    {
      signal: controller.signal,
      onProgress: progress,
      onLayer: (e) => post({ type: 'profile', ...e }),
      layerStore: {
        // a damaged layer is fitted again (and its file replaced when it is saved), never used
        load: (layer) =>
          loadStoredLayer(layerFile(task.cacheDir, layer), layer, (e) =>
            post({
              type: 'log',
              message: `job cache: ${e.message}; layer ${layer} is fitted again and the file replaced`,
            }),
          ),
        save: (layer, ranks, d) => writeStoredLayer(layerFile(task.cacheDir, layer.layer), layer, ranks, d),
      },
    },
  );
  const { layers: _layers, ...meta } = plan;
  await writeJson(path.join(task.jobDir, PLAN_META), meta);
  await writeJson(path.join(task.jobDir, RESULT_FILE), report);
}

/** A finished compress job's plan at its own ranks, or with some layers set by hand. */
async function planOf(
  sourceDir: string,
  cacheDir: string,
  overrides: RankOverride[] = [],
): Promise<CompressionPlan> {
  const meta = await readPlanMeta(sourceDir);
  const report: CompressReport = meta.report;
  const ranks = new Map(report.layers.map((l) => [l.layer, { k: l.kRank, v: l.vRank }]));
  for (const o of overrides) ranks.set(o.layer, { k: o.kRank, v: o.vRank });
  const layers = [];
  for (let i = 0; i < report.layers.length; i++) {
    const file = layerFile(cacheDir, i);
    const stored = await readStoredLayer(file).catch((e: unknown) => {
      if (!(e instanceof RankwiseError)) throw e;
      throw badInput(`is missing or damaged (${reasonOf(e)}); run the compress job again`, file);
    });
    const r = ranks.get(i)!;
    layers.push(stored.fit.at(r.k, r.v));
  }
  return { ...meta, layers };
}

async function runExport(task: ExportTask): Promise<void> {
  const plan = await planOf(task.sourceDir, task.cacheDir, task.request.ranks);
  const data = await exportPlan(plan, {
    out: task.request.out,
    force: task.request.force,
    onnx: task.request.onnx,
    onnxDtype: task.request.onnxDtype,
    device: task.device,
    threads,
    signal: controller.signal,
    onProgress: progress,
  });
  await writeJson(path.join(task.jobDir, RESULT_FILE), data);
}

async function trySource(m: TryTaskModel): Promise<TrySource> {
  if ('dir' in m) return m;
  return { plan: await planOf(m.job.dir, m.job.cacheDir, m.job.ranks), label: m.job.label };
}

async function runTryTask(task: TryTask): Promise<void> {
  const { kind: _kind, model, compare, device, ...rest } = task;
  const result = await runTry(
    { ...rest, model: await trySource(model), compare: compare && (await trySource(compare)) },
    { device, threads, signal: controller.signal, onToken: (t) => post({ type: 'token', ...t }) },
  );
  post({ type: 'result', value: result });
}

/** Whole or not at all, through a temporary name of its own. */
function writeJson(file: string, value: unknown): Promise<void> {
  return writeFileAtomic(file, `${JSON.stringify(value)}\n`);
}

function onMessage(m: ToWorker): void {
  if (m.type === 'cancel') {
    controller.abort();
    return;
  }
  const task = m.task;
  const run =
    task.kind === 'compress'
      ? runCompress(task)
      : task.kind === 'export'
        ? runExport(task)
        : runTryTask(task);
  run
    .then(
      () => post({ type: 'done' }),
      (e: unknown) => {
        const info = controller.signal.aborted
          ? toErrorInfo(new RankwiseError('cancelled', 'the job was cancelled'))
          : toErrorInfo(e);
        post({ type: 'error', error: info });
      },
    )
    .finally(() => {
      // One task per thread: once it has settled, stop listening so the thread's event loop empties and
      // the thread ends by itself (its isolate, event loop and descriptors with it). The messages posted
      // above still reach the manager, which sees 'exit' after them.
      port.off('message', onMessage);
      port.unref();
    });
}

port.on('message', onMessage);
