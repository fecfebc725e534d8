/**
 * The checked-in IDL of the `psyche_coordinator` Anchor program (Anchor 0.30+ spec), as a module. It must equal
 * `psyche_coordinator.json` next to it (checked by `test/solana-idl.test.ts`); `anchor build` on a machine with
 * the Solana toolchain must produce the same IDL (see programs/psyche-coordinator/README.md).
 */
export const PSYCHE_COORDINATOR_IDL = {
  address: 'HJ2hrAukNjGR2qRnNXxUCNGYD8qHS5uQFuNoDzY1E7UR',
  metadata: {
    name: 'psyche_coordinator',
    version: '0.1.0',
    spec: '0.1.0',
    description: 'Psyche-TS on-chain coordinator (Anchor program around psyche-coordinator-core)',
  },
  instructions: [
    {
      name: 'init_coordinator',
      docs: ['Creates the instance PDA and writes a fresh coordinator into the pre-allocated account.'],
      discriminator: [20, 57, 148, 73, 232, 133, 122, 25],
      accounts: [
        {
          name: 'payer',
          writable: true,
          signer: true,
        },
        {
          name: 'coordinator_instance',
          writable: true,
          pda: {
            seeds: [
              {
                kind: 'const',
                value: [99, 111, 111, 114, 100, 105, 110, 97, 116, 111, 114],
              },
              {
                kind: 'arg',
                path: 'params.run_id',
              },
            ],
          },
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
        {
          name: 'system_program',
          address: '11111111111111111111111111111111',
        },
      ],
      args: [
        {
          name: 'params',
          type: {
            defined: {
              name: 'InitCoordinatorParams',
            },
          },
        },
      ],
    },
    {
      name: 'update',
      docs: ['Config/model/progress; only while halted.'],
      discriminator: [219, 200, 88, 176, 158, 63, 253, 127],
      accounts: [
        {
          name: 'authority',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [
        {
          name: 'params',
          type: {
            defined: {
              name: 'UpdateParams',
            },
          },
        },
      ],
    },
    {
      name: 'set_paused',
      docs: ['Pause or resume.'],
      discriminator: [91, 60, 125, 192, 176, 225, 166, 218],
      accounts: [
        {
          name: 'authority',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [
        {
          name: 'paused',
          type: 'bool',
        },
      ],
    },
    {
      name: 'grant_join',
      docs: ['Allowlists grantee.'],
      discriminator: [217, 251, 44, 90, 113, 28, 38, 14],
      accounts: [
        {
          name: 'payer',
          writable: true,
          signer: true,
        },
        {
          name: 'join_authority',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'authorization',
          writable: true,
          pda: {
            seeds: [
              {
                kind: 'const',
                value: [106, 111, 105, 110],
              },
              {
                kind: 'account',
                path: 'coordinator_instance',
              },
              {
                kind: 'arg',
                path: 'grantee',
              },
            ],
          },
        },
        {
          name: 'system_program',
          address: '11111111111111111111111111111111',
        },
      ],
      args: [
        {
          name: 'grantee',
          type: 'pubkey',
        },
      ],
    },
    {
      name: 'join_run',
      docs: ['Joins the next epoch.'],
      discriminator: [72, 160, 125, 102, 106, 134, 246, 75],
      accounts: [
        {
          name: 'user',
          signer: true,
        },
        {
          name: 'authorization',
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [],
    },
    {
      name: 'leave_run',
      docs: ['Withdraws the signer (core withdraw).'],
      discriminator: [237, 240, 23, 171, 72, 58, 82, 243],
      accounts: [
        {
          name: 'user',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [],
    },
    {
      name: 'tick',
      docs: ['Advances time-driven transitions (permissionless).'],
      discriminator: [92, 79, 44, 8, 101, 80, 63, 15],
      accounts: [
        {
          name: 'user',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [],
    },
    {
      name: 'witness',
      docs: ['Round witness.'],
      discriminator: [213, 244, 149, 25, 142, 223, 21, 39],
      accounts: [
        {
          name: 'user',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [
        {
          name: 'index',
          type: 'u64',
        },
        {
          name: 'participant_bloom',
          type: {
            defined: {
              name: 'BloomArg',
            },
          },
        },
        {
          name: 'broadcast_bloom',
          type: {
            defined: {
              name: 'BloomArg',
            },
          },
        },
        {
          name: 'broadcast_merkle',
          type: {
            array: ['u8', 32],
          },
        },
      ],
    },
    {
      name: 'warmup_witness',
      docs: ['Warmup witness.'],
      discriminator: [211, 232, 122, 232, 63, 22, 55, 94],
      accounts: [
        {
          name: 'user',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [
        {
          name: 'index',
          type: 'u64',
        },
      ],
    },
    {
      name: 'health_check',
      docs: ['Reports unhealthy clients.'],
      discriminator: [115, 90, 99, 168, 138, 18, 157, 131],
      accounts: [
        {
          name: 'user',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [
        {
          name: 'checks',
          type: {
            vec: {
              defined: {
                name: 'HealthCheckArg',
              },
            },
          },
        },
      ],
    },
    {
      name: 'checkpoint',
      docs: ['Reports a checkpoint.'],
      discriminator: [213, 200, 19, 204, 240, 143, 184, 252],
      accounts: [
        {
          name: 'user',
          signer: true,
        },
        {
          name: 'coordinator_instance',
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [
        {
          name: 'index',
          type: 'u64',
        },
        {
          name: 'checkpoint',
          type: {
            defined: {
              name: 'CheckpointArg',
            },
          },
        },
      ],
    },
    {
      name: 'free_coordinator',
      docs: ['Closes both accounts; only while halted.'],
      discriminator: [89, 216, 215, 229, 223, 242, 74, 32],
      accounts: [
        {
          name: 'authority',
          signer: true,
        },
        {
          name: 'spill',
          writable: true,
        },
        {
          name: 'coordinator_instance',
          writable: true,
        },
        {
          name: 'coordinator_account',
          writable: true,
        },
      ],
      args: [],
    },
  ],
  accounts: [
    {
      name: 'CoordinatorAccount',
      discriminator: [239, 33, 177, 55, 44, 155, 86, 43],
    },
    {
      name: 'CoordinatorInstance',
      discriminator: [156, 9, 153, 16, 175, 24, 31, 252],
    },
    {
      name: 'JoinAuthorization',
      discriminator: [166, 230, 239, 78, 145, 180, 101, 144],
    },
  ],
  errors: [
    {
      code: 6001,
      name: 'Halted',
      msg: 'Halted (1)',
    },
    {
      code: 6002,
      name: 'InvalidConfig',
      msg: 'InvalidConfig (2)',
    },
    {
      code: 6003,
      name: 'InvalidTimestamp',
      msg: 'InvalidTimestamp (3)',
    },
    {
      code: 6004,
      name: 'InvalidSeed',
      msg: 'InvalidSeed (4)',
    },
    {
      code: 6005,
      name: 'InvalidClientId',
      msg: 'InvalidClientId (5)',
    },
    {
      code: 6006,
      name: 'PendingFull',
      msg: 'PendingFull (6)',
    },
    {
      code: 6007,
      name: 'WrongRunState',
      msg: 'WrongRunState (7)',
    },
    {
      code: 6008,
      name: 'InvalidClientIndex',
      msg: 'InvalidClientIndex (8)',
    },
    {
      code: 6009,
      name: 'ClientIdMismatch',
      msg: 'ClientIdMismatch (9)',
    },
    {
      code: 6010,
      name: 'ClientNotHealthy',
      msg: 'ClientNotHealthy (10)',
    },
    {
      code: 6011,
      name: 'NotAWitness',
      msg: 'NotAWitness (11)',
    },
    {
      code: 6012,
      name: 'DuplicateWitness',
      msg: 'DuplicateWitness (12)',
    },
    {
      code: 6013,
      name: 'InvalidBloom',
      msg: 'InvalidBloom (13)',
    },
    {
      code: 6014,
      name: 'InvalidMerkleRoot',
      msg: 'InvalidMerkleRoot (14)',
    },
    {
      code: 6015,
      name: 'HealthCheckTooEarly',
      msg: 'HealthCheckTooEarly (15)',
    },
    {
      code: 6016,
      name: 'InvalidHealthCheck',
      msg: 'InvalidHealthCheck (16)',
    },
    {
      code: 6017,
      name: 'InvalidCheckpoint',
      msg: 'InvalidCheckpoint (17)',
    },
    {
      code: 6018,
      name: 'ClientNotFound',
      msg: 'ClientNotFound (18)',
    },
    {
      code: 6019,
      name: 'InvalidRunId',
      msg: 'InvalidRunId (19)',
    },
    {
      code: 6020,
      name: 'InvalidModel',
      msg: 'InvalidModel (20)',
    },
    {
      code: 6021,
      name: 'InvalidArgument',
      msg: 'InvalidArgument (21)',
    },
    {
      code: 6100,
      name: 'CoordinatorAccountIncorrectSize',
      msg: 'coordinator_account has the wrong size (expected 8 + 85 752)',
    },
    {
      code: 6101,
      name: 'CoordinatorAccountMismatch',
      msg: 'coordinator_account is not the one recorded in coordinator_instance',
    },
    {
      code: 6102,
      name: 'CoordinatorAccountVersion',
      msg: 'coordinator_account has a layout version other than 1',
    },
    {
      code: 6103,
      name: 'NotMainAuthority',
      msg: "the signer is not the run's main_authority",
    },
    {
      code: 6104,
      name: 'JoinNotAuthorized',
      msg: 'the signer is not authorized to join (no valid JoinAuthorization for it)',
    },
    {
      code: 6105,
      name: 'NotHalted',
      msg: 'update and free_coordinator need a halted run (Uninitialized, Paused or Finished)',
    },
    {
      code: 6106,
      name: 'UpdateFinished',
      msg: 'update cannot change a Finished run',
    },
    {
      code: 6107,
      name: 'ProgressSanityCheckFailed',
      msg: 'progress.step must be > 0',
    },
    {
      code: 6108,
      name: 'RunIdInvalidLength',
      msg: 'run_id must be 1..=32 bytes',
    },
    {
      code: 6109,
      name: 'SignerNotAClient',
      msg: 'the signer is not a client of the current epoch',
    },
  ],
  types: [
    {
      name: 'BloomArg',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'bits',
            type: {
              array: ['u64', 16],
            },
          },
          {
            name: 'keys',
            type: {
              array: ['u64', 8],
            },
          },
          {
            name: 'num_bits',
            type: 'u32',
          },
        ],
      },
    },
    {
      name: 'CheckpointArg',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'kind',
            type: 'u8',
          },
          {
            name: 'name',
            type: 'string',
          },
          {
            name: 'detail',
            type: {
              option: 'string',
            },
          },
        ],
      },
    },
    {
      name: 'CoordinatorAccount',
      serialization: 'bytemuckunsafe',
      repr: {
        kind: 'c',
      },
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'nonce',
            type: 'u64',
          },
          {
            name: 'state',
            type: {
              array: ['u8', 85736],
            },
          },
        ],
      },
    },
    {
      name: 'CoordinatorInstance',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'bump',
            type: 'u8',
          },
          {
            name: 'main_authority',
            type: 'pubkey',
          },
          {
            name: 'join_authority',
            type: 'pubkey',
          },
          {
            name: 'coordinator_account',
            type: 'pubkey',
          },
          {
            name: 'run_id',
            type: 'string',
          },
        ],
      },
    },
    {
      name: 'HealthCheckArg',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'index',
            type: 'u64',
          },
          {
            name: 'id',
            type: {
              array: ['u8', 32],
            },
          },
        ],
      },
    },
    {
      name: 'InitCoordinatorParams',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'main_authority',
            type: 'pubkey',
          },
          {
            name: 'join_authority',
            type: 'pubkey',
          },
          {
            name: 'run_id',
            type: 'string',
          },
          {
            name: 'config',
            type: {
              array: ['u64', 15],
            },
          },
          {
            name: 'model',
            type: {
              defined: {
                name: 'ModelArg',
              },
            },
          },
        ],
      },
    },
    {
      name: 'JoinAuthorization',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'bump',
            type: 'u8',
          },
          {
            name: 'coordinator_instance',
            type: 'pubkey',
          },
          {
            name: 'grantee',
            type: 'pubkey',
          },
        ],
      },
    },
    {
      name: 'LrScheduleArg',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'kind',
            type: 'u8',
          },
          {
            name: 'lrs',
            type: {
              array: ['f64', 5],
            },
          },
          {
            name: 'steps',
            type: {
              array: ['u64', 4],
            },
          },
        ],
      },
    },
    {
      name: 'ModelArg',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'max_seq_len',
            type: 'u64',
          },
          {
            name: 'cold_start_warmup_steps',
            type: 'u64',
          },
          {
            name: 'checkpoint',
            type: {
              defined: {
                name: 'CheckpointArg',
              },
            },
          },
          {
            name: 'lr_schedule',
            type: {
              defined: {
                name: 'LrScheduleArg',
              },
            },
          },
        ],
      },
    },
    {
      name: 'ProgressArg',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'epoch',
            type: 'u32',
          },
          {
            name: 'step',
            type: 'u32',
          },
          {
            name: 'epoch_start_data_index',
            type: 'u64',
          },
        ],
      },
    },
    {
      name: 'UpdateParams',
      type: {
        kind: 'struct',
        fields: [
          {
            name: 'config',
            type: {
              option: {
                array: ['u64', 15],
              },
            },
          },
          {
            name: 'model',
            type: {
              option: {
                defined: {
                  name: 'ModelArg',
                },
              },
            },
          },
          {
            name: 'progress',
            type: {
              option: {
                defined: {
                  name: 'ProgressArg',
                },
              },
            },
          },
        ],
      },
    },
  ],
} as const;
