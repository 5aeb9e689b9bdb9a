import { describe, expect, it } from 'vitest';
import type { JobSummary } from '../../main/contract/index.ts';
import {
  budgetToSlider,
  keySpacesFor,
  methodObstacle,
  sliderToBudget,
} from '../../renderer/state/methods.ts';
import { applyJobEvent, EMPTY_RUN_VIEW, profilesFromReport } from '../../renderer/state/run.ts';
import {
  canOpen,
  currentKey,
  dataIssues,
  methodIssues,
  parseDecimal,
  parseKeep,
  parsePplIncrease,
  parseWhole,
  runMatches,
  settingsOf,
  stateForJob,
  stepValid,
} from '../../renderer/state/settings.ts';
import {
  initialState,
  wizardReducer,
  type WizardAction,
  type WizardState,
} from '../../renderer/state/wizard.ts';
import { CARD, compressReport, profilePoints } from './fake-api.ts';
import { doneState, readyState } from './states.ts';
import { fakeApi } from './fake-api.ts';

const apply = (s: WizardState, ...a: WizardAction[]) => a.reduce(wizardReducer, s);

describe('form numbers', () => {
  it('reads whole numbers and decimals as typed, and nothing else', () => {
    expect(parseWhole('128')).toBe(128);
    expect(parseWhole(' 8 ')).toBe(8);
    expect(parseWhole('12.5')).toBeNaN();
    expect(parseWhole('1e3')).toBeNaN();
    expect(parseWhole('')).toBeNaN();
    expect(parseDecimal('0.05')).toBe(0.05);
    expect(parseDecimal('.5')).toBe(0.5);
    expect(parseDecimal('5e-2')).toBe(0.05);
    expect(parseDecimal('0.')).toBe(0);
    expect(parseDecimal('abc')).toBeNaN();
    expect(parseDecimal('-1')).toBeNaN();
    // the memory target: a per cent or a fraction, as people write it
    expect(parseKeep('50')).toBe(0.5);
    expect(parseKeep('0.5')).toBe(0.5);
    expect(parseKeep('1')).toBe(1);
    expect(parseKeep('12.5')).toBe(0.125);
    expect(parseKeep('0')).toBeNaN();
    expect(parseKeep('150')).toBeNaN();
    // the perplexity increase: a per cent from 1 up, a fraction below 1, up to 900 % as the engine accepts
    expect(parsePplIncrease('5')).toBe(0.05);
    expect(parsePplIncrease('0.05')).toBe(0.05);
    expect(parsePplIncrease('1')).toBe(0.01);
    expect(parsePplIncrease('12.5')).toBe(0.125);
    expect(parsePplIncrease('0.5')).toBe(0.5);
    expect(parsePplIncrease('0.005')).toBe(0.005);
    expect(parsePplIncrease('900')).toBe(9);
    expect(parsePplIncrease('901')).toBeNaN();
    expect(parsePplIncrease('0')).toBeNaN();
    expect(parsePplIncrease('')).toBeNaN();
    expect(parsePplIncrease('-5')).toBeNaN();
    expect(parsePplIncrease('5 %')).toBeNaN();
  });
});

