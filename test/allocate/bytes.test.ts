import { describe, expect, it } from 'vitest';

import { layerFullBytes, pointBytes } from '../../main/core/allocate/index.ts';
import { rankSumCapacity } from '../../main/core/allocate/bytes.ts';
import { fixedAllocation } from '../../main/core/allocate/index.ts';
import type { LayerProfile } from '../../main/core/allocate/index.ts';

// methods.md §2.4, worked examples (fp16).
const llama3 = { kvHeads: 8, headDim: 128, bytesPerElement: 2 };
const llama2 = { kvHeads: 32, headDim: 128, bytesPerElement: 2 };

describe('KV-cache bytes per token (methods.md §2.4)', () => {
  it('Llama-3-8B: 4096 B per layer at full rank, 2048 B at r_K = r_V = 64', () => {
    expect(layerFullBytes(llama3)).toBe(4096);
    expect(pointBytes({ kRank: 128, vRank: 128 }, llama3)).toBe(4096);
    expect(pointBytes({ kRank: 64, vRank: 64 }, llama3)).toBe(2048);
    // keys and values count the same: only the sum matters
    expect(pointBytes({ kRank: 32, vRank: 96 }, llama3)).toBe(2048);
  });

  it('Llama-2-7B (MHA): 16384 B per layer; 32 layers 512 KiB; 128K tokens 64 GiB', () => {
    expect(layerFullBytes(llama2)).toBe(16384);
    expect(32 * layerFullBytes(llama2)).toBe(512 * 1024);
    expect(32 * layerFullBytes(llama2) * 128 * 1024).toBe(64 * 2 ** 30);
  });

  it('relative cache size is (kRank + vRank) / 2d', () => {
    for (const [k, v] of [
      [16, 16],
      [64, 128],
      [128, 8],
    ]) {
      expect(pointBytes({ kRank: k, vRank: v }, llama3) / layerFullBytes(llama3)).toBe((k + v) / 256);
    }
  });

  it('a uniform allocation of Llama-3-8B at 64/64 halves every number: 64 KiB of 128 KiB per token', () => {
    const profiles: LayerProfile[] = Array.from({ length: 32 }, (_, layer) => ({ layer, points: [] }));
    const a = fixedAllocation(profiles, llama3, 64, 64);
    expect(a.originalBytesPerToken).toBe(128 * 1024);
    expect(a.totalBytesPerToken).toBe(64 * 1024);
    expect(a.kvFraction).toBe(0.5);
    expect(a.layers.every((l) => l.bytesPerToken === 2048)).toBe(true);
  });

  it('capacity admits a target that is exact in decimal but not in binary', () => {
    // 0.29 · 100 = 28.999999999999996 in float64
    expect(0.29 * 50 * 2).toBeLessThan(29);
    expect(rankSumCapacity(0.29, 50, 1)).toBe(29);
    expect(rankSumCapacity(1, 32, 128)).toBe(8192);
    expect(rankSumCapacity(0.5, 3, 7)).toBe(21);
    expect(rankSumCapacity(0.5001, 1, 500)).toBe(500);
  });
});
