import ort from 'onnxruntime-node';
import { badInput, badSetting } from '../core/errors.ts';
import { GraphBuilder } from './onnx/builder.ts';

/** Where graphs run. `auto` takes the platform's GPU provider when this onnxruntime build has it. */
export type Device = 'auto' | 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';
export const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'];

/** The GPU provider worth trying first on each platform (what onnxruntime-node ships or can load there). */
function platformGpu(): Device | null {
  if (process.platform === 'linux') return 'cuda';
  if (process.platform === 'win32') return 'dml';
  if (process.platform === 'darwin') return 'coreml';
  return null;
}

/** Providers this onnxruntime build knows about (bundled or loadable). */
export function knownProviders(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}

// A one-node graph: creating a session on it proves a provider actually loads on this machine.
function probeGraph(): Uint8Array {
  const g = new GraphBuilder('probe');
  g.output('y', g.op('Identity', [g.input('x', [1])]), [1]);
  return g.build();
}

async function providerWorks(name: string): Promise<boolean> {
  try {
    const s = await ort.InferenceSession.create(probeGraph(), { executionProviders: [name] });
    await s.release();
    return true;
  } catch {
    return false;
  }
}

export interface EngineOptions {
  device?: Device;
  /** Intra-op threads; onnxruntime's default (all cores) when unset. */
  threads?: number;
}

/**
 * Owns the onnxruntime sessions of a job. Sessions are cached by graph key: one decoder-layer session
 * serves every layer of a model because the weights are graph inputs.
 */
export class Engine {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  private constructor(
    /** The execution provider every session of this engine uses, as onnxruntime names it. */
    readonly provider: string,
    private readonly threads: number | undefined,
  ) {}

  static async create(options: EngineOptions = {}): Promise<Engine> {
    const device = options.device ?? 'cpu';
    if (!DEVICES.includes(device)) {
      throw badInput(`unknown device "${device}"; choose one of ${DEVICES.join(', ')}`);
    }
    if (device === 'cpu') return new Engine('cpu', options.threads);
    const wanted = device === 'auto' ? platformGpu() : device;
    if (wanted && knownProviders().includes(wanted) && (await providerWorks(wanted))) {
      return new Engine(wanted, options.threads);
    }
    if (device === 'auto') return new Engine('cpu', options.threads);
    throw badSetting(
      'device',
      `device "${device}" is not available in this onnxruntime build on this machine ` +
        `(known providers: ${knownProviders().join(', ')}); choose cpu or auto`,
    );
  }

  /** The options every session of this engine is created with (also for sessions it does not cache). */
  sessionOptions(): ort.InferenceSession.SessionOptions {
    return {
      executionProviders: this.provider === 'cpu' ? ['cpu'] : [this.provider, 'cpu'],
      graphOptimizationLevel: 'all',
      // Without the arena, memory a run used returns to the system when the run ends. With it, every session
      // keeps its largest run's activations for as long as it lives: a 1B model's compress held the head's
      // 128K-vocabulary logits and each layer variant's buffers side by side, 3.8 GiB at its peak against
      // 2.3 GiB without, in the same time (docs/benchmarks.md).
      enableCpuMemArena: false,
      ...(this.threads ? { intraOpNumThreads: this.threads } : {}),
    };
  }

  session(key: string, build: () => Uint8Array): Promise<ort.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(build(), this.sessionOptions());
      this.sessions.set(key, s);
    }
    return s;
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}

export function f32(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

export function i32(data: Int32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int32', data, dims);
}
