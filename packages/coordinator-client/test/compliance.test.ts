import type { CoordinatorState } from '@psyche/coordinator';
import { generateKeypair } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';
import type { PsychePayloads } from '../src/psyche-engine.js';
import { coordinatorClientComplianceTests } from '../src/test-suite.js';
import { ServerProcess, testRunToml } from './helpers/server-process.js';

// The compliance suite against the local backend: a real `psyche-coordinator serve` child process on 127.0.0.1.
coordinatorClientComplianceTests('local server (child process)', async () => {
  const server = new ServerProcess(
    testRunToml({
      runId: 'compliance',
      initMinClients: 2,
      minClients: 1,
      epochTime: 3,
      extra: '\n[model]\ncheckpoint = { type = "Hub", repo_id = "org/base" }\n',
    }),
  );
  await server.start();
  return {
    createClient: () =>
      LocalCoordinatorClient.connect<CoordinatorState, PsychePayloads>({
        url: server.wsUrl,
        keypair: generateKeypair(),
        runId: 'compliance',
      }),
    teardown: () => server.dispose(),
  };
});
