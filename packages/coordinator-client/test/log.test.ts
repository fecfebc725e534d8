import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isCoordinatorClientError } from '../src/errors.js';
import { InputLog, readSnapshot, writeSnapshot } from '../src/log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cc-log-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const recs = [
  { seq: 1, ts: 1_700_000_000, seed: 2n ** 64n - 1n, kind: 'join', client: new Uint8Array([1, 2, 3]) },
  { seq: 2, ts: 1_700_000_001, seed: 0n, kind: 'tick' },
  { seq: 3, ts: 1_700_000_001, seed: 42n, kind: 'witness', body: { bloom: [1, 2] } },
];

describe('InputLog', () => {
  it('round-trips records exactly, across reopen and further appends', () => {
    const p = join(dir, 'a.log');
    const { log, records } = InputLog.open(p);
    expect(records).toEqual([]);
    log.append(recs.slice(0, 2));
    log.close();
    const r2 = InputLog.open(p);
    expect(r2.records).toEqual(recs.slice(0, 2));
    expect(r2.tornBytesDropped).toBe(0);
    r2.log.append([recs[2]]);
    r2.log.close();
    const r3 = InputLog.open(p);
    expect(r3.records).toEqual(recs);
    r3.log.close();
  });

  it('detects and drops a torn final record at every possible cut point', () => {
    const p = join(dir, 'b.log');
    const { log } = InputLog.open(p);
    log.append(recs.slice(0, 2));
    const goodSize = log.bytes;
    log.append([recs[2]]);
    const fullSize = log.bytes;
    log.close();
    const full = readFileSync(p);
    for (let cut = goodSize + 1; cut < fullSize; cut++) {
      writeFileSync(p, full.subarray(0, cut));
      const r = InputLog.open(p);
      expect(r.records).toEqual(recs.slice(0, 2));
      expect(r.tornBytesDropped).toBe(cut - goodSize);
      r.log.close();
      // The torn tail was truncated away durably, so the file is back to its last good size.
      expect(statSync(p).size).toBe(goodSize);
    }
  });

  it('drops a final record whose checksum fails (garbage written in place)', () => {
    const p = join(dir, 'c.log');
    const { log } = InputLog.open(p);
    log.append(recs);
    log.close();
    const buf = readFileSync(p);
    buf[buf.length - 2] = buf[buf.length - 2]! ^ 0xff;
    writeFileSync(p, buf);
    const r = InputLog.open(p);
    expect(r.records).toEqual(recs.slice(0, 2));
    expect(r.tornBytesDropped).toBeGreaterThan(0);
    r.log.close();
  });

  it('refuses to open when a record in the middle is corrupt', () => {
    const p = join(dir, 'd.log');
    const { log } = InputLog.open(p);
    log.append(recs);
    log.close();
    const buf = readFileSync(p);
    buf[8 + 8 + 2] = buf[8 + 8 + 2]! ^ 0xff; // inside the first record's payload
    writeFileSync(p, buf);
    expect.assertions(2);
    try {
      InputLog.open(p);
    } catch (e) {
      expect(isCoordinatorClientError(e, 'LOG_CORRUPT')).toBe(true);
      expect((e as Error).message).toMatch(/byte 8 fails its checksum/);
    }
  });

  it('rejects a file that is not a log', () => {
    const p = join(dir, 'e.log');
    writeFileSync(p, 'hello world, not a log');
    expect(() => InputLog.open(p)).toThrow(/bad magic/);
  });

  it('recovers a log whose header write was torn', () => {
    const p = join(dir, 'f.log');
    writeFileSync(p, 'PSY');
    const r = InputLog.open(p);
    expect(r.records).toEqual([]);
    expect(r.tornBytesDropped).toBe(3);
    r.log.append([recs[0]]);
    r.log.close();
    expect(InputLog.open(p).records).toEqual([recs[0]]);
  });

  it('a header with a partial length field is torn, not corrupt', () => {
    const p = join(dir, 'g.log');
    const { log } = InputLog.open(p);
    log.append([recs[0]]);
    log.close();
    appendFileSync(p, Buffer.from([0x10, 0x00]));
    const r = InputLog.open(p);
    expect(r.records).toEqual([recs[0]]);
    expect(r.tornBytesDropped).toBe(2);
    r.log.close();
  });
});

describe('snapshots', () => {
  it('round-trip and detect corruption', () => {
    const p = join(dir, 'snap.json');
    expect(readSnapshot(p)).toBeUndefined();
    const value = { seq: 7n, state: { bloom: new Uint8Array([255, 0]), step: 3 } };
    writeSnapshot(p, value);
    expect(readSnapshot(p)).toEqual(value);
    const size = statSync(p).size;
    truncateSync(p, size - 1);
    expect(() => readSnapshot(p)).toThrow(/checksum mismatch/);
  });
});
