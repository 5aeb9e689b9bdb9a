import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { METHOD_IDS, methodById } from '../../main/methods/index.ts';
import type { KeySpace, MethodId } from '../../main/core/kv.ts';
import { checkExportRoundTrip } from '../helpers/export-check.ts';
import { STORIES_DIR, TINYSTORIES_TEXT, tempDir } from '../helpers/paths.ts';

const tmp = tempDir();

function readHeader(file: string): string {
  const bytes = fs.readFileSync(file);
  return bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8');
}
afterAll(() => tmp.cleanup());

const base = {
  modelDir: STORIES_DIR,
  calib: TINYSTORIES_TEXT,
  eval: TINYSTORIES_TEXT,
  window: 128,
  calibWindows: 4,
  evalWindows: 2,
  stief: { steps: 4, trainWindows: 1 },
} as const;

const cases: [MethodId, KeySpace][] = [];
for (const id of METHOD_IDS) {
  for (const space of methodById(id).keySpaces({ block: { rope: {}, qkNorm: false } } as never))
    cases.push([id, space]);
}

describe('export of stories260K', () => {
  it.each(cases)(
    '%s (%s): reloads to the in-memory perplexity; ONNX greedy with cache = in memory',
    async (method, keySpace) => {
      const out = path.join(tmp.dir, `${method}-${keySpace}`);
      const { spec } = await checkExportRoundTrip({ ...base, method, keySpace, ranks: { k: 4, v: 4 } }, out);
      for (const l of spec.kvCompression!) expect(l).toMatchObject({ keySpace, kRank: 4 });
    },
  );

  it.each([
    ['kqsvd', 'pre-rope', { k: 3, v: 5 }],
    ['thinkeys', 'pre-rope', { k: 2, v: 8 }],
    // attention in the thin space (R3): thin queries and keys rotated by planes of their own
    ['thinkeys', 'thin-rope', { k: 3, v: 8 }],
  ] as const)(
    '%s (%s) fine-tuned at %j: its free factor pairs export and reload to the in-memory perplexity',
    async (method, keySpace, ranks) => {
      const out = path.join(tmp.dir, `${method}-${keySpace}-finetuned`);
      const { report } = await checkExportRoundTrip(
        { ...base, method, keySpace, ranks, finetune: { steps: 6 } },
        out,
      );
      // the export carries the fine-tuned layers: at least one was trained and kept a later iterate
      const trained = report.finetune!.layers;
      expect(trained).toHaveLength(5);
      expect(trained.some((l) => l.bestStep > 0)).toBe(true);
    },
  );

  it('a side kept at full rank is stored as the original weights (no basis, no rotation)', async () => {
    // EigenAttention returns its full orthogonal basis at rank d: the export must treat it as identity
    const out = path.join(tmp.dir, 'full-keys');
    const { spec } = await checkExportRoundTrip(
      { ...base, method: 'eigen', keySpace: 'pre-rope', ranks: { k: 8, v: 4 } },
      out,
    );
    for (const l of spec.kvCompression!) expect([l.kRank, l.vRank]).toEqual([8, 4]);
    const names = Object.keys(JSON.parse(readHeader(path.join(out, 'model.safetensors'))));
    expect(names.some((n) => n.endsWith('k_basis'))).toBe(false);
  });

  it('an allocated export keeps different ranks per layer', async () => {
    const out = path.join(tmp.dir, 'allocated');
    const { report, spec } = await checkExportRoundTrip(
      { ...base, method: 'kqsvd', kvFraction: 0.4, keySpace: 'auto' },
      out,
    );
    expect(spec.kvCompression!.map((l) => [l.kRank, l.vRank, l.keySpace])).toEqual(
      report.layers.map((l) => [l.kRank, l.vRank, l.keySpace]),
    );
    expect(new Set(report.layers.map((l) => `${l.kRank}/${l.vRank}`)).size).toBeGreaterThan(1);
  });
});
