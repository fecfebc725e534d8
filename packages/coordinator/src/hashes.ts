import { ascii, concatBytes, fromHex, readU64le, sha256, u32be, u32le, u64be, u64le } from './bytes.js';
import { ROUND_SEED_DOMAIN } from './constants.js';
import { CoordinatorError } from './errors.js';

/** A witness's contribution to the next round seed. */
export interface SeedWitness {
  /** Client index of the witness. */
  index: number;
  /** Its broadcast Merkle root, 64 lowercase hex chars. */
  broadcastMerkle: string;
}

/**
 * The seed of a new round (docs/coordinator.md §8): the first 8 bytes (LE u64) of
 * `sha256("psyche-ts/round-seed/v1" || u64_le(tickSeed) || u64_le(prevSeed) || u32_le(epoch) || u32_le(step) ||
 * u32_le(n) || for each witness sorted by index: u32_le(index) || merkle)`.
 */
export function roundSeed(
  tickSeed: bigint,
  prevSeed: bigint,
  epoch: number,
  step: number,
  witnesses: readonly SeedWitness[],
): bigint {
  const sorted = witnesses.slice().sort((a, b) => a.index - b.index);
  const parts: Uint8Array[] = [
    ascii(ROUND_SEED_DOMAIN),
    u64le(tickSeed),
    u64le(prevSeed),
    u32le(epoch),
    u32le(step),
    u32le(sorted.length),
  ];
  for (const w of sorted) {
    parts.push(u32le(w.index));
    parts.push(fromHex(w.broadcastMerkle, 'broadcastMerkle'));
  }
  return readU64le(sha256(concatBytes(...parts)));
}

/**
 * The commitment hash a trainer signs for one batch result (docs/coordinator.md §9.8):
 * `sha256(u32_be(step) || u64_be(start) || u64_be(end) || payload)`.
 *
 * @throws {CoordinatorError} `InvalidArgument` on a non-integer or negative step/start/end, or `end < start`.
 */
export function commitmentHash(
  step: number,
  batch: { start: number; end: number },
  payload: Uint8Array,
): Uint8Array {
  const ok = (x: number) => Number.isSafeInteger(x) && x >= 0;
  if (!ok(step) || step > 0xffff_ffff) {
    throw new CoordinatorError('InvalidArgument', `step must be a u32, got ${step}`, { field: 'step' });
  }
  if (!ok(batch.start) || !ok(batch.end) || batch.end < batch.start) {
    throw new CoordinatorError(
      'InvalidArgument',
      `batch must satisfy 0 <= start <= end, got [${batch.start}, ${batch.end}]`,
      {
        field: 'batch',
      },
    );
  }
  return sha256(concatBytes(u32be(step), u64be(batch.start), u64be(batch.end), payload));
}
