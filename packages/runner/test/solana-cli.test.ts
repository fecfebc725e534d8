/**
 * `psyche run --backend solana` and `psyche solana create-run/update-config/set-paused`:
 * - bad flags and config fields are named (exit 2);
 * - `--dry-run` prints the signed transaction: it is deserialized, its signatures verified and every program
 *   instruction decoded with Anchor's coder over the checked-in IDL (name, args, accounts' signer/writable flags);
 * - against an unreachable RPC (127.0.0.1:1) every command fails with a typed error after the retry policy.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCoordinatorClientError, keypairFromSeed, writeKeypairFile } from '@psyche/coordinator-client';
import {
  COORDINATOR_ACCOUNT_SPACE,
  CoordinatorInstructions,
  coordinatorInstanceAddress,
  IDL,
  PROGRAM_ID,
  PublicKey,
  Transaction,
} from '@psyche/coordinator-client/solana';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, runSolanaCli } from '../src/index.js';
import { toSolanaKeypair } from '../src/solana.js';

const dir = mkdtempSync(join(tmpdir(), 'runner-solana-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const operator = keypairFromSeed(new Uint8Array(32).fill(7));
const operatorPub = toSolanaKeypair(operator).publicKey;
const keyPath = join(dir, 'operator.json');
writeKeypairFile(keyPath, operator);
const accountKeyPath = join(dir, 'account.json');
writeKeypairFile(accountKeyPath, keypairFromSeed(new Uint8Array(32).fill(9)));
const accountPub = toSolanaKeypair(keypairFromSeed(new Uint8Array(32).fill(9))).publicKey;

const runToml = `run_id = "sol-run"
[coordinator]
warmup_time = 2
cooldown_time = 1
max_round_train_time = 2
round_witness_time = 1
epoch_time = 10
total_steps = 5
init_min_clients = 1
min_clients = 1
global_batch_size_start = 4
global_batch_size_end = 4
[model]
max_seq_len = 64
`;
const runPath = join(dir, 'run.toml');
writeFileSync(runPath, runToml);

const UNREACHABLE = 'http://127.0.0.1:1';
const FAST = ['--retries', '2', '--retry-ms', '5'];

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

async function cli(argv: string[]) {
  const c = capture();
  const code = await runCli(argv, c.io);
  return { code, out: c.out, err: c.err.join('\n') };
}

const coder = new CoordinatorInstructions().program.coder.instruction as unknown as {
  decode(d: Buffer): { name: string; data: Record<string, unknown> } | null;
  encode(name: string, data: object): Buffer;
};

interface IdlIx {
  name: string;
  discriminator: number[];
  accounts: { name: string; signer?: boolean; writable?: boolean; address?: string }[];
}

/** Decodes the dry-run transaction; checks its signatures and each program instruction against the IDL. */
function checkDryRun(line: string | undefined, programIx: string) {
  const j = JSON.parse(line ?? '{}') as {
    transaction: string;
    instructions: { name: string; accounts: { pubkey: string; isSigner: boolean; isWritable: boolean }[] }[];
  };
  const tx = Transaction.from(Buffer.from(j.transaction, 'base64'));
  expect(tx.verifySignatures()).toBe(true);
  expect(tx.feePayer?.equals(operatorPub)).toBe(true);
  expect(j.instructions.map((i) => i.name).at(-1)).toBe(programIx);
  const ix = tx.instructions.at(-1)!;
  expect(ix.programId.equals(PROGRAM_ID)).toBe(true);
  const spec = (IDL.instructions as unknown as IdlIx[]).find((i) => i.name === programIx)!;
  expect([...ix.data.subarray(0, 8)]).toEqual(spec.discriminator);
  // The coder of Anchor's Program camel-cases the IDL's names.
  const camel = programIx.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
  const decoded = coder.decode(Buffer.from(ix.data));
  expect(decoded?.name).toBe(camel);
  expect(Buffer.from(coder.encode(camel, decoded!.data)).equals(Buffer.from(ix.data))).toBe(true);
  // The instruction's own account metas (in the compiled transaction the fee payer is also writable).
  const metas = j.instructions.at(-1)!.accounts;
  expect(ix.keys.map((k) => k.pubkey.toBase58())).toEqual(metas.map((m) => m.pubkey));
  expect(metas.length).toBe(spec.accounts.length);
  spec.accounts.forEach((a, i) => {
    expect(metas[i]?.isSigner, `${programIx}.${a.name}.signer`).toBe(a.signer === true);
    expect(metas[i]?.isWritable, `${programIx}.${a.name}.writable`).toBe(a.writable === true);
    if (a.address) expect(metas[i]?.pubkey).toBe(a.address);
  });
  return { tx, ix, args: decoded!.data, json: j as Record<string, unknown> };
}

