import { describe, expect, it } from 'vitest';
import { Engine, f32, knownProviders } from '../../main/runtime/engine.ts';
import { GraphBuilder } from '../../main/runtime/onnx/builder.ts';

function double(engine: Engine) {
  const g = new GraphBuilder('double');
  const x = g.input('x', [3]);
  g.output('y', g.op('Add', [x, x]), [3]);
  return engine.session('double', () => g.build());
}

describe('execution providers', () => {
  it('runs on the CPU by default and reports it', async () => {
    const engine = await Engine.create();
    expect(engine.provider).toBe('cpu');
    const out = await (await double(engine)).run({ x: f32(Float32Array.of(1, 2, 3), [3]) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([2, 4, 6]);
    await engine.release();
  });

  it('auto takes a provider that actually loads, falling back to the CPU, and says which', async () => {
    const engine = await Engine.create({ device: 'auto' });
    expect(['cpu', ...knownProviders()]).toContain(engine.provider);
    const out = await (await double(engine)).run({ x: f32(Float32Array.of(1, 2, 3), [3]) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([2, 4, 6]);
    await engine.release();
  });

  it('refuses, by name, a provider this onnxruntime build cannot load', async () => {
    const missing = (['coreml', 'dml'] as const).find((p) => !knownProviders().includes(p));
    expect(missing).toBeDefined();
    await expect(Engine.create({ device: missing })).rejects.toMatchObject({
      kind: 'bad-input',
      setting: 'device',
      message: expect.stringMatching(
        new RegExp(`^device "${missing}" is not available.*known providers: cpu.*; choose cpu or auto$`),
      ),
    });
  });
});
