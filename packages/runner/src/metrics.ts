import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsSnapshot } from '@psyche/p2p-transport';
import type { TrainerStats } from '@psyche/trainer';

/** What the `/metrics` endpoint reads on every scrape. */
export interface MetricsSource {
  stats: TrainerStats;
  p2p: MetricsSnapshot;
  peers: number;
}

/** A running Prometheus endpoint. */
export interface MetricsServer {
  /** `http://127.0.0.1:<port>/metrics`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Renders the Prometheus text exposition format (version 0.0.4) of a node's metrics. */
export function renderMetrics(src: MetricsSource): string {
  const lines: string[] = [];
  const g = (name: string, help: string, value: number | null, type: 'gauge' | 'counter' = 'gauge') => {
    lines.push(
      `# HELP ${name} ${help}`,
      `# TYPE ${name} ${type}`,
      `${name} ${value === null ? 'NaN' : value}`,
    );
  };
  const s = src.stats;
  g('psyche_round_step', 'Current coordinator step', s.step);
  g('psyche_training_loss', 'Loss of the last trained round', s.lastLoss);
  g('psyche_tokens_per_second', 'Training throughput of the last round', s.lastTokensPerSec);
  g('psyche_rounds_trained_total', 'Rounds this node trained', s.roundsTrained, 'counter');
  g('psyche_rounds_applied_total', 'Rounds applied to the parameters', s.roundsApplied, 'counter');
  g('psyche_results_accepted_total', "Peers' results accepted", s.resultsAccepted, 'counter');
  g('psyche_results_rejected_total', "Peers' results rejected", s.resultsRejected, 'counter');
  g('psyche_witnesses_sent_total', 'Witnesses sent', s.witnessesSent, 'counter');
  g('psyche_health_checks_sent_total', 'Health checks sent', s.healthChecksSent, 'counter');
  g(
    'psyche_coordinator_rejections_total',
    'Operations the coordinator refused',
    s.coordinatorRejections,
    'counter',
  );
  g('psyche_peer_connections', 'Connected peers', src.peers);
  g(
    'psyche_bytes_in_total',
    'Blob bytes received',
    src.p2p.peers.reduce((a, p) => a + p.bytesIn, 0),
    'counter',
  );
  g(
    'psyche_bytes_out_total',
    'Blob bytes served',
    src.p2p.peers.reduce((a, p) => a + p.bytesOut, 0),
    'counter',
  );
  g(
    'psyche_announcements_accepted_total',
    'Gossip announcements accepted',
    src.p2p.announcementsAccepted,
    'counter',
  );
  lines.push('# HELP psyche_announcements_rejected_total Gossip announcements rejected, by reason');
  lines.push('# TYPE psyche_announcements_rejected_total counter');
  for (const [reason, n] of Object.entries(src.p2p.announcementsRejected)) {
    lines.push(`psyche_announcements_rejected_total{reason="${reason}"} ${n}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Serves `GET /metrics` (Prometheus text format) on 127.0.0.1. `port` 0 picks an ephemeral port.
 */
export function startMetricsServer(port: number, read: () => MetricsSource): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(renderMetrics(read()));
    } else {
      res.writeHead(404).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const p = (server.address() as AddressInfo).port;
      resolve({
        url: `http://127.0.0.1:${p}/metrics`,
        port: p,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
