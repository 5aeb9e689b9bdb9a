import { describe, expect, it } from 'vitest';
import { attentionShape, parseKvCompression } from '../../main/model/kv-layout.ts';
import { compressionLayout } from '../../main/model/fold.ts';
import { readStoredLayer, writeStoredLayer } from '../../main/jobs/layer-store.ts';
import { planeSelection } from '../../main/runtime/thin-rope.ts';
import type { LayerCompression } from '../../main/core/kv.ts';
import type { LayerFit } from '../../main/methods/types.ts';
import { RankwiseError } from '../../main/core/errors.ts';
import { tempDir } from '../helpers/paths.ts';

const shape = { numLayers: 2, headDim: 8, hasRope: true };
const block = (layers: unknown[]) => ({ format: 'rankwise', version: 1, layers });

function badInputOf(f: () => unknown): RankwiseError {
  try {
    f();
  } catch (e) {
    if (e instanceof RankwiseError) return e;
    throw e;
  }
  throw new Error('no error thrown');
}

describe('thin-rope layouts (R3)', () => {
  it('parses rope_planes and narrows q_proj and k_proj to the rank, with no bases', () => {
    const layers = parseKvCompression(
      block([
        { k_rank: 5, v_rank: 8, key_space: 'thin-rope', rope_planes: [3, 0] },
        { k_rank: 8, v_rank: 8, key_space: 'thin-rope' },
      ]),
      shape,
      'config.json',
    );
    expect(layers[0]).toEqual({ kRank: 5, vRank: 8, keySpace: 'thin-rope', ropePlanes: [3, 0] });
    expect(layers[1]).toEqual({ kRank: 8, vRank: 8, keySpace: 'thin-rope' });
    expect(attentionShape(layers[0], 8)).toMatchObject({
      qWidth: 5,
      kWidth: 5,
      kBasis: false,
      qBasis: false,
    });
  });

  it.each([
    [undefined, 'found undefined'],
    [[3], 'must list 2 distinct integers from 0 to 3'],
    [[3, 3], 'distinct'],
    [[0, 4], 'from 0 to 3'],
    [[0, 1.5], 'integers'],
  ])('rejects rope_planes %j as bad input naming config.json', (planes, words) => {
    const e = badInputOf(() =>
      parseKvCompression(
        block([
          { k_rank: 4, v_rank: 8, key_space: 'thin-rope', rope_planes: planes },
          { k_rank: 8, v_rank: 8, key_space: 'pre-rope' },
        ]),
        shape,
        'config.json',
      ),
    );
    expect(e.kind).toBe('bad-input');
    expect(e.file).toBe('config.json');
    expect(e.message).toContain('layer 0: "rope_planes"');
    expect(e.message).toContain(words);
  });

  it('rejects thin-rope keys on a model without RoPE', () => {
    const e = badInputOf(() =>
      parseKvCompression(
        block([
          { k_rank: 4, v_rank: 8, key_space: 'thin-rope', rope_planes: [0, 1] },
          { k_rank: 8, v_rank: 8, key_space: 'folded' },
        ]),
        { ...shape, hasRope: false },
        'config.json',
      ),
    );
    expect(e.message).toContain('does not fit a model without RoPE');
  });

  it('the job cache keeps each rank’s planes', async () => {
    const tmp = tempDir();
    try {
      const d = 8;
      const planesAt = (r: number) => [2, 0, 3, 1].slice(0, Math.floor(r / 2));
      const fit: LayerFit = {
        keySpace: 'thin-rope',
        at: (kRank, vRank): LayerCompression => ({
          keySpace: 'thin-rope',
          kRank,
          vRank,
          keys:
            kRank < d
              ? [0, 1].map(() => ({
                  a: planeSelection(d, kRank, planesAt(kRank), 5),
                  b: planeSelection(d, kRank, planesAt(kRank)),
                  rank: kRank,
                }))
              : null,
          values: null,
          ...(kRank < d ? { ropePlanes: planesAt(kRank) } : {}),
        }),
      };
      const file = `${tmp.dir}/layer.safetensors`;
      await writeStoredLayer(
        file,
        { layer: 0, keySpace: 'thin-rope', points: [], chosen: null, fit },
        [1, 3, 4, 8],
        d,
      );
      const back = await readStoredLayer(file);
      for (const r of [1, 3, 4]) {
        const c = back.fit.at(r, d);
        expect(c.ropePlanes).toEqual(planesAt(r));
        expect(c.keys![1].a).toEqual(fit.at(r, d).keys![1].a);
      }
      expect(back.fit.at(8, d).keys).toBeNull();
    } finally {
      tmp.cleanup();
    }
  });

  it('the export layout carries the planes; a compression without them is an internal fault', () => {
    const spec = { numHeads: 4, numKvHeads: 2, headDim: 8 } as Parameters<typeof compressionLayout>[0];
    const keys = [0, 1].map(() => ({
      a: planeSelection(8, 4, [1, 2]),
      b: planeSelection(8, 4, [1, 2]),
      rank: 4,
    }));
    const c: LayerCompression = {
      keySpace: 'thin-rope',
      kRank: 4,
      vRank: 8,
      keys,
      values: null,
      ropePlanes: [1, 2],
    };
    expect(compressionLayout(spec, c)).toEqual({
      kRank: 4,
      vRank: 8,
      keySpace: 'thin-rope',
      ropePlanes: [1, 2],
    });
    expect(() => compressionLayout(spec, { ...c, ropePlanes: undefined })).toThrow(/RoPE planes must list 2/);
  });
});
