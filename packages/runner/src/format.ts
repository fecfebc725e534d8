import type { TrainerEvent } from '@psyche/trainer';

function fmtBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}kB`;
  return `${(n / 1024 / 1024).toFixed(2)}MB`;
}

/** Human-readable progress line of an event (undefined: not worth a line). */
export function formatEvent(e: TrainerEvent): string | undefined {
  switch (e.event) {
    case 'round:trained':
      return `step ${e.step} (epoch ${e.epoch}, round ${e.height}) loss ${e.loss.toFixed(4)} tokens/s ${Math.round(e.tokensPerSec)} sent ${fmtBytes(e.bytesSent)}`;
    case 'round:applied':
      return `step ${e.step} applied ${e.results}/${e.expected} results, peers ${e.peers}, bytes in ${fmtBytes(e.bytesIn)} out ${fmtBytes(e.bytesOut)}, params ${e.hash.slice(0, 12)}`;
    case 'joined':
      return `joined epoch ${e.epoch}`;
    case 'warmup:ready':
      return `warmup done (epoch ${e.epoch}, step ${e.step})`;
    case 'warmup:params-fetched':
      return `fetched parameters for step ${e.step} from ${e.from.slice(0, 12)} (${e.hash.slice(0, 12)})`;
    case 'health:reported':
      return `reported unhealthy: ${e.dropped.map((d) => d.slice(0, 12)).join(', ')}`;
    case 'result:rejected':
      return `rejected result of ${e.from.slice(0, 12)} at step ${e.step}: ${e.reason}`;
    case 'checkpoint:saved':
      return `checkpoint of step ${e.step} saved to ${e.dir}`;
    case 'warning':
      return `warning: ${e.message}`;
    case 'finished':
      return `finished at step ${e.step}, params ${e.hash.slice(0, 12)}`;
    default:
      return undefined;
  }
}
