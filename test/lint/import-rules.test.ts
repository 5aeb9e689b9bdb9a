import { ESLint } from 'eslint';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/paths.ts';

/** Lints a snippet as if it lived at `file`, with the project's own eslint.config.js. */
async function lint(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: REPO_ROOT });
  const [result] = await eslint.lintText(code, { filePath: path.join(REPO_ROOT, file) });
  return result.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('the process-boundary import rules', () => {
  it('forbid electron anywhere under main/', async () => {
    const msgs = await lint('main/jobs/x.ts', "import { app } from 'electron';\nexport const a = app;\n");
    expect(msgs.join('\n')).toMatch(/no-restricted-imports.*electron/);
  });

  it('forbid Node built-ins in the renderer, with or without the node: prefix', async () => {
    for (const mod of ['fs', 'node:path', 'child_process', 'worker_threads']) {
      const msgs = await lint('renderer/app/x.ts', `import * as m from '${mod}';\nexport const a = m;\n`);
      expect(msgs.join('\n')).toMatch(/no-restricted-imports/);
    }
  });

  it('let the renderer import types from main/ but not values', async () => {
    const types = await lint(
      'renderer/app/x.ts',
      "import type { ModelSpec } from '../../main/model/types.ts';\nexport type S = ModelSpec;\n",
    );
    expect(types).toEqual([]);
    const values = await lint(
      'renderer/app/x.ts',
      "import { openModel } from '../../main/model/model.ts';\nexport const o = openModel;\n",
    );
    expect(values.join('\n')).toMatch(/no-restricted-imports.*only types/);
  });

  it('forbid onnxruntime in the renderer', async () => {
    const msgs = await lint(
      'renderer/app/x.ts',
      "import ort from 'onnxruntime-node';\nexport const o = ort;\n",
    );
    expect(msgs.join('\n')).toMatch(/no-restricted-imports/);
  });

  it('allow Node and onnxruntime in main/', async () => {
    const msgs = await lint(
      'main/runtime/x.ts',
      "import fs from 'node:fs';\nimport ort from 'onnxruntime-node';\nexport const a = [fs, ort];\n",
    );
    expect(msgs).toEqual([]);
  });
});
