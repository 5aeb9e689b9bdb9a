/**
 * StiefAttention's key sharings, starts and schedules on stories260K's layer 1 (short windows, a few
 * steps): per-head key bases really differ per head and stay orthonormal, 'auto' keeps the better of the
 * shared and per-head fits at every grid pair and never loses to a closed form, training starts from the
 * closed form that measures lowest, and the schedules compress the sides they say.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FactorPair } from '../../main/core/kv.ts';
import { rankGrid } from '../../main/core/memory.ts';
import { loadWindows } from '../../main/data/windows.ts';
import { fitEigen } from '../../main/methods/eigen.ts';
import { matmul } from '../../main/methods/kernels.ts';
import { fitKqsvd } from '../../main/methods/kqsvd.ts';
import { fitKsvd } from '../../main/methods/ksvd.ts';
import { transpose } from '../../main/methods/linalg.ts';
import { trainStief, type StiefContext } from '../../main/methods/stief.ts';
import type { StiefSettings } from '../../main/methods/stief-settings.ts';
import { fitThinKeys } from '../../main/methods/thinkeys.ts';
import type { LayerFit } from '../../main/methods/types.ts';
import { openModel, type ModelHandle } from '../../main/model/model.ts';
import { loadTokenizer } from '../../main/model/tokenizer.ts';
import { captureGrams, layerSamples } from '../../main/runtime/capture.ts';
import { Engine } from '../../main/runtime/engine.ts';
import { LayerGradient } from '../../main/runtime/layer-grad.ts';
import { LayerErrorSweep } from '../../main/runtime/layer-sweep.ts';
import { ModelRunner } from '../../main/runtime/runner.ts';
import { STORIES_DIR, TINYSTORIES_TEXT } from '../helpers/paths.ts';

const LAYER = 1;
let model: ModelHandle;
let engine: Engine;
let ctx: StiefContext;

beforeAll(async () => {
  model = await openModel(STORIES_DIR);
  engine = await Engine.create();
  const runner = new ModelRunner(engine, model);
  const tok = await loadTokenizer(STORIES_DIR);
  const { windows } = await loadWindows(TINYSTORIES_TEXT, tok, { window: 64, count: 8 });
  const grams = await captureGrams(runner, windows.slice(0, 6));
  for await (const s of layerSamples(runner, [windows.slice(6), windows.slice(0, 2)])) {
    if (s.layer !== LAYER) continue;
    ctx = {
      capture: { layer: LAYER, weights: s.weights, grams: grams[LAYER] },
      spec: model.spec,
      keySpace: 'pre-rope',
      runner,
      train: s.sets[1],
      meter: new LayerErrorSweep(runner, s.weights, s.sets[0]),
      grid: rankGrid(model.spec.headDim),
    };
    break;
  }
});
afterAll(async () => {
  await engine.release();
  await model.close();
});

const d = () => model.spec.headDim;
const FEW: Partial<StiefSettings> = { steps: 12, evalEvery: 4, trainRows: 16, lr: 0.3 };
const train = (s: Partial<StiefSettings>) => trainStief({ ...ctx, settings: { ...FEW, ...s } });
const pairs = () => rankGrid(d()).flatMap((k) => rankGrid(d()).map((v) => [k, v] as const));

/** ‖AᵀA − I‖_max of a d×r factor. */
function orthonormality(p: FactorPair): number {
  const ata = matmul(transpose(p.a, d(), p.rank), p.rank, d(), p.a, p.rank);
  let e = 0;
  for (let i = 0; i < p.rank; i++)
    for (let j = 0; j < p.rank; j++) e = Math.max(e, Math.abs(ata[i * p.rank + j] - (i === j ? 1 : 0)));
  return e;
}

const maxDiff = (a: Float64Array, b: Float64Array) =>
  a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

const closedForms = (): [string, LayerFit][] => [
  ['eigen', fitEigen(ctx.capture, ctx.spec, 'pre-rope')],
  ['ksvd', fitKsvd(ctx.capture, ctx.spec, 'pre-rope')],
  ['kqsvd', fitKqsvd(ctx.capture, ctx.spec, 'pre-rope')],
  ['thinkeys', fitThinKeys(ctx.capture, ctx.spec, 'pre-rope')],
];

