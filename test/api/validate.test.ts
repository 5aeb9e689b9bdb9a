/**
 * The API's one schema (main/contract: the manifest's argument schemas and schema.ts's validator) on its
 * own: what it accepts and refuses, that it stays dependency-free (Electron's main process and preload,
 * the server and the renderer load it), and that its lists agree with the engine's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import {
  API_METHODS,
  arity,
  check,
  checkCall,
  checkJobSettings,
  checkJobSettingsForModel,
  checkRankOverridesForModel,
  DEVICES,
  pathFields,
  SCHEMAS,
  type JobSettings,
} from '../../main/contract/index.ts';
import { RankwiseError } from '../../main/core/errors.ts';
import { METHOD_IDS } from '../../main/core/kv.ts';
import { DEVICES as ENGINE_DEVICES } from '../../main/runtime/engine.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { invalidSettings } from './invalid-cases.ts';

const BASE: JobSettings = {
  model: '/m',
  calib: { path: '/c.txt' },
  eval: { builtin: 'demo-evaluation' },
  method: 'kqsvd',
  budget: 0.05,
};
const STORIES = { numLayers: 5, headDim: 8, maxPositions: 512 };

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RankwiseError);
    expect((e as RankwiseError).kind).toBe('bad-input');
    return (e as Error).message;
  }
  throw new Error('accepted');
}

const checkExportRequest = (v: unknown) => check(SCHEMAS.exportRequest, v, 'req');
const checkTryRequest = (v: unknown) => check(SCHEMAS.tryRequest, v, 'req');

/** The modules a file imports at run time (type-only imports left out). */
function runtimeImports(file: string): string[] {
  const text = fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]);
}

describe('the schema', () => {
  it.each(invalidSettings(BASE))('refuses settings with %s', (_name, settings, field) => {
    expect(refusal(() => checkJobSettings(settings))).toMatch(field);
  });

  it('accepts each method, device and key space, and counts undefined as absent', () => {
    for (const method of METHOD_IDS) expect(checkJobSettings({ ...BASE, method }).method).toBe(method);
    for (const device of DEVICES) expect(checkJobSettings({ ...BASE, device }).device).toBe(device);
    const s = checkJobSettings({ ...BASE, kvFraction: undefined, ranks: undefined, seed: 0 });
    expect(s).toEqual({ ...BASE, seed: 0 });
    expect(Object.keys(s)).not.toContain('kvFraction');
  });

  it('checks against the model: ranks, layers, weights, window', () => {
    const { budget: _b, ...noTarget } = BASE;
    expect(refusal(() => checkJobSettingsForModel({ ...noTarget, ranks: { k: 9, v: 1 } }, STORIES))).toMatch(
      /settings\.ranks\.k must be an integer from 1 to the head dimension 8/,
    );
    expect(() => checkJobSettingsForModel({ ...noTarget, ranks: { k: 8, v: 8 } }, STORIES)).not.toThrow();
    expect(
      refusal(() => checkRankOverridesForModel([{ layer: 5, kRank: 1, vRank: 1 }], STORIES, 'r')),
    ).toMatch(/r\[0\]\.layer must be a layer of the model, 0 to 4/);
    expect(() => checkRankOverridesForModel([{ layer: 4, kRank: 8, vRank: 1 }], STORIES, 'r')).not.toThrow();
  });

  it('refuses an export that is not exactly {jobId, out, force?, onnx?, ranks?}', () => {
    expect(refusal(() => checkExportRequest({ jobId: 'j', out: '/o', force: 'yes' }))).toMatch(/req\.force/);
    expect(refusal(() => checkExportRequest({ jobId: 'j', out: '  ' }))).toMatch(/req\.out/);
    expect(refusal(() => checkExportRequest({ jobId: '../x', out: '/o' }))).toMatch(/req\.jobId/);
    expect(checkExportRequest({ jobId: 'j', out: '/o', force: true, onnx: false })).toEqual({
      jobId: 'j',
      out: '/o',
      force: true,
      onnx: false,
    });
  });

  it('refuses malformed Try-it requests by field', () => {
    expect(refusal(() => checkTryRequest({ model: { dir: '/m' }, prompt: ' ' }))).toMatch(
      /the prompt is empty/,
    );
    expect(refusal(() => checkTryRequest({ model: 'dir', prompt: 'x' }))).toMatch(
      /req\.model must be \{dir\}/,
    );
    expect(refusal(() => checkTryRequest({ model: { dir: '/m', jobId: 'j' }, prompt: 'x' }))).toMatch(
      /not both/,
    );
    expect(refusal(() => checkTryRequest({ model: { dir: '/m' }, prompt: 'x', topK: -1 }))).toMatch(
      /req\.topK/,
    );
    expect(
      checkTryRequest({
        model: { jobId: 'j', ranks: [{ layer: 0, kRank: 1, vRank: 2 }] },
        compare: undefined,
        prompt: 'x',
      }),
    ).toEqual({ model: { jobId: 'j', ranks: [{ layer: 0, kRank: 1, vRank: 2 }] }, prompt: 'x' });
  });
});

