/** Re-exports for the fixture scripts (one import site for the package under test). */

export { readU64le as readU64leExport } from '../src/bytes.js';
export * from '../src/index.js';
