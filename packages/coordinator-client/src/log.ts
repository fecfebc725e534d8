import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeTagged, encodeTagged } from './codec.js';
import { CoordinatorClientError } from './errors.js';

const MAGIC = Buffer.from('PSYLOG1\n', 'latin1');
const HEADER = 8; // u32 length + u32 crc32
/** Records larger than this are treated as corruption (the server never writes one). */
export const MAX_LOG_RECORD_BYTES = 64 * 1024 * 1024;

/** What {@link InputLog.open} found on disk. */
export interface LogOpenResult<T> {
  readonly log: InputLog;
  /** Every intact record, in append order. */
  readonly records: T[];
  /** Bytes of a torn (incomplete or checksum-failing) final record that were truncated away; 0 if none. */
  readonly tornBytesDropped: number;
}

/**
 * An append-only, checksummed, fsync'd record log.
 *
 * File layout: the 8-byte magic `PSYLOG1\n`, then records `[u32 LE length][u32 LE crc32(payload)][payload]`, the
 * payload being tagged JSON (see `codec.ts`). A final record that is incomplete or fails its checksum is a torn
 * write (the process died mid-append): it is detected on open, truncated away and reported. A bad record followed
 * by more data is corruption and refuses to open (`LOG_CORRUPT`).
 */
export class InputLog {
  private fd: number;
  private size: number;
  readonly path: string;

  private constructor(path: string, fd: number, size: number) {
    this.path = path;
    this.fd = fd;
    this.size = size;
  }

  /**
   * Opens (creating if needed) the log at `path` and reads back all intact records. With `readOnly`, nothing is
   * created or truncated (a torn tail is only reported) and {@link InputLog.append} must not be called.
   */
  static open<T = unknown>(
    path: string,
    { readOnly = false }: { readOnly?: boolean } = {},
  ): LogOpenResult<T> {
    const created = !existsSync(path);
    if (created && readOnly) {
      throw new CoordinatorClientError('LOG_CORRUPT', `${path}: no input log here`, { path });
    }
    const fd = openSync(path, created ? 'w+' : readOnly ? 'r' : 'r+');
    try {
      if (created) {
        writeSync(fd, MAGIC, 0, MAGIC.length, 0);
        fsyncSync(fd);
        fsyncDir(dirname(path));
        return { log: new InputLog(path, fd, MAGIC.length), records: [], tornBytesDropped: 0 };
      }
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(size);
      let read = 0;
      while (read < size) {
        const n = readSync(fd, buf, read, size - read, read);
        if (n === 0) break;
        read += n;
      }
      if (size < MAGIC.length) {
        if (readOnly) return { log: new InputLog(path, fd, size), records: [], tornBytesDropped: size };
        // A crash while writing the header of a brand-new log: nothing was ever committed.
        ftruncateSync(fd, 0);
        writeSync(fd, MAGIC, 0, MAGIC.length, 0);
        fsyncSync(fd);
        return { log: new InputLog(path, fd, MAGIC.length), records: [], tornBytesDropped: size };
      }
      if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) {
        throw new CoordinatorClientError('LOG_CORRUPT', `${path}: not a psyche input log (bad magic)`, {
          path,
        });
      }
      const records: T[] = [];
      let off = MAGIC.length;
      let torn = 0;
      while (off < size) {
        const remaining = size - off;
        if (remaining < HEADER) {
          torn = remaining;
          break;
        }
        const len = buf.readUInt32LE(off);
        const crc = buf.readUInt32LE(off + 4);
        const end = off + HEADER + len;
        if (len > MAX_LOG_RECORD_BYTES || end > size) {
          // Incomplete final record. A huge length field with data following it would also land here; since
          // nothing after a bad length can be framed, everything from `off` is the torn tail.
          torn = remaining;
          break;
        }
        const payload = buf.subarray(off + HEADER, end);
        if (crc32(payload) !== crc) {
          if (end === size) {
            torn = remaining;
            break;
          }
          throw new CoordinatorClientError(
            'LOG_CORRUPT',
            `${path}: record at byte ${off} fails its checksum and is followed by ${size - end} more bytes`,
            { path, offset: off },
          );
        }
        try {
          records.push(decodeTagged(payload.toString('utf8')) as T);
        } catch (cause) {
          throw new CoordinatorClientError(
            'LOG_CORRUPT',
            `${path}: record at byte ${off} has a valid checksum but is not tagged JSON`,
            { path, offset: off },
            { cause },
          );
        }
        off = end;
      }
      if (torn > 0 && !readOnly) {
        ftruncateSync(fd, off);
        fsyncSync(fd);
      }
      return { log: new InputLog(path, fd, off), records, tornBytesDropped: torn };
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Current size of the log in bytes. */
  get bytes(): number {
    return this.size;
  }

  /**
   * Appends records and fsyncs once (group commit). When this returns, every record is durable.
   */
  append(records: readonly unknown[]): void {
    if (records.length === 0) return;
    const parts: Buffer[] = [];
    for (const r of records) {
      const payload = Buffer.from(encodeTagged(r), 'utf8');
      const head = Buffer.alloc(HEADER);
      head.writeUInt32LE(payload.length, 0);
      head.writeUInt32LE(crc32(payload), 4);
      parts.push(head, payload);
    }
    const all = Buffer.concat(parts);
    let written = 0;
    while (written < all.length) {
      written += writeSync(this.fd, all, written, all.length - written, this.size + written);
    }
    fsyncSync(this.fd);
    this.size += all.length;
  }

  /** Closes the file. Further appends throw. */
  close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/** fsyncs a directory so that a create/rename inside it is durable. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms do not allow fsync on directories; the data files themselves are fsync'd.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `value` (tagged JSON) to `path` atomically and durably: temp file, fsync, rename, fsync directory. The
 * file carries a crc32 so a damaged snapshot is detected on read.
 */
export function writeSnapshot(path: string, value: unknown): void {
  const body = encodeTagged(value);
  const text = `${crc32(Buffer.from(body, 'utf8')).toString(16).padStart(8, '0')}\n${body}`;
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/**
 * Reads a snapshot written by {@link writeSnapshot}. Returns undefined when the file does not exist; throws
 * `SNAPSHOT_CORRUPT` when it exists but fails its checksum.
 */
export function readSnapshot<T = unknown>(path: string): T | undefined {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  const nl = text.indexOf('\n');
  const body = nl >= 0 ? text.slice(nl + 1) : '';
  const crc = nl >= 0 ? Number.parseInt(text.slice(0, nl), 16) : Number.NaN;
  if (nl !== 8 || crc !== crc32(Buffer.from(body, 'utf8'))) {
    throw new CoordinatorClientError('SNAPSHOT_CORRUPT', `${path}: snapshot checksum mismatch`, { path });
  }
  try {
    return decodeTagged(body) as T;
  } catch (cause) {
    throw new CoordinatorClientError(
      'SNAPSHOT_CORRUPT',
      `${path}: snapshot is not tagged JSON`,
      { path },
      { cause },
    );
  }
}

/** Paths of the durable files inside a server's data directory. */
export function dataPaths(dir: string): { log: string; snapshot: string } {
  return { log: join(dir, 'inputs.log'), snapshot: join(dir, 'snapshot.json') };
}
