#!/usr/bin/env node
import { runCli } from './cli.js';

/**
 * `psyche-coordinator` entry point. SIGINT/SIGTERM stop a running server gracefully (pending inputs made durable,
 * final snapshot written, sockets closed) and exit 0.
 */
const result = await runCli(process.argv.slice(2));
if (typeof result === 'number') {
  process.exitCode = result;
} else {
  const server = result;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`[coordinator] ${signal}: shutting down\n`);
    server.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`[coordinator] shutdown failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
