//! Benchmark of the Rust state machine: ticks/s, full rounds/s, committee/batch prediction and state memory with
//! 256 clients (Psyche's on-chain cap) and 10 000 clients (beyond it).
//!
//! `cargo run --release --offline --example bench` prints a table and writes
//! `../../bench-results/coordinator-core.json`.

use std::time::Instant;

use psyche_coordinator_core::account::CoordinatorAccount;
use psyche_coordinator_core::bloom::Bloom;
use psyche_coordinator_core::config::{Checkpoint, CoordinatorConfig, HubRepo, LrSchedule, ModelConfig};
use psyche_coordinator_core::coordinator::{ClientId, Coordinator, RunState, WitnessMessage};
use psyche_coordinator_core::sha256::sha256;

fn setup(n: usize) -> (Coordinator, Vec<ClientId>) {
    let config = CoordinatorConfig {
        warmup_time: 30,
        cooldown_time: 10,
        max_round_train_time: 20,
        round_witness_time: 1,
        global_batch_size_warmup_tokens: 0,
        epoch_time: 1 << 31,
        total_steps: (1 << 32) - 2,
        init_min_clients: n as u64,
        min_clients: 1,
        max_clients: n as u64,
        witness_nodes: 0,
        global_batch_size_start: 4096,
        global_batch_size_end: 4096,
        verification_percent: 0,
        waiting_for_members_extra_time: 1,
    };
    let model = ModelConfig {
        max_seq_len: 2048,
        cold_start_warmup_steps: 0,
        checkpoint: Checkpoint::Hub(HubRepo { repo_id: "org/model".into(), revision: None }),
        lr_schedule: LrSchedule::Constant { base_lr: 3e-4, warmup_init_lr: 0.0, warmup_steps: 0 },
    };
    let ids: Vec<ClientId> = (0..n as u32).map(|i| sha256(&i.to_le_bytes())).collect();
    let mut c = Coordinator::new("bench", config, model).unwrap();
    c.resume(1).unwrap();
    c.tick(&ids, 2, 1).unwrap();
    c.tick(&[], 3, 1).unwrap();
    c.tick(&[], 40, 1).unwrap(); // warmup timed out → RoundTrain
    assert_eq!(c.run_state, RunState::RoundTrain);
    (c, ids)
}

/// One full round: every witness reports (opportunistic → RoundWitness), then the RoundWitness tick starts the next.
fn round(c: &mut Coordinator, ids: &[ClientId], now: &mut u64) {
    let r = c.current_round().clone();
    let mut p = Bloom::new(1024, [3; 8]);
    p.add(b"x");
    for i in c.witness_indices(&r) {
        let m = [7u8; 32];
        let msg = WitnessMessage {
            from: ids[i as usize],
            index: i as u64,
            participant_bloom: p,
            broadcast_bloom: p,
            broadcast_merkle: &m,
        };
        c.witness(&msg, *now).unwrap();
    }
    *now += 1;
    c.tick(&[], *now, *now).unwrap();
    assert_eq!(c.run_state, RunState::RoundTrain);
}

fn state_bytes(c: &Coordinator) -> usize {
    let e = &c.epoch_state;
    std::mem::size_of::<Coordinator>()
        + c.pending.capacity() * 32
        + (e.clients.capacity() + e.exited_clients.capacity())
            * std::mem::size_of::<psyche_coordinator_core::coordinator::Client>()
        + e.rounds.iter().map(|r| r.witnesses.capacity()).sum::<usize>()
            * std::mem::size_of::<psyche_coordinator_core::coordinator::Witness>()
        + e.warmup_witnesses.capacity() * 4
}

fn main() {
    let mut results = Vec::new();
    println!(
        "{:>7} {:>14} {:>12} {:>16} {:>14} {:>12}",
        "clients", "idle ticks/s", "rounds/s", "predict round ms", "state bytes", "account"
    );
    for n in [256usize, 10_000] {
        let (mut c, ids) = setup(n);
        // Idle ticks (RoundTrain, not timed out).
        let reps = 200_000;
        let t = Instant::now();
        for _ in 0..reps {
            c.tick(&[], 40, 9).unwrap();
        }
        let idle = reps as f64 / t.elapsed().as_secs_f64();
        // Full rounds (32 witness messages + 1 tick each).
        let mut now = 40;
        let rounds = if n > 1000 { 20 } else { 200 };
        let t = Instant::now();
        for _ in 0..rounds {
            round(&mut c, &ids, &mut now);
        }
        let rounds_per_s = rounds as f64 / t.elapsed().as_secs_f64();
        // What a client computes to predict a round: witness set + batch assignment over all clients.
        let r = c.current_round().clone();
        let reps = 3;
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(c.witness_indices(&r));
            std::hint::black_box(c.assign_batches(&r));
        }
        let predict_ms = t.elapsed().as_secs_f64() * 1000.0 / reps as f64;
        let bytes = state_bytes(&c);
        let account = CoordinatorAccount::store(&c).ok().map(|_| std::mem::size_of::<CoordinatorAccount>());
        let account_str = account.map_or("n/a (>256)".to_string(), |b| b.to_string());
        println!("{n:>7} {idle:>14.0} {rounds_per_s:>12.0} {predict_ms:>16.2} {bytes:>14} {account_str:>12}");
        results.push(format!(
            "{{\"name\":\"rust-coordinator-{n}-clients\",\"clients\":{n},\"idleTicksPerSec\":{idle:.0},\"roundsPerSec\":{rounds_per_s:.1},\"predictRoundMs\":{predict_ms:.3},\"stateBytes\":{bytes},\"accountBytes\":{}}}",
            account.map_or("null".to_string(), |b| b.to_string())
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let json = format!(
        "{{\"package\":\"coordinator-core\",\"date\":\"{date}\",\"machine\":{{\"cpus\":{cpus},\"node\":null,\"backend\":\"rust-release\"}},\"results\":[{}]}}\n",
        results.join(",")
    );
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-results/coordinator-core.json");
    match std::fs::write(&out, json) {
        Ok(()) => println!("wrote {}", out.display()),
        Err(e) => println!("could not write {}: {e}", out.display()),
    }
}
