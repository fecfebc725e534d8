import { readdir, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { DataProviderError } from '../errors.js';

const GLOB_CHARS = /[*?[]/;

/** Converts a glob (`*`, `**`, `?`, `[...]`) over `/`-separated relative paths to a RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        re += `[${glob
          .slice(i + 1, close)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

async function walk(dir: string, rel: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await walk(join(dir, e.name), r, out);
    else if (e.isFile()) out.push(r);
  }
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Expands inputs (files, directories, globs) into absolute file paths. Order: inputs in the order given;
 * within a directory or glob, files sorted by relative path (UTF-16 code-unit order). Duplicates keep
 * their first position. Deterministic on every machine.
 */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (p: string) => {
    if (!seen.has(p)) {
      seen.add(p);
      out.push(p);
    }
  };
  for (const input of inputs) {
    if (GLOB_CHARS.test(input)) {
      const parts = input.split(/[\\/]/);
      const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
      const base = resolve(parts.slice(0, firstGlob).join('/') || '.');
      const pattern = globToRegExp(parts.slice(firstGlob).join('/'));
      const files: string[] = [];
      await walk(base, '', files).catch((cause: unknown) => {
        throw new DataProviderError(
          'NOT_FOUND',
          `input glob ${input}: base directory ${base} cannot be read`,
          {
            parameter: 'inputs',
            value: input,
          },
          { cause },
        );
      });
      const matched = files.filter((f) => pattern.test(f)).sort(byCodeUnit);
      if (matched.length === 0) {
        throw new DataProviderError('NOT_FOUND', `input glob ${input} matched no file`, {
          parameter: 'inputs',
          value: input,
        });
      }
      for (const f of matched) add(join(base, ...f.split('/')));
      continue;
    }
    const p = resolve(input);
    const st = await stat(p).catch(() => null);
    if (!st)
      throw new DataProviderError('NOT_FOUND', `input ${input} does not exist`, {
        parameter: 'inputs',
        value: input,
      });
    if (st.isDirectory()) {
      const files: string[] = [];
      await walk(p, '', files);
      for (const f of files.sort(byCodeUnit)) add(p + sep + f.split('/').join(sep));
    } else add(p);
  }
  return out;
}
