/**
 * The engine's implementation of RankwiseApi, in-process: the Electron main process, the browser-mode
 * server, the CLI and the tests all call this. Every call first meets the manifest's schema
 * (main/contract, `withValidation`), so the methods below receive checked copies of their arguments and
 * check only what needs the model (ranks within its head dimension, one weight per layer, …). Long work
 * goes to the job manager's worker threads; what answers at once (inspect, previews, estimates,
 * re-allocation) runs here on headers and stored results.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { reallocateProfiles, type LayerProfile } from '../core/allocate/index.ts';
import { DEMO_EVAL_PATH, DEMO_TEXT_PATH } from '../data/builtin.ts';
import { loadWindows } from '../data/windows.ts';
import type { CompressSettings } from '../jobs/compress.ts';
import { estimateJob } from '../jobs/estimate.ts';
import { JobManager } from '../jobs/manager.ts';
import { dtypeBytes } from '../model/dtype.ts';
import { modelInfo } from '../model/info.ts';
import { openModel } from '../model/model.ts';
import { loadTokenizer } from '../model/tokenizer.ts';
import { promptSuggestions } from '../generate/prompts.ts';
import { listLocalModels, type HubEnv } from './local-models.ts';
import type { TryTaskModel } from '../jobs/messages.ts';
import {
  checkJobSettingsForModel,
  checkRankOverridesForModel,
  checkReallocateForModel,
  checkTryModelForModel,
  withValidation,
  type Allocation,
  type CompressReport,
  type DataSource,
  type DirectoryListing,
  type ExportRequest,
  type JobSettings,
  type JobSummary,
  type RankwiseApi,
  type ReallocateRequest,
  type ReportData,
  type TryModel,
  type TryRequest,
  type TryRunResult,
} from '../contract/index.ts';
import { badInput, badSetting } from '../core/errors.ts';

export interface EngineApiOptions {
  /** Where jobs and the job cache live (e.g. the app's user-data folder). */
  dir: string;
  /** Memory a job may use; default: what the OS reports free when the job is asked for. */
  memoryLimitBytes?: number;
  /** Where listModels looks for the Hugging Face cache (HF_HOME, HF_HUB_CACHE); default process.env. */
  env?: HubEnv;
  /** The home folder the default Hugging Face cache lies under; default os.homedir(). */
  home?: string;
  /** onnxruntime intra-op threads of each job; default all cores but one, kept for the host's own work. */
  jobThreads?: number;
}

/** Where jobs and the job cache live unless a host says otherwise (RANKWISE_HOME, else ~/.rankwise). */
export function defaultEngineDir(): string {
  return process.env.RANKWISE_HOME ?? path.join(os.homedir(), '.rankwise');
}

export function resolveSource(source: DataSource): string {
  if ('builtin' in source) return source.builtin === 'demo-calibration' ? DEMO_TEXT_PATH : DEMO_EVAL_PATH;
  if (typeof source.path !== 'string' || source.path === '')
    throw badInput('a data source needs a file path');
  return path.resolve(source.path);
}

export function toCompressSettings(s: JobSettings): CompressSettings {
  return {
    modelDir: path.resolve(s.model),
    calib: resolveSource(s.calib),
    eval: resolveSource(s.eval),
    method: s.method,
    ranks: s.ranks,
    budget: s.budget,
    kvFraction: s.kvFraction,
    maxPplIncrease: s.maxPplIncrease,
    objective: s.objective,
    finetune: s.finetune,
    keySpace: s.keySpace,
    window: s.window,
    calibWindows: s.calibWindows,
    evalWindows: s.evalWindows,
    seed: s.seed,
    layerWeights: s.layerWeights,
    stief: s.stief,
    device: s.device,
    heldoutWindows: s.heldoutWindows,
    profileTokens: s.profileTokens,
    calibSampling: s.calibSampling,
    allocator: s.allocator,
  };
}

/** The engine in-process: RankwiseApi, and what only an in-process host reaches. */
export type EngineApi = RankwiseApi & {
  close(): Promise<void>;
  jobs: JobManager;
};

