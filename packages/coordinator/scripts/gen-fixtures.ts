/**
 * Writes the coordinator conformance vectors to `fixtures/coordinator/<name>.txt` (format:
 * `fixtures/coordinator/FORMAT.md`). Run from the repo root:
 *   node --conditions=@psyche/source --import tsx packages/coordinator/scripts/gen-fixtures.ts
 * Stale `.txt` files (scenarios that no longer exist) are removed.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCENARIOS } from './scenarios.js';

/** `fixtures/coordinator/` of this repository. */
export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../fixtures/coordinator');

/** Every scenario as `[fileName, text]`, in definition order. */
export function generateFixtures(): [string, string][] {
  const out: [string, string][] = [];
  const names = new Set<string>();
  for (const make of SCENARIOS) {
    const s = make();
    const name = `${s.ctx.name}.txt`;
    if (names.has(name)) throw new Error(`duplicate scenario name ${name}`);
    names.add(name);
    out.push([name, s.text()]);
  }
  return out;
}

function main(): void {
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const files = generateFixtures();
  const keep = new Set(files.map(([n]) => n));
  for (const f of readdirSync(FIXTURE_DIR))
    if (f.endsWith('.txt') && !keep.has(f)) rmSync(join(FIXTURE_DIR, f));
  for (const [name, text] of files) writeFileSync(join(FIXTURE_DIR, name), text);
  console.log(`wrote ${files.length} scenarios to ${FIXTURE_DIR}`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
