import { z } from 'zod';
import { decodeTagged } from './codec.js';
import { CoordinatorClientError } from './errors.js';

/** Wire protocol version announced in the challenge. */
export const PROTOCOL_VERSION = 1;
/** Path of the WebSocket endpoint. */
export const WS_PATH = '/ws';

/** Admin operations: only keys in `server.admin_keys` may request them (others get `NOT_ADMIN`). */
export const ADMIN_OPS = ['pause', 'resume', 'updateConfig'] as const;
/** One of {@link ADMIN_OPS}. */
export type AdminOp = (typeof ADMIN_OPS)[number];
/** Operations a client may request (the admin ones included). */
export const OPS = [
  'join',
  'leave',
  'witness',
  'warmupWitness',
  'healthCheck',
  'checkpoint',
  ...ADMIN_OPS,
] as const;
/** One of {@link OPS}. */
export type Op = (typeof OPS)[number];

const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `expected ${bytes} bytes of lowercase hex`);

/** Client → server messages. */
export const clientMessageSchema = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('auth'), pubkey: hex(32), sig: hex(64) }),
  z.strictObject({
    t: z.literal('req'),
    id: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    op: z.enum(OPS),
    body: z.unknown().optional(),
    /** The client's wall clock (ms) when sent. Informational only: the server never uses it for timeouts. */
    sentAt: z.number().finite().optional(),
  }),
  z.strictObject({ t: z.literal('sub'), after: z.number().int().min(0).optional() }),
]);
/** A decoded client message. */
export type ClientMessage = z.output<typeof clientMessageSchema>;

/** Error payload sent to clients. */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Server → client messages. */
export type ServerMessage =
  | { t: 'challenge'; nonce: string; runId: string; serverTime: number; protocol: number }
  | { t: 'welcome'; clientId: string; serverTime: number; version: number }
  | { t: 'res'; id: number; ok: true; version: number }
  | { t: 'res'; id: number; ok: false; error: WireError }
  | { t: 'state'; version: number; serverTime: number; state: unknown }
  | { t: 'error'; error: WireError };

/**
 * Decodes and validates one client frame. Throws `MALFORMED_MESSAGE` naming the offending field. Also returns the
 * request id when the frame was a recognizable request, so the server can answer it even if its body is bad.
 */
export function decodeClientMessage(text: string): ClientMessage {
  let raw: unknown;
  try {
    raw = decodeTagged(text);
  } catch (cause) {
    throw new CoordinatorClientError(
      'MALFORMED_MESSAGE',
      `message: not valid JSON (${(cause as Error).message})`,
      {},
      { cause },
    );
  }
  const r = clientMessageSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field =
      i.path.length > 0
        ? i.path.map(String).join('.')
        : i.code === 'unrecognized_keys'
          ? i.keys.join(',')
          : 't';
    throw new CoordinatorClientError('MALFORMED_MESSAGE', `message.${field}: ${i.message}`, {
      field,
      id: typeof (raw as { id?: unknown })?.id === 'number' ? (raw as { id: number }).id : undefined,
    });
  }
  return r.data;
}
