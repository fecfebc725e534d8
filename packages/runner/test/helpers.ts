import type { TestnetNode } from '../src/index.js';

/** Events of one kind from a node's JSON log. */
export function eventsOf(node: TestnetNode, kind: string): Record<string, unknown>[] {
  return node.events.filter((e) => e.event === kind);
}

/** Map step → parameter hash after that step was applied, for one node. */
export function appliedHashes(node: TestnetNode): Map<number, string> {
  return new Map(eventsOf(node, 'round:applied').map((e) => [e.step as number, e.hash as string]));
}

/** Polls `predicate` every 200 ms until it holds; rejects with `what` after `timeoutMs` (a generous bound). */
export async function until(predicate: () => boolean, what: string, timeoutMs = 240_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Human context for a failed assertion: the tail of every node's stderr. */
export function diagnostics(nodes: readonly TestnetNode[]): string {
  return nodes.map((n) => `--- ${n.name} stderr:\n${n.stderr.slice(-2000)}`).join('\n');
}
