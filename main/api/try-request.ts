/**
 * The shape of a Try-it request as it arrives from a face (IPC or the socket): checked here before the
 * engine starts anything, so a malformed one is a bad-input error that names the field.
 */
import { checkSampling } from '../generate/sampling.ts';
import { checkMaxNewTokens } from '../generate/generate.ts';
import type { TryModel, TryRequest } from './contract.ts';
import { badInput } from './errors.ts';

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function tryModel(v: unknown, what: string): TryModel {
  if (!isRecord(v)) throw badInput(`${what} must be {dir} or {jobId, ranks?}`);
  if (typeof v.dir === 'string' && v.dir !== '') return { dir: v.dir };
  if (typeof v.jobId !== 'string' || v.jobId === '')
    throw badInput(`${what} must be {dir} or {jobId, ranks?}`);
  if (v.ranks === undefined) return { jobId: v.jobId };
  if (!Array.isArray(v.ranks)) throw badInput(`${what}.ranks must be a list of {layer, kRank, vRank}`);
  const ranks = v.ranks.map((o: unknown, i) => {
    const ok =
      isRecord(o) &&
      [o.layer, o.kRank, o.vRank].every((n) => Number.isSafeInteger(n)) &&
      (o.layer as number) >= 0 &&
      (o.kRank as number) >= 1 &&
      (o.vRank as number) >= 1;
    if (!ok) throw badInput(`${what}.ranks[${i}] must be {layer ≥ 0, kRank ≥ 1, vRank ≥ 1}, whole numbers`);
    return { layer: o.layer as number, kRank: o.kRank as number, vRank: o.vRank as number };
  });
  return { jobId: v.jobId, ranks };
}

export function checkTryApiRequest(req: unknown): TryRequest {
  if (!isRecord(req)) throw badInput('a Try-it request must be an object');
  if (typeof req.prompt !== 'string') throw badInput('the prompt must be text');
  if (req.prompt.trim() === '')
    throw badInput('the prompt is empty; type a beginning for the model to continue');
  const out: TryRequest = { model: tryModel(req.model, 'model'), prompt: req.prompt };
  if (req.compare !== undefined) out.compare = tryModel(req.compare, 'compare');
  if (req.maxNewTokens !== undefined) {
    checkMaxNewTokens(req.maxNewTokens as number, 'the number of new tokens');
    out.maxNewTokens = req.maxNewTokens as number;
  }
  const sampling = {
    temperature: req.temperature as number | undefined,
    topK: req.topK as number | undefined,
    topP: req.topP as number | undefined,
    seed: req.seed as number | undefined,
  };
  checkSampling(sampling);
  return { ...out, ...sampling };
}