describe('the wizard state', () => {
  it('opens no step past the model until a model is inspected', () => {
    const s = initialState();
    expect(stepValid(s, 'model')).toBe(false);
    expect(canOpen(s, 'model')).toBe(true);
    expect(canOpen(s, 'data')).toBe(false);
    const loaded = apply(
      s,
      { type: 'modelPath', path: CARD.dir },
      { type: 'modelLoaded', path: CARD.dir, card: CARD },
    );
    expect(canOpen(loaded, 'data')).toBe(true);
    expect(canOpen(loaded, 'method')).toBe(false);
    // editing the path after inspecting asks for a new inspection
    expect(stepValid(apply(loaded, { type: 'modelPath', path: '/other' }), 'model')).toBe(false);
  });

  it('fits the default window to the model’s context unless the user set one', () => {
    const small = { ...CARD, maxPositions: 256 };
    const s = apply(initialState(), { type: 'modelLoaded', path: 'm', card: small });
    expect(s.data.window).toBe('256');
    const typed = apply(
      initialState(),
      { type: 'dataField', field: 'window', value: '100' },
      { type: 'modelLoaded', path: 'm', card: small },
    );
    expect(typed.data.window).toBe('100');
  });

  it('sizes untouched window counts to what the texts give', () => {
    const s = readyState();
    const preview = {
      path: 'p',
      bytes: 1,
      tokens: 640,
      windows: 5,
      window: 128,
      sample: '',
      promptSuggestions: [],
    };
    const fresh = apply(
      { ...initialState(), model: s.model },
      { type: 'previewLoaded', slot: 'calib', key: 'k', preview },
      { type: 'previewLoaded', slot: 'eval', key: 'k', preview },
    );
    expect(fresh.data.calibWindows).toBe('5');
    expect(fresh.data.evalWindows).toBe('5');
    // set by hand: kept, and reported when the text is too short
    expect(apply(s, { type: 'previewLoaded', slot: 'calib', key: 'k', preview }).data.calibWindows).toBe('8');
  });

  it('describes the job as JobSettings, with the memory target as a fraction', () => {
    const s = readyState();
    expect(settingsOf(s)).toEqual({
      model: CARD.dir,
      calib: { builtin: 'demo-calibration' },
      eval: { builtin: 'demo-evaluation' },
      method: 'kqsvd',
      budget: 0.05,
      window: 128,
      calibWindows: 8,
      evalWindows: 4,
      seed: 0,
      keySpace: 'auto',
    });
    const memory = apply(s, { type: 'methodField', patch: { mode: 'memory', keep: '50' } });
    expect(settingsOf(memory)).toMatchObject({ kvFraction: 0.5 });
    expect(settingsOf(memory)).not.toHaveProperty('budget');
    const file = apply(s, {
      type: 'source',
      slot: 'eval',
      patch: { mode: 'file', path: ' /data/wiki.txt ' },
    });
    expect(settingsOf(file)!.eval).toEqual({ path: '/data/wiki.txt' });
    expect(settingsOf(apply(s, { type: 'methodField', patch: { budget: '0' } }))).toBeNull();
    // no RoPE, no key space to choose
    const gpt2 = { ...s, model: { ...s.model, card: { ...CARD, rope: null } } };
    expect(settingsOf(gpt2)).not.toHaveProperty('keySpace');
  });

  it('describes a perplexity target as maxPplIncrease, and a memory target’s objective only when not the default', () => {
    const s = readyState();
    const ppl = apply(s, { type: 'methodField', patch: { mode: 'perplexity', pplIncrease: '10' } });
    const settings = settingsOf(ppl)!;
    expect(settings.maxPplIncrease).toBe(0.1);
    for (const other of ['budget', 'kvFraction', 'ranks', 'objective'])
      expect(settings).not.toHaveProperty(other);
    expect(
      settingsOf(apply(ppl, { type: 'methodField', patch: { pplIncrease: '0.02' } }))!.maxPplIncrease,
    ).toBe(0.02);
    // a perplexity target is end to end by definition: a layer objective chosen for memory stays out
    expect(settingsOf(apply(ppl, { type: 'methodField', patch: { objective: 'layer' } }))).not.toHaveProperty(
      'objective',
    );
    for (const bad of ['', '0', '1000', 'five']) {
      expect(settingsOf(apply(ppl, { type: 'methodField', patch: { pplIncrease: bad } }))).toBeNull();
    }

    const memory = apply(s, { type: 'methodField', patch: { mode: 'memory', keep: '40' } });
    expect(memory.method.objective).toBe('e2e');
    expect(settingsOf(memory)).not.toHaveProperty('objective');
    const layer = apply(memory, { type: 'methodField', patch: { objective: 'layer' } });
    expect(settingsOf(layer)).toMatchObject({ kvFraction: 0.4, objective: 'layer' });
    expect(currentKey(layer)).not.toBe(currentKey(memory));
    // a budget bounds layer errors by definition
    expect(settingsOf(apply(layer, { type: 'methodField', patch: { mode: 'budget' } }))).not.toHaveProperty(
      'objective',
    );
  });

  it('says what is wrong with a perplexity target', () => {
    const ppl = apply(readyState(), { type: 'methodField', patch: { mode: 'perplexity', pplIncrease: '5' } });
    // valid: only the estimate for the new settings is missing
    expect(methodIssues(ppl)).toEqual(['Estimating memory and time…']);
    const issue = (text: string) =>
      methodIssues(apply(ppl, { type: 'methodField', patch: { pplIncrease: text } }));
    expect(issue('')).toEqual(['Give the perplexity increase to accept, such as 5 (per cent).']);
    expect(issue('  ')).toEqual(['Give the perplexity increase to accept, such as 5 (per cent).']);
    for (const bad of ['0', '1000', '-1', 'abc']) {
      expect(issue(bad)).toEqual([
        'The perplexity increase must be a per cent from 1 to 900 (5 for 5 %) or a fraction below 1 (0.05 for 5 %).',
      ]);
    }
    expect(stepValid(apply(ppl, { type: 'methodField', patch: { pplIncrease: '0' } }), 'method')).toBe(false);
  });

  it('lists what keeps the data step from being complete', () => {
    const s = readyState('data');
    expect(dataIssues(s)).toEqual([]);
    expect(dataIssues(apply(s, { type: 'dataField', field: 'calibWindows', value: '99' }))[0]).toMatch(
      /gives only 15 windows of 128 tokens/,
    );
    expect(dataIssues(apply(s, { type: 'dataField', field: 'window', value: '4096' }))[0]).toMatch(
      /context of 1024/,
    );
    expect(dataIssues(apply(s, { type: 'dataField', field: 'calibWindows', value: '1' }))[0]).toMatch(
      /at least 2/,
    );
    // a new window makes the previews stale until they are read again
    expect(dataIssues(apply(s, { type: 'dataField', field: 'window', value: '64' }))).toContain(
      'Reading the calibration text…',
    );
    expect(
      dataIssues(apply(s, { type: 'source', slot: 'calib', patch: { mode: 'file', path: '' } })),
    ).toContain('Choose the calibration file.');
  });

  it('opens the run step only with an estimate for these very settings that fits', () => {
    const s = readyState();
    expect(methodIssues(s)).toEqual([]);
    expect(canOpen(s, 'run')).toBe(true);
    const changed = apply(s, { type: 'methodField', patch: { method: 'eigen' } });
    expect(methodIssues(changed)).toEqual(['Estimating memory and time…']);
    expect(canOpen(changed, 'run')).toBe(false);
    const tooBig = apply(s, {
      type: 'estimateLoaded',
      key: currentKey(s)!,
      estimate: { ...s.method.estimate!.value, fits: false },
    });
    expect(methodIssues(tooBig)).toEqual(['This job does not fit in the memory available.']);
    expect(canOpen(tooBig, 'run')).toBe(false);
  });

  it('opens review once the run with these settings is done, and not after a setting changes', () => {
    const s = doneState(fakeApi());
    expect(runMatches(s)).toBe(true);
    expect(canOpen(s, 'review')).toBe(true);
    expect(canOpen(s, 'export')).toBe(true);
    const changed = apply(s, { type: 'dataField', field: 'seed', value: '7' });
    expect(runMatches(changed)).toBe(false);
    expect(canOpen(changed, 'review')).toBe(false);
  });

  it('starts review and export afresh when a new run starts', () => {
    const s = doneState(fakeApi());
    const edited = apply(s, {
      type: 'allocation',
      allocation: {
        layers: [],
        kvBytesPerToken: { original: 1, compressed: 1 },
        kvFraction: 1,
        weightedError: 0,
        feasible: true,
      },
      overrides: [{ layer: 0, kRank: 4, vRank: 4 }],
    });
    const restarted = apply(edited, {
      type: 'jobStarted',
      slot: 'run',
      summary: { ...({} as JobSummary), id: 'job-9', state: 'queued' },
      settingsKey: currentKey(s)!,
      method: 'kqsvd',
    });
    expect(restarted.review.overrides).toEqual([]);
    expect(restarted.review.allocation).toBeNull();
    expect(restarted.run!.jobId).toBe('job-9');
    expect(restarted.run!.result).toBeNull();
  });

  it('applies events only to the job they belong to', () => {
    const s = doneState(fakeApi());
    const other = apply(s, {
      type: 'jobEvent',
      slot: 'run',
      event: { type: 'state', jobId: 'job-x', seq: 1, state: 'failed' },
    });
    expect(other).toBe(s);
    const mine = apply(s, {
      type: 'jobEvent',
      slot: 'run',
      event: { type: 'log', jobId: 'job-1', seq: 1, message: 'hi' },
    });
    expect(mine.run!.view.logs).toEqual(['hi']);
  });

  it('fills every step from a recent job’s settings, so it matches until changed', () => {
    const job: JobSummary = {
      id: 'job-7',
      kind: 'compress',
      state: 'done',
      createdAt: '2025-01-01T00:00:00Z',
      settings: {
        model: 'rel/model',
        calib: { path: '/data/c.txt' },
        eval: { builtin: 'demo-evaluation' },
        method: 'ksvd',
        kvFraction: 0.3,
        keySpace: 'post-rope',
        window: 256,
      },
    };
    const s = stateForJob(job, CARD);
    expect(s.step).toBe('review');
    expect(s.data.calib).toMatchObject({ mode: 'file', path: '/data/c.txt' });
    expect(s.data.window).toBe('256');
    expect(s.data.calibWindows).toBe('32');
    expect(s.method).toMatchObject({
      method: 'ksvd',
      mode: 'memory',
      keep: '30',
      keySpace: 'post-rope',
    });
    expect(runMatches(s)).toBe(true);
    expect(stepValid(s, 'data')).toBe(true);
    expect(stepValid(s, 'method')).toBe(true);
    expect(stateForJob({ ...job, state: 'cancelled' }, CARD).step).toBe('run');
    // a tiny target stays a fraction: "1" would read as everything
    const tiny = stateForJob({ ...job, settings: { ...job.settings, kvFraction: 0.01 } }, CARD);
    expect(settingsOf(tiny)!.kvFraction).toBe(0.01);
  });

  it('fills a perplexity target and a memory target’s objective from a recent job, and writes them back the same', () => {
    const base: JobSummary['settings'] = {
      model: 'rel/model',
      calib: { builtin: 'demo-calibration' },
      eval: { builtin: 'demo-evaluation' },
      method: 'kqsvd',
      keySpace: 'auto',
      window: 128,
      calibWindows: 8,
      evalWindows: 4,
      seed: 0,
    };
    const job = (settings: Partial<JobSummary['settings']>): JobSummary => ({
      id: 'job-8',
      kind: 'compress',
      state: 'done',
      createdAt: '2025-01-01T00:00:00Z',
      settings: { ...base, ...settings },
    });
    const ppl = stateForJob(job({ maxPplIncrease: 0.07 }), CARD);
    expect(ppl.method).toMatchObject({ mode: 'perplexity', pplIncrease: '7' });
    expect(settingsOf(ppl)).toMatchObject({ maxPplIncrease: 0.07 });
    expect(settingsOf(ppl)).not.toHaveProperty('budget');
    expect(runMatches(ppl)).toBe(true);
    expect(stepValid(ppl, 'method')).toBe(true);
    // below 1 % a per cent would read as a fraction ("0.5" is 50 %): the field keeps the fraction
    for (const p of [0.005, 0.01, 0.125, 2.5, 9]) {
      const s = stateForJob(job({ maxPplIncrease: p }), CARD);
      expect(settingsOf(s)!.maxPplIncrease).toBe(p);
    }
    expect(stateForJob(job({ maxPplIncrease: 0.005 }), CARD).method.pplIncrease).toBe('0.005');

    const layer = stateForJob(job({ kvFraction: 0.4, objective: 'layer' }), CARD);
    expect(layer.method).toMatchObject({ mode: 'memory', keep: '40', objective: 'layer' });
    expect(settingsOf(layer)).toMatchObject({ kvFraction: 0.4, objective: 'layer' });
    const e2e = stateForJob(job({ kvFraction: 0.4 }), CARD);
    expect(e2e.method.objective).toBe('e2e');
    expect(settingsOf(e2e)).not.toHaveProperty('objective');
    expect(settingsOf(e2e)).toEqual({ ...base, model: CARD.dir, kvFraction: 0.4 });
  });
});

