import type { RejectionReason } from './announcement.js';
import { EWMA_ALPHA } from './constants.js';

/** Per-peer transfer statistics. Latency/bandwidth are exponential moving averages (alpha {@link EWMA_ALPHA}). */
export interface PeerStats {
  peerId: string;
  /** Payload bytes received from this peer (blob protocol). */
  bytesIn: number;
  /** Payload bytes served to this peer (blob protocol). */
  bytesOut: number;
  /** Request→response-header time in ms; `null` until measured. */
  latencyMs: number | null;
  /** Download throughput in bytes/s; `null` until measured, 0 after a failed transfer with no bytes. */
  bandwidthBytesPerSec: number | null;
  /** Completed, hash-verified downloads from this peer. */
  fetchSuccesses: number;
  /** Failed download attempts (timeouts, errors, bad data). */
  fetchFailures: number;
  /** Blobs from this peer whose hash did not match (each also counts as a penalty). */
  hashMismatches: number;
}

/** Bytes transferred in one round. `bytesIn`/`bytesOut` are blob payload only; gossip is counted apart. */
export interface RoundBytes {
  /** Blob payload bytes received (blob protocol). */
  bytesIn: number;
  /** Blob payload bytes served (blob protocol). */
  bytesOut: number;
  /**
   * Gossip bytes received: the size of every announcement gossipsub delivered to our validator on the run
   * topic (accepted or rejected; duplicates gossipsub suppressed are not seen). Gossipsub framing and control
   * messages are not included.
   */
  gossipBytesIn: number;
  /** Gossip bytes sent for our own announcements: message size × peers it was sent to (forwarding not seen). */
  gossipBytesOut: number;
}

/** Snapshot returned by `P2PNode.metrics()`. */
export interface MetricsSnapshot {
  peers: PeerStats[];
  /** Blob payload and gossip bytes per round (keyed by the round current at the time; -1 before any round is set). */
  rounds: Record<number, RoundBytes>;
  announcementsAccepted: number;
  announcementsPublished: number;
  announcementsRejected: Record<RejectionReason, number>;
  /** Blob transfers being served right now. */
  servesInFlight: number;
  blobRequestsServed: number;
  blobRequestsRefused: number;
  /** Inbound blob frames that failed to parse (never crash the node). */
  malformedFrames: number;
  /** Connections refused by the allowlist gater. */
  connectionsDenied: number;
  /** Replay-protection entries held now (bounded by `maxReplayEntries`). */
  replayEntries: number;
  /** Replay-protection entries evicted by the `maxReplayEntries` cap (round pruning not counted). */
  replayEntriesEvicted: number;
  /** Blobs with announced holders tracked now (bounded by `maxHolderEntries`). */
  holderEntries: number;
  /** Holder entries (blobs, or single holders over the per-blob cap) evicted by the caps. */
  holderEntriesEvicted: number;
  /** Own announcement keys kept now (nonce counter + announcement to re-broadcast; ≤ `maxHolderEntries`). */
  ownAnnouncementEntries: number;
  /** Own announcement keys evicted by the `maxHolderEntries` cap (round pruning not counted). */
  ownAnnouncementEntriesEvicted: number;
}

/** Sizes of the node's bounded state, filled in by the node at snapshot time. */
export interface StateGauges {
  replayEntries: number;
  replayEntriesEvicted: number;
  holderEntries: number;
  ownAnnouncementEntries: number;
}

/** Mutable metrics store; {@link snapshot} copies. */
export class Metrics {
  private readonly peers = new Map<string, PeerStats>();
  private readonly rounds = new Map<number, RoundBytes>();
  currentRound = -1;
  announcementsAccepted = 0;
  announcementsPublished = 0;
  readonly announcementsRejected: Record<RejectionReason, number> = {
    oversized: 0,
    malformed: 0,
    unsigned: 0,
    'bad-signature': 0,
    'wrong-run': 0,
    'off-round': 0,
    'not-allowed': 0,
    replayed: 0,
  };
  servesInFlight = 0;
  blobRequestsServed = 0;
  blobRequestsRefused = 0;
  malformedFrames = 0;
  connectionsDenied = 0;
  holderEntriesEvicted = 0;
  ownAnnouncementEntriesEvicted = 0;

  /** The stats record of `peerId`, created empty on first use. */
  peer(peerId: string): PeerStats {
    let p = this.peers.get(peerId);
    if (p === undefined) {
      p = {
        peerId,
        bytesIn: 0,
        bytesOut: 0,
        latencyMs: null,
        bandwidthBytesPerSec: null,
        fetchSuccesses: 0,
        fetchFailures: 0,
        hashMismatches: 0,
      };
      this.peers.set(peerId, p);
    }
    return p;
  }

