/**
 * Text records from JSON Lines and JSON documents (the shapes Hugging Face datasets export). Every
 * rejection says where (line or item) and what shape was expected, since these files are often
 * hand-made or converted by a script the user can fix.
 */
import { badInput } from '../core/errors.ts';

const JSONL_SHAPE = 'each line must be one JSON object like {"text": "..."}';
const JSON_SHAPES =
  'expected an array of {"text": "..."} objects, an array of strings, or one object with a "text" string';

/** `.jsonl`: one object per line with a string `text`; blank lines skipped; line numbers count from 1. */
export function jsonlRecords(content: string, file: string): string[] {
  const records: string[] = [];
  const lines = content.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim().length === 0) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw badInput(`line ${i + 1} is not valid JSON (${(e as Error).message}); ${JSONL_SHAPE}`, file);
    }
    const text = textField(value);
    if (text === undefined)
      throw badInput(`line ${i + 1} has no string "text" field${fieldsOf(value)}; ${JSONL_SHAPE}`, file);
    records.push(text);
  }
  return records;
}

/** `.json`: the shapes named in JSON_SHAPES; array items are numbered from 0, as in the file's own indexing. */
export function jsonRecords(content: string, file: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (e) {
    const hint = looksLikeJsonl(content)
      ? ': it looks like JSON Lines, so rename it to .jsonl'
      : `; ${JSON_SHAPES}`;
    throw badInput(`is not valid JSON (${(e as Error).message})${hint}`, file);
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      const text = typeof item === 'string' ? item : textField(item);
      if (text === undefined) {
        throw badInput(
          `item [${i}] is neither a string nor an object with a string "text" field${fieldsOf(item)}; ${JSON_SHAPES}`,
          file,
        );
      }
      return text;
    });
  }
  const text = textField(value);
  if (text === undefined)
    throw badInput(`has no text in a shape Rankwise reads${fieldsOf(value)}; ${JSON_SHAPES}`, file);
  return [text];
}

function textField(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const text = (value as Record<string, unknown>).text;
  return typeof text === 'string' ? text : undefined;
}

/** " (its fields: a, b)" for an object, so the user sees which key holds their text. */
function fieldsOf(value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return ` (found ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`})`;
  }
  const keys = Object.keys(value);
  return keys.length ? ` (its fields: ${keys.slice(0, 10).join(', ')})` : ' (it is an empty object)';
}

/** A .json that fails to parse as a whole but whose first two non-blank lines are objects is JSON Lines. */
function looksLikeJsonl(content: string): boolean {
  const lines = content
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .slice(0, 2);
  if (lines.length < 2) return false;
  return lines.every((l) => {
    try {
      const v: unknown = JSON.parse(l);
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    } catch {
      return false;
    }
  });
}