describe('job events', () => {
  it('adds up state, progress, stages and live profiles, keeping profiles across a resume', () => {
    let v = applyJobEvent(EMPTY_RUN_VIEW, { type: 'state', jobId: 'j', seq: 1, state: 'queued' });
    v = applyJobEvent(v, {
      type: 'progress',
      jobId: 'j',
      seq: 2,
      stage: 'capture',
      layer: 0,
      done: 1,
      total: 8,
      etaSeconds: 3,
      memoryBytes: 1,
    });
    expect(v.state).toBe('running');
    v = applyJobEvent(v, {
      type: 'profile',
      jobId: 'j',
      seq: 3,
      layer: 2,
      keySpace: 'pre-rope',
      points: profilePoints(2),
      cached: false,
    });
    v = applyJobEvent(v, {
      type: 'state',
      jobId: 'j',
      seq: 4,
      state: 'cancelled',
      error: { kind: 'cancelled', message: 'x' },
    });
    expect(v.error?.kind).toBe('cancelled');
    v = applyJobEvent(v, { type: 'state', jobId: 'j', seq: 5, state: 'queued' });
    expect(v.progress).toBeNull();
    expect(v.error).toBeNull();
    expect(v.profiles[2]?.points).toHaveLength(64);
    expect(v.profiles.filter(Boolean)).toHaveLength(1);
    expect(v.stages).toEqual(['capture']);
  });

  it('reads a finished report’s profiles in the same form', () => {
    const profiles = profilesFromReport(compressReport());
    expect(profiles).toHaveLength(4);
    expect(profiles[1]).toMatchObject({ layer: 1, keySpace: 'pre-rope' });
    expect(profiles[1].points[0]).toEqual({ kRank: 4, vRank: 4, error: profilePoints(1)[0].error });
  });
});

