import { WebSocket } from 'ws';
import { decodeTagged } from '../../src/codec.js';
import { authMessage, fromHex, type Keypair, sign, toHex } from '../../src/keys.js';

/** A hand-driven protocol connection, for sending exactly the bytes a test wants. */
export class RawConn {
  readonly ws: WebSocket;
  private readonly inbox: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | undefined;
  private closeWaiters: (() => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (d) => {
      this.inbox.push(decodeTagged(d.toString()) as Record<string, unknown>);
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of [...this.waiters.splice(0), ...this.closeWaiters.splice(0)]) w();
    });
    ws.on('error', () => {});
  }

  static async open(url: string): Promise<RawConn> {
    const ws = new WebSocket(url);
    const c = new RawConn(ws);
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    return c;
  }

  /** Next message of type `t` (skipping others, e.g. state broadcasts). */
  async next(t: string): Promise<Record<string, unknown>> {
    for (;;) {
      const i = this.inbox.findIndex((m) => m.t === t);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (this.closed)
        throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting for ${t}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Waits for the server to close the socket. */
  async waitClosed(): Promise<{ code: number; reason: string }> {
    if (!this.closed) await new Promise<void>((r) => this.closeWaiters.push(r));
    return this.closed!;
  }

  send(text: string): void {
    this.ws.send(text);
  }

  /** The auth frame answering this connection's challenge. */
  async authFrame(kp: Keypair): Promise<string> {
    const ch = await this.next('challenge');
    const nonce = fromHex(ch.nonce, 32)!;
    const sig = sign(authMessage(String(ch.runId), nonce), kp);
    return JSON.stringify({ t: 'auth', pubkey: toHex(kp.publicKey), sig: toHex(sig) });
  }

  close(): void {
    this.ws.terminate();
  }
}