/** Profiles of a finished job in the allocator's form. */
function profilesOf(r: CompressReport): LayerProfile[] | null {
  if (!r.profile) return null;
  return r.profile.map((pts, layer) => ({
    layer,
    points: pts.map((p) => ({ kRank: p.kRank, vRank: p.vRank, error: p.error })),
  }));
}

export function createEngineApi(opts: EngineApiOptions): EngineApi {
  const jobs = new JobManager({ dir: opts.dir, jobThreads: opts.jobThreads });

  const estimate = async (settings: JobSettings) => {
    const s = toCompressSettings(settings);
    const model = await openModel(s.modelDir);
    try {
      checkJobSettingsForModel(settings, model.spec);
      return estimateJob(model.spec, s, opts.memoryLimitBytes);
    } finally {
      await model.close();
    }
  };

  const start = async (settings: JobSettings): Promise<JobSummary> => {
    const e = await estimate(settings);
    if (!e.fits) {
      const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
      throw badInput(
        `this job needs about ${gib(e.memoryBytes)} of memory and ${gib(e.availableBytes)} is available; ` +
          'use fewer or shorter windows, or a machine with more memory',
        settings.model,
      );
    }
    return jobs.start('compress', settings, toCompressSettings(settings));
  };

  // the manifest's checks in front of every method (withValidation): what follows gets checked copies
  const impl: EngineApi = {
    jobs,
    close: () => jobs.close(),

    async inspect(modelDir) {
      const model = await openModel(modelDir);
      try {
        return { dir: model.dir, ...modelInfo(model) };
      } finally {
        await model.close();
      }
    },

    async previewData(req) {
      const file = resolveSource(req.source);
      const tokenizer = await loadTokenizer(path.resolve(req.model));
      const { windows, totalTokens } = await loadWindows(file, tokenizer, { window: req.window });
      const bytes = (await fs.promises.stat(file)).size;
      const sample = windows.length > 0 ? tokenizer.decode(windows[0]).slice(0, 400) : '';
      return {
        path: file,
        bytes,
        tokens: totalTokens,
        windows: windows.length,
        window: req.window,
        sample,
        promptSuggestions: await promptSuggestions(file),
      };
    },

    estimate,

    startJob: (settings) => start(settings),

    cancelJob: async (id) => jobs.cancel(id),
    resumeJob: async (id) => jobs.resume(id),
    subscribe: (id, listener) => jobs.subscribe(id, listener),

    async getResult(id) {
      const s = await jobs.summary(id);
      if (s.kind !== 'compress') throw badInput(`job ${id} is an export; ask getExportReport`);
      return jobs.result<CompressReport>(id);
    },

    async reallocate(req: ReallocateRequest): Promise<Allocation> {
      const report = await jobs.result<CompressReport>(req.jobId);
      const summary = await jobs.summary(req.jobId);
      const model = await openModel(toCompressSettings(summary.settings).modelDir);
      const spec = model.spec;
      await model.close();
      checkReallocateForModel(req, spec);
      const shape = {
        kvHeads: spec.numKvHeads,
        headDim: spec.headDim,
        bytesPerElement: dtypeBytes(spec.dtype),
      };
      const profiles = profilesOf(report);
      if (!profiles) {
        throw badInput(
          'this job used fixed ranks, so it has no profiles to re-allocate from; run it with a budget',
        );
      }
      const weights = req.layerWeights ?? summary.settings.layerWeights;
      // without a new target, the job's own: overrides then edit the allocation the user is looking at
      const target = (t: Pick<ReallocateRequest, 'budget' | 'kvFraction' | 'maxPplIncrease'>) =>
        t.kvFraction !== undefined
          ? { kvFraction: t.kvFraction }
          : t.maxPplIncrease !== undefined
            ? { maxPplIncrease: t.maxPplIncrease }
            : { budget: t.budget };
      const own =
        req.budget === undefined && req.kvFraction === undefined && req.maxPplIncrease === undefined;
      const asked = target(own ? summary.settings : req);
      // an end-to-end job re-allocates over its layers' measured effects; a budget bounds layer errors
      const effects = report.effects && asked.budget === undefined ? { effects: report.effects } : {};
      if (asked.maxPplIncrease !== undefined && !report.effects) {
        throw badSetting(
          'maxPplIncrease',
          'this job measured no end-to-end effects, so it cannot predict perplexity; give kvFraction or budget, ' +
            'or run it again with objective e2e',
        );
      }
      // the wizard calls the same function on the profiles it holds (its slider and re-fit), so both agree
      return reallocateProfiles(profiles, shape, {
        ...asked,
        ...effects,
        weights,
        overrides: req.overrides,
        refit: req.refit,
      });
    },

    async exportJob(req: ExportRequest) {
      const source = await jobs.summary(req.jobId);
      if (source.kind !== 'compress' || source.state !== 'done') {
        throw badInput(`job ${req.jobId} is not a finished compress job; export one that is done`);
      }
      if (req.ranks?.length) {
        const model = await openModel(toCompressSettings(source.settings).modelDir);
        const { spec } = model;
        await model.close();
        checkRankOverridesForModel(req.ranks, spec, 'req.ranks');
      }
      const out = path.resolve(req.out);
      const taken = await fs.promises.stat(out).then(
        () => true,
        () => false,
      );
      if (taken && !req.force) throw badInput('already exists; choose another folder or replace it', out);
      return jobs.start(
        'export',
        source.settings,
        toCompressSettings(source.settings),
        { ...req, out },
        req.jobId,
      );
    },

    async getExportReport(id) {
      const s = await jobs.summary(id);
      if (s.kind !== 'export') throw badInput(`job ${id} is not an export`);
      return jobs.result<ReportData>(id);
    },

    listJobs: () => jobs.list(),

    listModels: async () =>
      listLocalModels({
        env: opts.env ?? process.env,
        home: opts.home ?? os.homedir(),
        jobs: (await jobs.list()).filter((j) => j.kind === 'compress'),
      }),

    async startTry(r: TryRequest) {
      let device: JobSettings['device'];
      const taskModel = async (m: TryModel, at: string): Promise<TryTaskModel> => {
        if ('dir' in m) return { dir: path.resolve(m.dir) };
        const { dir, cacheDir, settings } = await jobs.compressFolders(m.jobId);
        if (m.ranks?.length) {
          const model = await openModel(settings.modelDir);
          const { spec } = model;
          await model.close();
          checkTryModelForModel(m, spec, at);
        }
        device ??= settings.device;
        const label = `${settings.method} compression of ${path.basename(settings.modelDir)}`;
        return { job: { dir, cacheDir, label, ...(m.ranks ? { ranks: m.ranks } : {}) } };
      };
      const model = await taskModel(r.model, 'req.model');
      const compare = r.compare && (await taskModel(r.compare, 'req.compare'));
      return jobs.startTry({
        kind: 'try',
        model,
        ...(compare ? { compare } : {}),
        prompts: [r.prompt],
        maxNewTokens: r.maxNewTokens ?? 128,
        sampling: { temperature: r.temperature, topK: r.topK, topP: r.topP, seed: r.seed },
        device,
      });
    },

    async getTryResult(id) {
      const s = await jobs.runSummary(id);
      if (s.kind !== 'try') throw badInput(`job ${id} is not a Try-it run`);
      return jobs.result<TryRunResult>(id);
    },

    // The engine has no windows: hosts with native dialogs answer this themselves.
    choosePath: async () => null,

    async browse(dir?: string): Promise<DirectoryListing> {
      const at = path.resolve(dir ?? process.cwd());
      let names: fs.Dirent[];
      try {
        names = await fs.promises.readdir(at, { withFileTypes: true });
      } catch {
        throw badInput('cannot list this folder', at);
      }
      const entries = await Promise.all(
        names
          .filter((n) => !n.name.startsWith('.'))
          .map(async (n) => {
            const p = path.join(at, n.name);
            if (n.isDirectory()) return { name: n.name, path: p, kind: 'dir' as const };
            const bytes = (await fs.promises.stat(p).catch(() => null))?.size;
            return {
              name: n.name,
              path: p,
              kind: 'file' as const,
              ...(bytes === undefined ? {} : { bytes }),
            };
          }),
      );
      entries.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'dir' ? -1 : 1));
      const parent = path.dirname(at);
      return { dir: at, parent: parent === at ? null : parent, entries };
    },
  };
  return withValidation(impl);
}