describe('methods', () => {
  it('offers the key spaces each method can fit', () => {
    const llama = { rope: 10000, qkNorm: false };
    expect(keySpacesFor('kqsvd', llama)).toEqual(['auto', 'post-rope', 'pre-rope']);
    expect(keySpacesFor('eigen', llama)).toEqual(['auto', 'pre-rope']);
    expect(keySpacesFor('ksvd', { rope: null, qkNorm: false })).toEqual(['auto']);
    // Qwen3: its per-head k-norm leaves post-RoPE keys only, and methods without them are ruled out
    const qwen3 = { rope: 1e6, qkNorm: true };
    expect(keySpacesFor('kqsvd', qwen3)).toEqual(['auto', 'post-rope']);
    expect(keySpacesFor('eigen', qwen3)).toEqual([]);
    expect(methodObstacle('eigen', qwen3)).toMatch(/q\/k norms/);
    expect(methodObstacle('kqsvd', qwen3)).toBeNull();
  });

  it('moves the budget slider on a log scale', () => {
    expect(budgetToSlider(0.001)).toBe(0);
    expect(budgetToSlider(0.5)).toBeCloseTo(1);
    expect(sliderToBudget(budgetToSlider(0.05))).toBe(0.05);
    expect(budgetToSlider(0.01)).toBeLessThan(budgetToSlider(0.1));
  });
});
