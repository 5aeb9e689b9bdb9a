import { describe, expect, it } from 'vitest';
import { errorInfoOf, guidanceFor } from '../../renderer/app/errors.ts';
import {
  formatBytes,
  formatCount,
  formatError,
  formatSeconds,
  formatTokens,
} from '../../main/core/format.ts';
import { baseName, dirName, joinPath, suggestExportPath } from '../../renderer/app/paths.ts';
import { ApiError } from '../../renderer/transport/websocket.ts';

describe('engine errors', () => {
  it('reads the error info from either transport’s errors, and from anything thrown', () => {
    const info = { kind: 'bad-input' as const, message: 'bad window' };
    expect(errorInfoOf(new ApiError(info))).toEqual(info);
    expect(errorInfoOf(Object.assign(new Error('x'), { info }))).toEqual(info);
    expect(errorInfoOf(new Error('boom'))).toEqual({ kind: 'internal', message: 'boom' });
    expect(errorInfoOf('text')).toEqual({ kind: 'internal', message: 'text' });
  });

  it('says what to do for every kind, in the terms of the step it happened in', () => {
    const unsupported = guidanceFor({ kind: 'unsupported-model', message: 'x' }, 'model');
    expect(unsupported.title).toMatch(/not supported/);
    expect(unsupported.advice).toMatch(
      /Llama \(2 and 3.x\), Mistral, Qwen2, Qwen3, Phi-3, Gemma 2 and GPT-2/,
    );
    expect(guidanceFor({ kind: 'bad-input', message: 'x' }, 'model').advice).toMatch(/config\.json/);
    expect(guidanceFor({ kind: 'bad-input', message: 'x' }, 'data').advice).toMatch(/shorter window/);
    expect(guidanceFor({ kind: 'bad-input', message: 'x' }, 'export').advice).toMatch(/Replace the folder/);
    expect(guidanceFor({ kind: 'cancelled', message: 'x' }, 'run').advice).toMatch(/Resume/);
    expect(
      guidanceFor({ kind: 'internal', message: 'the connection to the Rankwise server closed' }, 'run').title,
    ).toMatch(/connection/);
    expect(guidanceFor({ kind: 'internal', message: 'NaN in layer 3' }, 'run').title).toBe(
      'The engine failed',
    );
  });
});

describe('formatting', () => {
  it('writes sizes in binary units, counts, durations and errors as a person reads them', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(20 * 2 ** 30)).toBe('20.0 GiB');
    expect(formatCount(7_241_732_096)).toBe('7.2 B');
    expect(formatCount(124_000_000)).toBe('124 M');
    expect(formatTokens(32768)).toBe('32K');
    expect(formatTokens(1000)).toBe('1,000');
    expect(formatSeconds(42)).toBe('42 s');
    expect(formatSeconds(90)).toBe('1 min 30 s');
    expect(formatSeconds(7260)).toBe('2 h 1 min');
    expect(formatSeconds(null)).toBe('–');
    expect(formatError(0.0512)).toBe('0.051');
    expect(formatError(3e-7)).toBe('3.0e-7');
    expect(formatError(0)).toBe('0');
  });
});

describe('paths', () => {
  it('splits and joins POSIX and Windows paths without node:path', () => {
    expect(baseName('/models/llama-7b/')).toBe('llama-7b');
    expect(dirName('/models/llama-7b')).toBe('/models');
    expect(dirName('/llama')).toBe('/');
    expect(baseName('C:\\models\\qwen')).toBe('qwen');
    expect(joinPath('C:\\out', 'x')).toBe('C:\\out\\x');
    expect(joinPath('/out/', 'x')).toBe('/out/x');
    expect(suggestExportPath('/models/llama-7b', 'kqsvd')).toBe('/models/llama-7b-kqsvd');
    expect(suggestExportPath('D:\\m\\qwen', 'eigen')).toBe('D:\\m\\qwen-eigen');
  });
});
