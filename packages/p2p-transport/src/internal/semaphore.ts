import { P2PTransportError } from '../errors.js';

/** FIFO counting semaphore whose waits honour an AbortSignal. */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  /** Number of holders right now. */
  get inUse(): number {
    return this.active;
  }

  /** Takes a slot (waiting in FIFO order); returns the release function. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.active < this.limit) {
      this.active++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(
          new P2PTransportError(
            'ABORTED',
            'aborted while waiting for a download slot',
            {},
            { cause: signal?.reason },
          ),
        );
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    // The releasing holder handed its slot over without decrementing `active`.
    return this.releaser();
  }

  /** Takes a slot only if one is free right now. */
  tryAcquire(): (() => void) | null {
    if (this.active >= this.limit) return null;
    this.active++;
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next === undefined) this.active--;
      else next();
    };
  }
}
