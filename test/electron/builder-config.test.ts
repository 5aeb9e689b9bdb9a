/**
 * Audit #13, item 11: the packaged app flips Electron's fuses. build/electron-builder.yml is read as
 * electron-builder reads it (js-yaml) and validated against electron-builder's own schema, so a misspelt
 * fuse name fails here rather than being ignored at packaging time.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { REPO_ROOT } from '../helpers/paths.ts';

// electron-builder's own dependencies (no typings of their own): loaded as it loads them
const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): unknown };
const { validateConfiguration } = require('app-builder-lib/out/util/config/config.js') as {
  validateConfiguration(config: unknown, debug: { isEnabled: boolean; add(): void }): Promise<void>;
};

const CONFIG = path.join(REPO_ROOT, 'build', 'electron-builder.yml');
const config = () => yaml.load(fs.readFileSync(CONFIG, 'utf8')) as Record<string, unknown>;

describe('build/electron-builder.yml', () => {
  it('is a valid electron-builder configuration', async () => {
    await expect(validateConfiguration(config(), { isEnabled: false, add() {} })).resolves.toBeUndefined();
  });

  it('flips the fuses that close Node-level back doors and pin the app to its checked app.asar', () => {
    expect(config().electronFuses).toMatchObject({
      // ELECTRON_RUN_AS_NODE would turn the signed binary into a plain node
      runAsNode: false,
      // NODE_OPTIONS / --inspect would inject code into the main process
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      // only app.asar, and only when its embedded hash matches
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      // the page comes from app://, never file://
      grantFileProtocolExtraPrivileges: false,
    });
  });

  it('packs the app into an asar archive, which the last two fuses need', () => {
    expect(config().asar).toBe(true);
  });

  it('the schema refuses a misspelt fuse (the test would catch one)', async () => {
    const bad = { ...config(), electronFuses: { runAsnode: false } };
    await expect(validateConfiguration(bad, { isEnabled: false, add() {} })).rejects.toThrow(/electronFuses/);
  });
});
