import type { Stream } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import { P2PTransportError } from '../errors.js';

/**
 * Reads exact-length frames, then the remaining payload, from a libp2p v3 stream. Errors thrown by the
 * stream (abort, reset, timeout) propagate to the caller.
 */
export class StreamReader {
  private readonly it: AsyncIterator<Uint8Array | Uint8ArrayList>;
  private readonly buf = new Uint8ArrayList();
  private ended = false;

  constructor(stream: Stream) {
    this.it = stream[Symbol.asyncIterator]();
  }

  /** Reads exactly `n` bytes; throws MALFORMED_FRAME naming `what` when the stream ends first. */
  async readExactly(n: number, what: string): Promise<Uint8Array> {
    while (this.buf.byteLength < n) {
      if (this.ended) {
        throw new P2PTransportError(
          'MALFORMED_FRAME',
          `${what}: stream ended after ${this.buf.byteLength} of ${n} bytes`,
          {
            field: what,
          },
        );
      }
      await this.pull();
    }
    const out = this.buf.subarray(0, n);
    this.buf.consume(n);
    return out;
  }

  /** Yields the remaining bytes as they arrive. */
  async *rest(): AsyncGenerator<Uint8Array> {
    while (true) {
      if (this.buf.byteLength > 0) {
        const chunk = this.buf.subarray();
        this.buf.consume(this.buf.byteLength);
        yield chunk;
      }
      if (this.ended) return;
      await this.pull();
    }
  }

  /** `true` when the remote closed its write side and nothing is buffered. */
  async atEnd(): Promise<boolean> {
    while (this.buf.byteLength === 0 && !this.ended) await this.pull();
    return this.buf.byteLength === 0;
  }

  private async pull(): Promise<void> {
    const r = await this.it.next();
    if (r.done === true) this.ended = true;
    else this.buf.append(r.value);
  }
}

/** Sends `data` respecting back-pressure. */
export async function sendAll(stream: Stream, data: Uint8Array, signal?: AbortSignal): Promise<void> {
  if (!stream.send(data)) await stream.onDrain(signal === undefined ? {} : { signal });
}
