import { badInput } from '../core/errors.ts';
import { eigen } from './eigen.ts';
import { ksvd } from './ksvd.ts';
import { kqsvd } from './kqsvd.ts';
import { thinkeys } from './thinkeys.ts';
import { stief } from './stief.ts';
import { type CompressionMethod } from './types.ts';
import { METHOD_IDS } from '../core/kv.ts';

const METHODS: Record<string, CompressionMethod> = { ksvd, eigen, kqsvd, thinkeys, stief };

export function methodById(id: string): CompressionMethod {
  const m = METHODS[id];
  if (!m) throw badInput(`unknown method "${id}"; choose one of ${METHOD_IDS.join(', ')}`);
  return m;
}

export { METHOD_IDS };
