/**
 * Prompts for Try it: a file of many (one per line, or JSON lines with a `prompt` field) for
 * `generate --prompts`, and a few beginnings taken from the calibration text to prefill the app's box.
 */
import fs from 'node:fs';
import path from 'node:path';

import { badInput, RankwiseError } from '../core/errors.ts';
import { unreadable } from '../model/fs-errors.ts';
import { readTextChunks, type ReadOptions } from '../data/read.ts';
import { MAX_PROMPTS } from './try-run.ts';

const MAX_PROMPT_FILE_BYTES = 16 * 2 ** 20;

export async function readPromptsFile(file: string): Promise<string[]> {
  const abs = path.resolve(file);
  let text: string;
  try {
    const stat = await fs.promises.stat(abs);
    if (!stat.isFile()) throw badInput('is not a file of prompts', abs);
    if (stat.size > MAX_PROMPT_FILE_BYTES)
      throw badInput('is over 16 MiB; a prompts file holds prompts, not a corpus', abs);
    text = await fs.promises.readFile(abs, 'utf8');
  } catch (e) {
    if (e instanceof RankwiseError) throw e;
    throw unreadable(e, abs);
  }
  const jsonl = abs.endsWith('.jsonl');
  const prompts: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    if (!jsonl) {
      prompts.push(line);
      return;
    }
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      throw badInput(`line ${i + 1} is not JSON`, abs);
    }
    const prompt = (record as { prompt?: unknown } | null)?.prompt;
    if (typeof prompt !== 'string' || prompt.trim() === '') {
      throw badInput(`line ${i + 1} has no "prompt" string`, abs);
    }
    prompts.push(prompt);
  });
  if (prompts.length === 0) throw badInput('holds no prompt', abs);
  if (prompts.length > MAX_PROMPTS)
    throw badInput(`holds ${prompts.length} prompts; at most ${MAX_PROMPTS}`, abs);
  return prompts;
}

/**
 * A few beginnings of the calibration text's paragraphs (the first words of each, up to `words`), so
 * the first prompt a user sees is in the model's own domain. Only the start of the text is read.
 */
export async function promptSuggestions(
  file: string,
  count = 4,
  words = 8,
  read: ReadOptions = {},
): Promise<string[]> {
  const out: string[] = [];
  let text = '';
  const take = (para: string) => {
    const w = para.trim().split(/\s+/).filter(Boolean);
    if (w.length < 3) return;
    const start = w.slice(0, words).join(' ');
    if (!out.includes(start)) out.push(start);
  };
  for await (const chunk of readTextChunks(file, read)) {
    text += chunk;
    const paras = text.split(/\n\s*\n/);
    // the last paragraph may go on in the next chunk
    text = paras.pop()!;
    for (const para of paras) {
      take(para);
      if (out.length === count) return out;
    }
  }
  take(text);
  return out;
}
