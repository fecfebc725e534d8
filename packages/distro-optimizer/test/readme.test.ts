import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const pkgDir = new URL('../', import.meta.url);

describe('README', () => {
  it('opens with a snippet that runs as-is (real child process, wasm backend)', async () => {
    const readme = readFileSync(new URL('README.md', pkgDir), 'utf8');
    const snippet = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(snippet).toBeDefined();
    const dir = new URL('.tmp/', pkgDir);
    mkdirSync(dir, { recursive: true });
    const file = new URL(`readme-snippet-${process.pid}.ts`, dir);
    writeFileSync(file, snippet!);
    // tsx is a root devDependency: resolve it from the repository root.
    const tsx = createRequire(new URL('../../package.json', pkgDir)).resolve('tsx');
    const polyfills = new URL('../../scripts/polyfills.mjs', pkgDir).pathname;
    try {
      const { stdout } = await run(
        process.execPath,
        ['--conditions=@psyche/source', '--import', tsx, '--import', polyfills, file.pathname],
        { cwd: pkgDir.pathname, timeout: 120_000 },
      );
      const lines = stdout.split('\n').filter((l) => l.startsWith('step '));
      expect(lines).toHaveLength(5);
      // 256×256 with chunk 64 → 16 blocks × 32 coefficients, u16 indices + f32 values = 3072 B + header/layout
      for (const l of lines) expect(l).toMatch(/sent 3\d{3} B instead of 262144 B dense/);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
