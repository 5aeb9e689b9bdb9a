/**
 * What the engine and the wizard both need is defined once (main/core): the method catalogue, the Pareto
 * front and the memory arithmetic. These checks hold the two sides to it, ties and edge cases included.
 */
import { describe, expect, it } from 'vitest';

import { paretoFront as enginePareto } from '../../main/core/allocate/index.ts';
import { rankGrid } from '../../main/core/memory.ts';
import { METHOD_IDS } from '../../main/core/kv.ts';
import { askableKeySpaces, METHOD_CATALOGUE } from '../../main/core/methods.ts';
import { sequencesThatFit as engineFit } from '../../main/export/memory.ts';
import { methodById } from '../../main/methods/index.ts';
import { dtypeBytes as engineDtypeBytes } from '../../main/model/dtype.ts';
import { rankTicks } from '../../renderer/charts/allocation-data.ts';
import { dtypeBytes, sequencesThatFit } from '../../renderer/charts/memory-data.ts';
import { paretoFront } from '../../renderer/charts/profile-data.ts';
import { keySpacesFor, methodObstacle, METHODS } from '../../renderer/state/methods.ts';

const pt = (kRank: number, vRank: number, error: number) => ({ kRank, vRank, error });

describe('the method catalogue', () => {
  it('has every method once, and the engine and the wizard describe each by it', () => {
    expect(METHOD_CATALOGUE.map((m) => m.id).sort()).toEqual([...METHOD_IDS].sort());
    for (const id of METHOD_IDS) {
      const engine = methodById(id);
      const shown = METHODS.find((m) => m.id === id)!;
      expect(shown.technical).toBe(engine.summary);
      for (const [rope, qkNorm] of [
        [true, false],
        [false, false],
        [true, true],
      ]) {
        const spec = { block: { rope: rope ? { theta: 10000 } : null, qkNorm } } as never;
        const spaces = engine.keySpaces(spec);
        const shownSpaces = keySpacesFor(id, { rope: rope ? 10000 : null, qkNorm });
        // the spaces a job fits under auto, then those it fits only when asked (thin keys' thin space)
        const asked = askableKeySpaces(id, rope, qkNorm).filter((k) => !spaces.includes(k));
        expect(shownSpaces).toEqual(!rope ? ['auto'] : spaces.length ? ['auto', ...spaces, ...asked] : []);
        if (id === 'thinkeys' && rope && !qkNorm) expect(asked).toEqual(['thin-rope']);
        // a method the engine refuses on the model is one the wizard does not let the user pick
        expect(methodObstacle(id, { rope: rope ? 10000 : null, qkNorm }) !== null).toBe(
          rope && !spaces.length,
        );
      }
    }
  });
});

describe('the Pareto front', () => {
  it('is the allocator’s, ties and same-cost losers included', () => {
    const points = [
      pt(8, 16, 0.3),
      pt(16, 8, 0.3), // ties (8, 16) on cost and error: the lower kRank stays, in either order
      pt(8, 8, 0.5),
      pt(4, 20, 0.4),
      pt(16, 16, 0.3),
      pt(24, 16, 0.1),
      pt(32, 32, 0),
    ];
    for (const order of [points, [...points].reverse()]) {
      const drawn = paretoFront(order, 32);
      expect(drawn.map(({ kRank, vRank, error }) => ({ kRank, vRank, error }))).toEqual(enginePareto(order));
      expect(drawn.map((p) => p.kept)).toEqual(drawn.map((p) => (p.kRank + p.vRank) / 64));
    }
  });
});

describe('the memory arithmetic', () => {
  it('counts sequences and bytes as the report does', () => {
    for (const [memory, weights, perToken, context] of [
      [80 * 2 ** 30, 14 * 2 ** 30, 131072, 32768],
      [1000 + 5 * 300, 1000, 300, 1],
      [1000 + 5 * 300 - 1, 1000, 300, 1],
      [10, 20, 1, 1],
    ]) {
      expect(sequencesThatFit(memory, weights, perToken, context)).toBe(
        engineFit(memory, weights, perToken * context),
      );
    }
    for (const dtype of ['F32', 'F16', 'BF16'] as const)
      expect(dtypeBytes(dtype)).toBe(engineDtypeBytes(dtype));
  });

  it('ticks the allocation chart at the engine’s rank grid', () => {
    for (const d of [6, 8, 64, 100, 128]) expect(rankTicks(d)).toEqual([0, ...rankGrid(d)]);
  });
});
