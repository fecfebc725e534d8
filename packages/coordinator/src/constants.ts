/** Maximum witnesses per round (Psyche's `SOLANA_MAX_NUM_WITNESSES`). */
export const MAX_WITNESSES = 32;
/** Size of the round ring buffer (Psyche's `NUM_STORED_ROUNDS`). */
export const NUM_STORED_ROUNDS = 4;
/** Largest allowed `maxClients` (clients per epoch); Psyche's on-chain cap is 256. */
export const MAX_CLIENTS_LIMIT = 65_535;
/** Largest number of joiners waiting for the next epoch. */
export const MAX_PENDING = 65_535;
/** Largest duration (seconds) in a config field. */
export const MAX_DURATION = 2 ** 32;
/** Largest accepted Unix timestamp (seconds): timestamps are JS numbers, exact up to 2^53 − 1. */
export const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;
/** Rounds of the swap-or-not shuffle. */
export const SHUFFLE_ROUNDS = 90;
/** u64 words of bloom bit storage. */
export const BLOOM_WORDS = 16;
/** Maximum bits in a bloom filter. */
export const BLOOM_MAX_BITS = BLOOM_WORDS * 64;
/** Hash keys per bloom filter. */
export const BLOOM_KEYS = 8;
/** Target false-positive rate used to size witness blooms. */
export const BLOOM_FALSE_RATE = 0.01;
/** Largest `maxSeqLen`. */
export const MAX_SEQ_LEN_LIMIT = 1_048_576;
/** Largest `totalSteps` (so that `step <= totalSteps + 1` fits in a u32). */
export const MAX_TOTAL_STEPS = 2 ** 32 - 2;
/** Domain separator of the round-seed hash. */
export const ROUND_SEED_DOMAIN = 'psyche-ts/round-seed/v1';
/** 2^64 − 1. */
export const U64_MAX = (1n << 64n) - 1n;