describe('psyche solana: flag and config validation (exit 2, field named)', () => {
  const cases: [string, string[], string][] = [
    [
      'missing --keypair',
      ['solana', 'set-paused', '--paused', 'true', '--run-id', 'r', '--rpc', UNREACHABLE],
      '--keypair',
    ],
    [
      'missing --rpc',
      ['solana', 'set-paused', '--paused', 'true', '--run-id', 'r', '--keypair', keyPath],
      '--rpc',
    ],
    [
      'non-http --rpc',
      [
        'solana',
        'set-paused',
        '--paused',
        'true',
        '--run-id',
        'r',
        '--keypair',
        keyPath,
        '--rpc',
        'ws://127.0.0.1:1',
      ],
      '--rpc',
    ],
    [
      'bad --paused',
      [
        'solana',
        'set-paused',
        '--paused',
        'maybe',
        '--run-id',
        'r',
        '--keypair',
        keyPath,
        '--rpc',
        UNREACHABLE,
      ],
      '--paused',
    ],
    [
      'long --run-id',
      [
        'solana',
        'set-paused',
        '--paused',
        'true',
        '--run-id',
        'x'.repeat(33),
        '--keypair',
        keyPath,
        '--rpc',
        UNREACHABLE,
      ],
      '--run-id',
    ],
    [
      'bad --retries',
      [
        'solana',
        'set-paused',
        '--paused',
        'true',
        '--run-id',
        'r',
        '--keypair',
        keyPath,
        '--rpc',
        UNREACHABLE,
        '--retries',
        '0',
      ],
      '--retries',
    ],
    [
      'bad --program-id',
      [
        'solana',
        'set-paused',
        '--paused',
        'true',
        '--run-id',
        'r',
        '--keypair',
        keyPath,
        '--rpc',
        UNREACHABLE,
        '--program-id',
        'nope',
      ],
      '--program-id',
    ],
    [
      'unreadable --keypair',
      [
        'solana',
        'set-paused',
        '--paused',
        'true',
        '--run-id',
        'r',
        '--keypair',
        join(dir, 'none.json'),
        '--rpc',
        UNREACHABLE,
      ],
      '--keypair',
    ],
    ['missing --config', ['solana', 'create-run', '--keypair', keyPath, '--rpc', UNREACHABLE], '--config'],
    [
      'dry-run without --coordinator-account',
      ['solana', 'set-paused', '--paused', 'true', '--run-id', 'r', '--keypair', keyPath, '--dry-run'],
      '--coordinator-account',
    ],
    ['run: bad --backend', ['run', '--config', runPath, '--backend', 'eth'], '--backend'],
    ['run: missing --rpc', ['run', '--config', runPath, '--backend', 'solana', '--run-id', 'r'], '--rpc'],
    [
      'run: missing --run-id',
      ['run', '--config', runPath, '--backend', 'solana', '--rpc', UNREACHABLE],
      '--run-id',
    ],
  ];
  for (const [what, argv, field] of cases) {
    it(what, async () => {
      const r = await cli(argv);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`error: ${field}`);
    });
  }

  it('a bad run.toml field is named', async () => {
    const bad = join(dir, 'bad-run.toml');
    writeFileSync(
      bad,
      runToml.replace('min_clients = 1\nglobal', 'min_clients = -1\nglobal').concat('bogus = 1\n'),
    );
    const r = await cli(['solana', 'create-run', '--config', bad, '--keypair', keyPath, '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('coordinator.min_clients');
    expect(r.err).toContain('model.bogus');
  });

  it('a bad node.toml field is named for run --backend solana (coordinator_url not required)', async () => {
    const node = join(dir, 'bad-node.toml');
    writeFileSync(node, `key_file = "${keyPath}"\nbackend = "gpu"\n`);
    const r = await cli([
      'run',
      '--config',
      node,
      '--backend',
      'solana',
      '--rpc',
      UNREACHABLE,
      '--run-id',
      'r',
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('backend');
    expect(r.err).not.toContain('coordinator_url');
  });
});

describe('psyche solana --dry-run: the transactions, decoded against the IDL', () => {
  it('create-run = compute budget + createAccount + init_coordinator, signed by operator and account', async () => {
    const r = await cli([
      'solana',
      'create-run',
      '--config',
      runPath,
      '--keypair',
      keyPath,
      '--account-keypair',
      accountKeyPath,
      '--dry-run',
    ]);
    expect(r.code).toBe(0);
    const { tx, ix, args, json } = checkDryRun(r.out[0], 'init_coordinator');
    expect(json.coordinatorAccount).toBe(accountPub.toBase58());
    expect(tx.signatures.map((s) => s.publicKey.toBase58())).toEqual([
      operatorPub.toBase58(),
      accountPub.toBase58(),
    ]);
    expect(tx.instructions.length).toBe(4);
    // createAccount: u32 index 0, u64 lamports, u64 space, owner = program.
    const create = tx.instructions[2]!;
    const dv = new DataView(create.data.buffer, create.data.byteOffset);
    expect(dv.getUint32(0, true)).toBe(0);
    // rent exemption with the default rent: (space + 128) × 3 480 × 2 lamports.
    expect(dv.getBigUint64(4, true)).toBe(BigInt((COORDINATOR_ACCOUNT_SPACE + 128) * 6960));
    expect(dv.getBigUint64(12, true)).toBe(BigInt(COORDINATOR_ACCOUNT_SPACE));
    expect(new PublicKey(create.data.subarray(20, 52)).equals(PROGRAM_ID)).toBe(true);
    const p = (args as { params: Record<string, unknown> }).params;
    expect(p.runId).toBe('sol-run');
    expect((p.mainAuthority as PublicKey).equals(operatorPub)).toBe(true);
    expect((p.joinAuthority as PublicKey).equals(PublicKey.default)).toBe(true);
    expect(ix.keys[1]?.pubkey.equals(coordinatorInstanceAddress('sol-run'))).toBe(true);
    expect(ix.keys[2]?.pubkey.equals(accountPub)).toBe(true);
    const model = p.model as { maxSeqLen: { toNumber(): number } };
    expect(model.maxSeqLen.toNumber()).toBe(64);
  });

  it('update-config = update(config, model) by the main authority', async () => {
    const r = await cli([
      'solana',
      'update-config',
      '--config',
      runPath,
      '--keypair',
      keyPath,
      '--coordinator-account',
      accountPub.toBase58(),
      '--dry-run',
    ]);
    expect(r.code).toBe(0);
    const { ix, args } = checkDryRun(r.out[0], 'update');
    expect(ix.keys[0]?.pubkey.equals(operatorPub)).toBe(true);
    expect(ix.keys[1]?.pubkey.equals(coordinatorInstanceAddress('sol-run'))).toBe(true);
    expect(ix.keys[2]?.pubkey.equals(accountPub)).toBe(true);
    const p = (args as { params: Record<string, unknown> }).params;
    // 15 config fields in CONFIG_FIELDS order; total_steps = 5 is among them.
    expect((p.config as { toNumber(): number }[]).length).toBe(15);
    expect((p.config as { toNumber(): number }[]).map((x) => x.toNumber())).toContain(5);
    expect(p.model).not.toBeNull();
    expect(p.progress).toBeNull();
  });

  it('set-paused true/false = set_paused(paused)', async () => {
    for (const paused of [true, false]) {
      const r = await cli([
        'solana',
        'set-paused',
        '--paused',
        String(paused),
        '--run-id',
        'sol-run',
        '--keypair',
        keyPath,
        '--coordinator-account',
        accountPub.toBase58(),
        '--dry-run',
      ]);
      expect(r.code).toBe(0);
      const { ix, args } = checkDryRun(r.out[0], 'set_paused');
      expect(args.paused).toBe(paused);
      expect(ix.keys[2]?.pubkey.equals(accountPub)).toBe(true);
    }
  });
});

describe('unreachable RPC (127.0.0.1:1): typed errors after the retry policy, never a crash', () => {
  it('set-paused throws SERVER_ERROR naming every RPC after retries and fallback', async () => {
    const c = capture();
    const e = await runSolanaCli(
      [
        'set-paused',
        '--paused',
        'true',
        '--run-id',
        'sol-run',
        '--keypair',
        keyPath,
        '--coordinator-account',
        accountPub.toBase58(),
        '--rpc',
        UNREACHABLE,
        '--rpc',
        `${UNREACHABLE}/`,
        ...FAST,
      ],
      c.io,
    ).catch((x: unknown) => x);
    expect(isCoordinatorClientError(e, 'SERVER_ERROR')).toBe(true);
    expect((e as Error).message).toContain('set-paused failed on every RPC');
    expect((e as Error).message).toContain(UNREACHABLE);
  });

  for (const [what, argv] of [
    ['create-run', ['solana', 'create-run', '--config', runPath, '--keypair', keyPath]],
    [
      'update-config (resolving the coordinator account)',
      ['solana', 'update-config', '--config', runPath, '--keypair', keyPath],
    ],
    [
      'set-paused',
      ['solana', 'set-paused', '--paused', 'false', '--run-id', 'sol-run', '--keypair', keyPath],
    ],
  ] as const) {
    it(`${what} exits 1 with a clear message`, async () => {
      const r = await cli([...argv, '--rpc', UNREACHABLE, ...FAST]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^error: .* failed on every RPC \(http:\/\/127\.0\.0\.1:1\)/);
    });
  }

  it('run --backend solana exits non-zero: the coordinator stage cannot reach any RPC', async () => {
    const node = join(dir, 'node.toml');
    writeFileSync(node, `key_file = "${keyPath}"\nbackend = "cpu"\n`);
    const r = await cli([
      'run',
      '--config',
      node,
      '--backend',
      'solana',
      '--rpc',
      UNREACHABLE,
      '--run-id',
      'sol-run',
      ...FAST,
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('error: coordinator: getAccountInfo(coordinator instance) failed on every RPC');
  });
});