describe('StiefAttention key sharing', () => {
  it('trains one orthonormal key basis per KV head with per-head keys, one for all with shared keys', async () => {
    const perHead = await train({ keys: 'per-head' });
    const shared = await train({ keys: 'shared' });
    // the learned fit is the mixture's first; the selection may pick a closed form at a pair
    expect(perHead.mixture!.fits).toHaveLength(5);
    expect(shared.mixture!.fits).toHaveLength(5);
    for (const r of [2, 4, 6]) {
      const heads = perHead.mixture!.fits[0].at(r, d()).keys!;
      expect(heads).toHaveLength(model.spec.numKvHeads);
      for (const p of heads) {
        expect(p.rank).toBe(r);
        expect(p.b).toEqual(p.a);
        expect(orthonormality(p)).toBeLessThan(1e-9);
      }
      for (let g = 1; g < heads.length; g++) expect(maxDiff(heads[g].a, heads[0].a)).toBeGreaterThan(1e-3);
      const one = shared.mixture!.fits[0].at(r, d()).keys!;
      for (const p of one) {
        expect(orthonormality(p)).toBeLessThan(1e-9);
        expect(p.a).toEqual(one[0].a);
      }
    }
  });

  it("keeps, with 'auto', the better of shared and per-head keys and never loses to a closed form", async () => {
    const auto = await train({ keys: 'auto' });
    const shared = await train({ keys: 'shared' });
    const perHead = await train({ keys: 'per-head' });
    // both sharings trained as they would be alone (their values once: sequential values see no keys)
    expect(auto.mixture!.fits).toHaveLength(6);
    expect(auto.training.steps).toBeGreaterThan(Math.max(shared.training.steps, perHead.training.steps));
    expect(auto.training.steps).toBeLessThan(shared.training.steps + perHead.training.steps);
    const closed = closedForms();
    const closedErrors = await ctx.meter.errors(
      closed.flatMap(([, fit]) => pairs().map(([k, v]) => fit.at(k, v))),
    );
    let strictlyBelowShared = 0;
    pairs().forEach(([k, v], i) => {
      const a = auto.knownError(k, v)!;
      expect(a, `${k}/${v}`).toBeLessThanOrEqual(shared.knownError(k, v)! + 1e-12);
      expect(a, `${k}/${v}`).toBeLessThanOrEqual(perHead.knownError(k, v)! + 1e-12);
      closed.forEach(([id], c) =>
        expect(a, `${id} at ${k}/${v}`).toBeLessThanOrEqual(closedErrors[c * pairs().length + i]),
      );
      if (a < shared.knownError(k, v)! - 1e-9) strictlyBelowShared += 1;
    });
    // per-head keys are worth having: somewhere they beat every shared-key fit
    expect(strictlyBelowShared).toBeGreaterThan(0);
  });
});

describe('StiefAttention starts', () => {
  it('starts from the closed form whose bases measure lowest, at every rank a truncation of one basis', async () => {
    const start = await train({ keys: 'per-head', steps: 0 });
    const eigenStart = await train({ keys: 'per-head', steps: 0, start: 'eigen' });
    const ranks = rankGrid(d()).filter((r) => r < d());
    const keysOnly = (fit: LayerFit) => ctx.meter.errors(ranks.map((r) => fit.at(r, d())));
    const valuesOnly = (fit: LayerFit) => ctx.meter.errors(ranks.map((r) => fit.at(d(), r)));
    const total = async (xs: Promise<number[]>) => (await xs).reduce((a, b) => a + b, 0);
    const learned = start.mixture!.fits[0];
    const k = await total(keysOnly(learned));
    const v = await total(valuesOnly(learned));
    // the other side at full rank is the identity up to rounding, whichever basis it is written in
    const atMost = (x: number) => x * (1 + 1e-6);
    for (const [id, fit] of closedForms()) {
      // KQ-SVD's oblique pair is not an orthonormal basis: its orthonormalised span is the candidate
      if (id === 'kqsvd') continue;
      expect(k, id).toBeLessThanOrEqual(atMost(await total(keysOnly(fit))));
      if (id !== 'thinkeys') expect(v, id).toBeLessThanOrEqual(atMost(await total(valuesOnly(fit))));
    }
    // on this layer the best start is not EigenAttention's (per-head keys measure far lower)
    expect(k).toBeLessThan(0.9 * (await total(keysOnly(eigenStart.mixture!.fits[0]))));
    // nested: the rank-r basis is the leading r columns of the rank-(r+1) one
    for (const r of ranks.slice(0, -1)) {
      const [lo, hi] = [learned.at(r, d()).keys![0], learned.at(r + 1, d()).keys![0]];
      for (let i = 0; i < d(); i++)
        for (let j = 0; j < r; j++) expect(lo.a[i * r + j]).toBe(hi.a[i * (r + 1) + j]);
    }
  });
});

describe('StiefAttention schedules', () => {
  /** For every gradient step: whether keys and values were compressed. */
  async function sidesCompressed(s: Partial<StiefSettings>): Promise<[boolean, boolean][]> {
    const spy = vi.spyOn(LayerGradient.prototype, 'evaluate');
    try {
      await train({ keys: 'shared', ...s });
      return spy.mock.calls.map(([mK, mV]) => [mK !== null, mV !== null]);
    } finally {
      spy.mockRestore();
    }
  }

  it('trains each side against the other compressed when alternating, never when sequential', async () => {
    const sequential = await sidesCompressed({ schedule: 'sequential' });
    expect(sequential.length).toBeGreaterThan(0);
    expect(sequential.every(([k, v]) => k !== v)).toBe(true);
    for (const schedule of ['alternate', 'joint'] as const) {
      const steps = await sidesCompressed({ schedule });
      expect(
        steps.some(([k, v]) => k && v),
        schedule,
      ).toBe(true);
    }
  });
});
