// Prints the one line CI counts: `N passed, N failed`, read from vitest's JSON report.
import { existsSync, readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'test-results/vitest.json';
if (!existsSync(file)) {
  console.log('0 passed, 1 failed');
  process.exit(0);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
// A file that failed to load counts as one failure so that a broken suite is never silent.
const failedSuites = (r.testResults ?? []).filter(
  (s) => s.status === 'failed' && (s.assertionResults ?? []).length === 0,
).length;
console.log(`${r.numPassedTests} passed, ${r.numFailedTests + failedSuites} failed`);