  /** The live stats record of `peerId`, or `undefined` if nothing was recorded (read-only use). */
  snapshotPeer(peerId: string): PeerStats | undefined {
    return this.peers.get(peerId);
  }

  private round(): RoundBytes {
    let r = this.rounds.get(this.currentRound);
    if (r === undefined) {
      r = { bytesIn: 0, bytesOut: 0, gossipBytesIn: 0, gossipBytesOut: 0 };
      this.rounds.set(this.currentRound, r);
    }
    return r;
  }

  addIn(peerId: string, n: number): void {
    this.peer(peerId).bytesIn += n;
    this.round().bytesIn += n;
  }

  addOut(peerId: string, n: number): void {
    this.peer(peerId).bytesOut += n;
    this.round().bytesOut += n;
  }

  /** Gossip message bytes received (counted in the current round only; no peer attribution). */
  addGossipIn(n: number): void {
    this.round().gossipBytesIn += n;
  }

  /** Gossip message bytes sent (message size × recipients). */
  addGossipOut(n: number): void {
    this.round().gossipBytesOut += n;
  }

  recordLatency(peerId: string, ms: number): void {
    const p = this.peer(peerId);
    p.latencyMs = ewma(p.latencyMs, ms);
  }

  recordBandwidth(peerId: string, bytesPerSec: number): void {
    const p = this.peer(peerId);
    p.bandwidthBytesPerSec = ewma(p.bandwidthBytesPerSec, bytesPerSec);
  }

  /** Deep copy of everything; `gauges` are the node's current state sizes. */
  snapshot(gauges: StateGauges): MetricsSnapshot {
    return {
      peers: [...this.peers.values()].map((p) => ({ ...p })),
      rounds: Object.fromEntries([...this.rounds].map(([k, v]) => [k, { ...v }])),
      announcementsAccepted: this.announcementsAccepted,
      announcementsPublished: this.announcementsPublished,
      announcementsRejected: { ...this.announcementsRejected },
      servesInFlight: this.servesInFlight,
      blobRequestsServed: this.blobRequestsServed,
      blobRequestsRefused: this.blobRequestsRefused,
      malformedFrames: this.malformedFrames,
      connectionsDenied: this.connectionsDenied,
      replayEntries: gauges.replayEntries,
      replayEntriesEvicted: gauges.replayEntriesEvicted,
      holderEntries: gauges.holderEntries,
      holderEntriesEvicted: this.holderEntriesEvicted,
      ownAnnouncementEntries: gauges.ownAnnouncementEntries,
      ownAnnouncementEntriesEvicted: this.ownAnnouncementEntriesEvicted,
    };
  }
}

function ewma(prev: number | null, sample: number): number {
  return prev === null ? sample : prev + EWMA_ALPHA * (sample - prev);
}

/**
 * Orders candidate peers best-first, like Psyche's model-sharing ranking: bandwidth tier (measured > 0,
 * unmeasured, measured 0), then higher bandwidth, then lower latency (unmeasured latency last), then fewer
 * failures, then the input order. Peers with hash mismatches go after all others. Stable.
 */
export function rankPeers(
  candidates: readonly string[],
  stats: (peerId: string) => PeerStats | undefined,
): string[] {
  const tier = (s: PeerStats | undefined): number => {
    if (s === undefined || s.bandwidthBytesPerSec === null) return 1;
    return s.bandwidthBytesPerSec > 0 ? 0 : 2;
  };
  return candidates
    .map((id, index) => ({ id, index, s: stats(id) }))
    .sort((a, b) => {
      const ma = a.s?.hashMismatches ?? 0;
      const mb = b.s?.hashMismatches ?? 0;
      if (ma > 0 !== mb > 0) return ma > 0 ? 1 : -1;
      const ta = tier(a.s);
      const tb = tier(b.s);
      if (ta !== tb) return ta - tb;
      const ba = a.s?.bandwidthBytesPerSec ?? 0;
      const bb = b.s?.bandwidthBytesPerSec ?? 0;
      if (ba !== bb) return bb - ba;
      const la = a.s?.latencyMs ?? Number.POSITIVE_INFINITY;
      const lb = b.s?.latencyMs ?? Number.POSITIVE_INFINITY;
      if (la !== lb) return la < lb ? -1 : 1;
      const fa = a.s?.fetchFailures ?? 0;
      const fb = b.s?.fetchFailures ?? 0;
      if (fa !== fb) return fa - fb;
      return a.index - b.index;
    })
    .map((c) => c.id);
}
