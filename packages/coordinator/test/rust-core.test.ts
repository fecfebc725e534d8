/**
 * Runs the Rust crate `programs/coordinator-core` (`cargo test --offline`, zero dependencies) and checks that it
 * passed and that its conformance test replayed every scenario file of `fixtures/coordinator/`, so the TypeScript
 * and Rust state machines are checked against the same vectors in one CI run.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const crateDir = join(repoRoot, 'programs', 'coordinator-core');
const fixturesDir = join(repoRoot, 'fixtures', 'coordinator');

/** `$CARGO`, else `~/.cargo/bin/cargo` when present, else `cargo` from `PATH`. */
function cargoBinary(): string {
  if (process.env.CARGO) return process.env.CARGO;
  const home = join(homedir(), '.cargo', 'bin', 'cargo');
  return existsSync(home) ? home : 'cargo';
}

interface CargoRun {
  code: number;
  output: string;
}

function runCargoTest(): Promise<CargoRun> {
  return new Promise((resolve) => {
    execFile(
      cargoBinary(),
      // --nocapture: the replay test prints `replayed N scenarios` from a passing test.
      ['test', '--offline', '--', '--nocapture'],
      {
        cwd: crateDir,
        env: { ...process.env, CARGO_TERM_COLOR: 'never' },
        timeout: 300_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, output: `${stdout}\n${stderr}${error && code === -1 ? `\n${error.message}` : ''}` });
      },
    );
  });
}

describe('programs/coordinator-core (Rust)', () => {
  it('cargo test --offline passes and replays every conformance scenario', { timeout: 330_000 }, async () => {
    const scenarioFiles = readdirSync(fixturesDir).filter((f) => f.endsWith('.txt'));
    expect(scenarioFiles.length).toBeGreaterThanOrEqual(40);

    const { code, output } = await runCargoTest();
    // On failure, the assertion message carries the tail of cargo's output.
    expect(code, output.slice(-4000)).toBe(0);
    expect(output).not.toMatch(/test result: FAILED/);

    const results = [...output.matchAll(/test result: ok\. (\d+) passed; (\d+) failed/g)];
    expect(results.length).toBeGreaterThanOrEqual(3); // unit tests, integration tests, doc-tests
    expect(results.every((m) => m[2] === '0')).toBe(true);
    const passed = results.reduce((n, m) => n + Number(m[1]), 0);
    expect(passed).toBeGreaterThan(20);

    const replayed = /replayed (\d+) scenarios \((\d+) events, (\d+) checks\)/.exec(output);
    expect(replayed, 'the replay test must report how many scenarios it replayed').not.toBeNull();
    expect(Number(replayed![1])).toBe(scenarioFiles.length);
    expect(Number(replayed![2])).toBeGreaterThan(scenarioFiles.length); // every scenario has events
  });
});
