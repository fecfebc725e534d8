import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey } from '@libp2p/interface';
import { createP2PNode, type P2PNode, type P2PNodeEvents, type P2PNodeInit } from '../src/index.js';

/** Deterministic pseudo-random bytes (xorshift32) so payloads are reproducible across processes. */
export function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Generates `n` ed25519 keys. */
export async function keys(n: number): Promise<Ed25519PrivateKey[]> {
  return Promise.all(Array.from({ length: n }, () => generateKeyPair('Ed25519')));
}

/** Creates and starts nodes for `keys`; all allowlist each other unless `init.allowlist` is given. */
export async function startNodes(
  ks: Ed25519PrivateKey[],
  init: Partial<P2PNodeInit> = {},
  registry: P2PNode[] = [],
): Promise<P2PNode[]> {
  const nodes: P2PNode[] = [];
  for (const k of ks) {
    const node = await createP2PNode({
      runId: 'test-run',
      privateKey: k,
      allowlist: ks.map((x) => x.publicKey.raw),
      retryBackoffMs: 50,
      ...init,
    });
    registry.push(node);
    await node.start();
    nodes.push(node);
  }
  return nodes;
}

/** Resolves with the first event `name` on `node` matching `pred`; rejects after `timeoutMs`. */
export function nextEvent<K extends keyof P2PNodeEvents>(
  node: P2PNode,
  name: K,
  pred: (detail: P2PNodeEvents[K]['detail']) => boolean = () => true,
  timeoutMs = 20_000,
): Promise<P2PNodeEvents[K]['detail']> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      node.removeEventListener(name, handler as never);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(name)}`));
    }, timeoutMs);
    const handler = (evt: P2PNodeEvents[K]): void => {
      if (!pred(evt.detail)) return;
      clearTimeout(timer);
      node.removeEventListener(name, handler as never);
      resolve(evt.detail);
    };
    node.addEventListener(name, handler as never);
  });
}

/** Polls `cond` every 20 ms until true; rejects with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Stops every node, ignoring errors. */
export async function stopAll(nodes: P2PNode[]): Promise<void> {
  await Promise.all(nodes.splice(0).map((n) => n.stop().catch(() => undefined)));
}