describe('whole calls', () => {
  it('knows every method of the API', () => {
    for (const method of API_METHODS) expect(arity(method).max).toBeGreaterThanOrEqual(arity(method).min);
  });

  it('counts arguments, trailing undefined ones as left out', () => {
    expect(refusal(() => checkCall('listJobs', ['all']))).toMatch(/listJobs takes 0 arguments, got 1/);
    expect(refusal(() => checkCall('inspect', []))).toMatch(/inspect takes 1 argument, got 0/);
    expect(refusal(() => checkCall('browse', ['/a', '/b']))).toMatch(/browse takes 0 or 1 argument, got 2/);
    expect(checkCall('browse', [undefined])).toEqual([]);
    expect(refusal(() => checkCall('inspect', [5]))).toMatch(/modelDir must be a string/);
    expect(refusal(() => checkCall('choosePath', ['home']))).toMatch(/purpose must be one of "model"/);
  });

  it('finds every path of a checked call and can put the real one in its place', () => {
    const args = checkCall('startJob', [{ ...BASE, eval: { path: '/e.txt' } }]);
    const fields = pathFields('startJob', args);
    expect(fields.map((f) => [f.at, f.path, f.access, f.content])).toEqual([
      ['settings.model', '/m', 'read', false],
      ['settings.calib.path', '/c.txt', 'read', false],
      ['settings.eval.path', '/e.txt', 'read', false],
    ]);
    for (const f of fields) f.replace(`/real${f.path}`);
    expect(args[0]).toMatchObject({
      model: '/real/m',
      calib: { path: '/real/c.txt' },
      eval: { path: '/real/e.txt' },
    });

    const preview = checkCall('previewData', [{ model: '/m', source: { path: '/d.txt' }, window: 8 }]);
    expect(pathFields('previewData', preview).map((f) => [f.at, f.role, f.content])).toEqual([
      ['req.model', 'model-dir', false],
      ['req.source.path', 'text-sample', true],
    ]);
    const exp = checkCall('exportJob', [{ jobId: 'j', out: '/o' }]);
    expect(pathFields('exportJob', exp).map((f) => [f.at, f.role, f.access])).toEqual([
      ['req.out', 'output-dir', 'write'],
    ]);
    const tried = checkCall('startTry', [{ model: { jobId: 'j' }, compare: { dir: '/m' }, prompt: 'x' }]);
    expect(pathFields('startTry', tried).map((f) => f.at)).toEqual(['req.compare.dir']);
  });
});

describe('the lists agree with the engine, and the module stays dependency-free', () => {
  it('devices are runtime/engine.ts’s', () => {
    expect([...DEVICES].sort()).toEqual([...ENGINE_DEVICES].sort());
  });

  it('main/contract imports nothing at run time but itself and main/core, which imports only itself', () => {
    for (const file of fs.readdirSync(path.join(REPO_ROOT, 'main/contract'))) {
      for (const imported of runtimeImports(`main/contract/${file}`)) {
        expect(imported, `main/contract/${file}`).toMatch(/^\.\/[a-z-]+\.ts$|^\.\.\/core\/[a-z-]+\.ts$/);
      }
    }
    // core's subfolders (allocate/, charts/) may import core's own files one level up, nothing else
    for (const file of fs.readdirSync(path.join(REPO_ROOT, 'main/core'), { recursive: true }) as string[]) {
      if (!file.endsWith('.ts')) continue;
      const nested = file.includes('/');
      for (const imported of runtimeImports(`main/core/${file}`)) {
        expect(imported, `main/core/${file}`).toMatch(
          nested ? /^\.{1,2}\/[a-z-]+\.ts$/ : /^\.\/[a-z-]+\.ts$/,
        );
      }
    }
  });
});
