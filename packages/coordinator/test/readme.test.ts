import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = join(pkgDir, '../..');

describe('README', () => {
  it('opens with an example that runs as a real process and prints a plausible result', {
    timeout: 60_000,
  }, async () => {
    const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
    const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(code).toBeDefined();
    // Inside the package directory so that the self-reference `@psyche/coordinator` resolves to src/.
    const file = join(pkgDir, `.readme-example-${process.pid}.ts`);
    writeFileSync(file, code!);
    const tsx = createRequire(join(repoRoot, 'package.json')).resolve('tsx');
    try {
      const out = await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ['--conditions=@psyche/source', '--import', tsx, file],
          { cwd: pkgDir, timeout: 50_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
        );
      });
      expect(out).toMatch(/^RoundTrain step 1$/m);
      expect(out).toMatch(/^witnesses \[ 0, 1, 2 \]$/m);
      // 8 sequences over 3 trainers → 3 + 3 + 2, contiguous from 0.
      const sizes = [...out.matchAll(/start: (\d+), end: (\d+)/g)].map(
        (m) => Number(m[2]) - Number(m[1]) + 1,
      );
      expect(sizes.sort()).toEqual([2, 3, 3]);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
