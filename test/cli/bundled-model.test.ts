/**
 * The demo's bundled model and texts: byte for byte the verified copies in ../shared/testdata (read only
 * here; the product never reads ../shared), with their licence notes beside them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { DEMO_EVAL_PATH, DEMO_MODEL_DIR, DEMO_TEXT_PATH } from '../../main/cli/commands/demo.ts';
import { REPO_ROOT, STORIES_DIR, TINYSTORIES_TEXT } from '../helpers/paths.ts';

const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
];

describe('the bundled stories260K', () => {
  it('lives in assets/stories260K', () => {
    expect(DEMO_MODEL_DIR).toBe(path.join(REPO_ROOT, 'assets', 'stories260K'));
  });

  it.each(MODEL_FILES)('%s is byte-identical to ../shared/testdata/stories260K-llama', (name) => {
    const bundled = fs.readFileSync(path.join(DEMO_MODEL_DIR, name));
    expect(bundled.equals(fs.readFileSync(path.join(STORIES_DIR, name)))).toBe(true);
  });

  it('holds the model files and its licence, nothing else', () => {
    expect(fs.readdirSync(DEMO_MODEL_DIR).sort()).toEqual([...MODEL_FILES, 'LICENSE'].sort());
    const license = fs.readFileSync(path.join(DEMO_MODEL_DIR, 'LICENSE'), 'utf8');
    expect(license).toContain('MIT License');
    expect(license).toContain('Andrej Karpathy');
    expect(license).toContain('karpathy/tinyllamas');
  });
});

describe('the demo texts', () => {
  const excerpt = fs.readFileSync(TINYSTORIES_TEXT, 'utf8');

  it.each([
    ['calibration', DEMO_TEXT_PATH],
    ['evaluation', DEMO_EVAL_PATH],
  ])('the %s text is an unmodified TinyStories validation excerpt', (_, file) => {
    const text = fs.readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.length).toBeGreaterThan(5000);
    expect(excerpt).toContain(text.trimEnd());
    expect(text.startsWith('Once upon a time')).toBe(true);
  });

  it('calibrates and evaluates on different stories', () => {
    const calib = fs.readFileSync(DEMO_TEXT_PATH, 'utf8').trimEnd();
    const evaluation = fs.readFileSync(DEMO_EVAL_PATH, 'utf8').trimEnd();
    expect(excerpt.indexOf(calib) + calib.length).toBeLessThanOrEqual(excerpt.indexOf(evaluation));
  });

  it('are credited under their own licence', () => {
    const license = fs.readFileSync(path.join(path.dirname(DEMO_TEXT_PATH), 'LICENSE'), 'utf8');
    expect(license).toContain('CDLA-Sharing-1.0');
    expect(license).toContain('roneneldan/TinyStories');
  });
});
