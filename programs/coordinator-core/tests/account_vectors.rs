//! Writes encoded coordinator accounts for a fixed scenario, and the account layout, into
//! `fixtures/coordinator-account/` (only when the bytes changed). The TypeScript Solana decoder test
//! (`packages/coordinator-client/test/solana-account.test.ts`) decodes each vector and compares it with the
//! TypeScript state machine's own state after the same steps, and checks its offsets against `layout.json`.
//!
//! Scenario (mirrored step by step in the TypeScript test):
//! 1. `new("acct-run", …)` → `00-uninitialized.bin`
//! 2. `resume(1000)` → `01-waiting.bin`
//! 3. `tick([id1, id2, id3], 1001, 0)`, `tick([], 1002, 0)` → `02-warmup.bin`
//! 4. `warmup_witness(id_i, i, 1010, 0xfeed)` for i = 0, 1, 2 → `03-round-train.bin`
//! 5. `witness` from the first witness index (bloom of 64 bits, keys 1..=8, holding `sha256(id)` of every
//!    client; merkle root `[7; 32]`) at 1011 → `04-witnessed.bin`

use core::mem::{offset_of, size_of};
use std::fmt::Write as _;
use std::path::PathBuf;

use psyche_coordinator_core::account::{
    AccountCheckpoint, AccountClient, AccountEpochState, AccountLrSchedule, AccountModel, AccountRound, AccountWitness,
    CoordinatorAccount,
};
use psyche_coordinator_core::bloom::Bloom;
use psyche_coordinator_core::config::{Checkpoint, CoordinatorConfig, HubRepo, LrSchedule, ModelConfig};
use psyche_coordinator_core::coordinator::{Coordinator, RunState, WitnessMessage};
use psyche_coordinator_core::sha256::sha256;

fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/coordinator-account")
}

fn write_if_changed(name: &str, bytes: &[u8]) {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    if std::fs::read(&path).ok().as_deref() != Some(bytes) {
        std::fs::write(&path, bytes).unwrap();
    }
}

fn account_bytes(c: &Coordinator) -> Vec<u8> {
    let a = CoordinatorAccount::store(c).unwrap();
    // SAFETY: `CoordinatorAccount` is `#[repr(C)]` with explicit padding only (the layout test checks that the
    // fields tile each struct), so all of its bytes are initialized.
    let bytes = unsafe {
        core::slice::from_raw_parts((&*a as *const CoordinatorAccount).cast::<u8>(), size_of::<CoordinatorAccount>())
    };
    let v = bytes.to_vec();
    assert_eq!(a.load().unwrap(), *c, "store/load round trip");
    v
}

#[test]
fn writes_account_vectors_and_layout() {
    let config = CoordinatorConfig {
        warmup_time: 30,
        cooldown_time: 10,
        max_round_train_time: 20,
        round_witness_time: 2,
        global_batch_size_warmup_tokens: 0,
        epoch_time: 200,
        total_steps: 100,
        init_min_clients: 3,
        min_clients: 2,
        max_clients: 8,
        witness_nodes: 0,
        global_batch_size_start: 8,
        global_batch_size_end: 8,
        verification_percent: 0,
        waiting_for_members_extra_time: 2,
    };
    let model = ModelConfig {
        max_seq_len: 2048,
        cold_start_warmup_steps: 0,
        checkpoint: Checkpoint::Hub(HubRepo { repo_id: "org/model".into(), revision: Some("main".into()) }),
        lr_schedule: LrSchedule::Cosine {
            base_lr: 3e-4,
            warmup_init_lr: 0.0,
            warmup_steps: 10,
            total_steps: 100,
            final_lr: 3e-5,
        },
    };
    let mut c = Coordinator::new("acct-run", config, model).unwrap();
    write_if_changed("00-uninitialized.bin", &account_bytes(&c));
    c.resume(1000).unwrap();
    write_if_changed("01-waiting.bin", &account_bytes(&c));
    let ids = [[1u8; 32], [2u8; 32], [3u8; 32]];
    c.tick(&ids, 1001, 0).unwrap();
    c.tick(&[], 1002, 0).unwrap();
    assert_eq!(c.run_state, RunState::Warmup);
    write_if_changed("02-warmup.bin", &account_bytes(&c));
    for (i, id) in ids.iter().enumerate() {
        c.warmup_witness(*id, i as u64, 1010, 0xfeed).unwrap();
    }
    assert_eq!(c.run_state, RunState::RoundTrain);
    write_if_changed("03-round-train.bin", &account_bytes(&c));
    let round = c.current_round().clone();
    let w = c.witness_indices(&round)[0];
    let mut bloom = Bloom::new(64, [1, 2, 3, 4, 5, 6, 7, 8]);
    for id in &ids {
        bloom.add(&sha256(id));
    }
    let merkle = [7u8; 32];
    c.witness(
        &WitnessMessage {
            from: c.epoch_state.clients[w as usize].id,
            index: w as u64,
            participant_bloom: bloom,
            broadcast_bloom: bloom,
            broadcast_merkle: &merkle,
        },
        1011,
    )
    .unwrap();
    write_if_changed("04-witnessed.bin", &account_bytes(&c));

    // layout.json: { "<Struct>": { "size": n, "fields": { "<field>": [offset, size] } } }
    let mut j = String::from("{\n");
    macro_rules! st {
        ($t:ty, [$($f:ident),+ $(,)?]) => {{
            let mut fields = Vec::new();
            $(
                fields.push(format!(
                    "\"{}\": [{}, {}]",
                    stringify!($f),
                    offset_of!($t, $f),
                    {
                        fn size_of_field<T>(_: fn(&$t) -> &T) -> usize { size_of::<T>() }
                        size_of_field(|s: &$t| &s.$f)
                    }
                ));
            )+
            let _ = write!(j, "  \"{}\": {{ \"size\": {}, \"fields\": {{ {} }} }}", stringify!($t), size_of::<$t>(), fields.join(", "));
        }};
    }
    st!(Bloom, [bits, keys, num_bits, _pad]);
    j.push_str(",\n");
    st!(AccountClient, [id, exited_height, state, _pad]);
    j.push_str(",\n");
    st!(AccountWitness, [participant_bloom, broadcast_bloom, broadcast_merkle, index, _pad]);
    j.push_str(",\n");
    st!(AccountRound, [witnesses, data_index, random_seed, height, clients_len, witnesses_len, _pad]);
    j.push_str(",\n");
    st!(
        AccountEpochState,
        [
            rounds,
            clients,
            exited_clients,
            warmup_witnesses,
            start_timestamp,
            clients_len,
            exited_len,
            warmup_witnesses_len,
            rounds_head,
            start_step,
            last_step,
            first_round,
            cold_start_epoch,
            _pad
        ]
    );
    j.push_str(",\n");
    st!(AccountCheckpoint, [name, detail, kind, name_len, has_detail, detail_len, _pad]);
    j.push_str(",\n");
    st!(AccountLrSchedule, [lrs, steps, kind, _pad]);
    j.push_str(",\n");
    st!(AccountModel, [lr_schedule, checkpoint, max_seq_len, cold_start_warmup_steps]);
    j.push_str(",\n");
    st!(
        CoordinatorAccount,
        [
            version,
            run_id,
            run_state,
            run_id_len,
            pending_pause,
            _pad0,
            run_state_start,
            epoch_start_data_index,
            epoch,
            step,
            last_round_seed,
            config,
            model,
            pending,
            pending_len,
            _pad1,
            epoch_state
        ]
    );
    j.push_str("\n}\n");
    write_if_changed("layout.json", j.as_bytes());
}
