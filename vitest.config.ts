import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/**
 * One vitest project per package under `packages/`. Tests import workspace packages through the
 * `@psyche/source` export condition, so `src/` is tested directly without a build.
 */
function packageProjects(): TestProjectInlineConfiguration[] {
  return readdirSync(new URL('./packages', import.meta.url), { withFileTypes: true })
    .filter(
      (d) => d.isDirectory() && existsSync(new URL(`./packages/${d.name}/package.json`, import.meta.url)),
    )
    .map((d) => ({
      extends: true,
      test: {
        name: d.name,
        root: fileURLToPath(new URL(`./packages/${d.name}`, import.meta.url)),
        include: ['test/**/*.test.ts'],
      },
    }));
}

export default defineConfig({
  resolve: { conditions: ['@psyche/source'] },
  ssr: { resolve: { conditions: ['@psyche/source'], externalConditions: ['@psyche/source'] } },
  test: {
    setupFiles: [new URL('./scripts/vitest-setup.ts', import.meta.url).pathname],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', 'json'],
    outputFile: { json: fileURLToPath(new URL('./test-results/vitest.json', import.meta.url)) },
    projects: packageProjects(),
  },
});
