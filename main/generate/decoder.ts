/**
 * The models Try it runs, each as the KV-cache decoder a user takes home: an export through its own
 * ONNX file with its thin cache; an original folder or a finished job's plan through a decoder the
 * export's builder makes in memory (uncompressed, or narrowed as the plan says), so what is tried is
 * exactly what an export of it would run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { badInput } from '../core/errors.ts';
import { compressedModel } from '../export/compressed-model.ts';
import { findOnnxModel, ONNX_DATA, ONNX_FILE } from '../export/onnx-files.ts';
import type { CompressionPlan } from '../export/plan.ts';
import { modelInfo } from '../model/info.ts';
import { openModel, type ModelHandle } from '../model/model.ts';
import { loadTokenizer, type TextTokenizer } from '../model/tokenizer.ts';
import type { ModelSpec } from '../model/types.ts';
import { Engine, type Device } from '../runtime/engine.ts';
import { buildKvDecoder } from '../runtime/graphs/kv-decoder.ts';
import { KvDecoderSession } from '../runtime/kv-session.ts';

/** A model folder (original or a Rankwise export), or a compress job's plan before any export. */
export type TrySource = { dir: string } | { plan: CompressionPlan; label: string };

export interface TryDecoder {
  /** What the user picked, for display: the folder, or the job's name. */
  label: string;
  /** The model as the decoder runs it (`kvCompression` holds the cache layout per layer). */
  spec: ModelSpec;
  tokenizer: TextTokenizer;
  session: KvDecoderSession;
  /** The execution provider, as onnxruntime names it. */
  device: string;
  /** Whether this is an export's own ONNX file rather than a decoder built in memory. */
  exported: boolean;
  /** Token ids that end a generation. */
  stopIds: number[];
  close(): Promise<void>;
}

export interface OpenDecoderOptions {
  device?: Device;
  threads?: number;
}

// A decoder past this size is built into a temporary folder with external data: one protobuf message
// cannot hold 2 GiB, and a file lets onnxruntime map rather than copy the weights.
const IN_MEMORY_LIMIT = 2 ** 30;

function stopIdsOf(spec: ModelSpec, tokenizer: TextTokenizer): number[] {
  return [...new Set([spec.eosTokenId, tokenizer.eosId].filter((x): x is number => x !== null))];
}

async function buildDecoder(
  model: ModelHandle,
  layers: CompressionPlan['layers'],
): Promise<{ bytes: Uint8Array | null; file: string | null; tmp: string | null; spec: ModelSpec }> {
  const cm = compressedModel(model, layers);
  const source = {
    spec: cm.spec,
    loadEmbeddings: () => cm.loadEmbeddings(),
    loadNarrowLayer: (i: number) => cm.loadNarrowLayer(i),
  };
  if (4 * modelInfo(model).parameters <= IN_MEMORY_LIMIT) {
    return { bytes: await buildKvDecoder(source), file: null, tmp: null, spec: cm.spec };
  }
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'rankwise-try-'));
  try {
    const file = path.join(tmp, 'model.onnx');
    const bytes = await buildKvDecoder(source, {
      externalData: { path: path.join(tmp, ONNX_DATA), location: ONNX_DATA },
    });
    await fs.promises.writeFile(file, bytes);
    return { bytes: null, file, tmp, spec: cm.spec };
  } catch (e) {
    await fs.promises.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export async function openTryDecoder(source: TrySource, opts: OpenDecoderOptions = {}): Promise<TryDecoder> {
  const dir = 'dir' in source ? source.dir : source.plan.modelDir;
  const model = await openModel(dir);
  let tmp: string | null = null;
  try {
    const tokenizer = await loadTokenizer(model.dir);
    const engine = await Engine.create({ device: opts.device ?? 'cpu', threads: opts.threads });
    const options = engine.sessionOptions();
    await engine.release();

    let spec: ModelSpec;
    let session: KvDecoderSession;
    let exported = false;
    if ('dir' in source && model.spec.kvCompression) {
      const file = await findOnnxModel(model.dir);
      if (!file) {
        throw badInput(
          `this Rankwise export has no ${ONNX_FILE}; export it again with the ONNX decoder to try it`,
          model.dir,
        );
      }
      spec = model.spec;
      session = await KvDecoderSession.create(file, sessionInfo(spec), options);
      exported = true;
    } else {
      const layers = 'plan' in source ? source.plan.layers : [];
      const built = await buildDecoder(model, layers);
      tmp = built.tmp;
      spec = built.spec;
      session = await KvDecoderSession.create(built.bytes ?? built.file!, sessionInfo(spec), options);
    }
    const removeTmp = tmp;
    return {
      label: 'dir' in source ? model.dir : source.label,
      spec,
      tokenizer,
      session,
      device: engine.provider,
      exported,
      stopIds: stopIdsOf(spec, tokenizer),
      close: async () => {
        await session.release();
        if (removeTmp) await fs.promises.rm(removeTmp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    // every weight the decoder needs is in the ONNX session now
    await model.close();
  }
}

function sessionInfo(spec: ModelSpec) {
  return { numKvHeads: spec.numKvHeads, vocabSize: spec.vocabSize, layers: spec.kvCompression! };
}
