//! Property test (docs/coordinator.md §12): random event sequences — valid and invalid — never violate the
//! state-machine invariants, and a failed call never changes the state. Deterministic: the sequences come from
//! the crate's own LCG with fixed seeds.

use psyche_coordinator_core::bloom::Bloom;
use psyche_coordinator_core::committee::{MAX_WITNESSES, effective_witness_nodes};
use psyche_coordinator_core::config::{Checkpoint, CoordinatorConfig, HubRepo, LrSchedule, MAX_PENDING, ModelConfig};
use psyche_coordinator_core::coordinator::{
    ClientId, ClientState, Coordinator, HealthCheckEntry, RunState, TickResult, WitnessMessage,
};
use psyche_coordinator_core::sha256::sha256;
use psyche_coordinator_core::shuffle::Lcg;

struct Rng(Lcg);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // High bits of the LCG are the good ones.
        ((self.0.next() >> 32) * n) >> 32
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn config(rng: &mut Rng) -> CoordinatorConfig {
    let min_clients = 1 + rng.below(3);
    CoordinatorConfig {
        warmup_time: 5 + rng.below(20),
        cooldown_time: 1 + rng.below(10),
        max_round_train_time: 3 + rng.below(15),
        round_witness_time: 1 + rng.below(4),
        global_batch_size_warmup_tokens: rng.below(4096),
        epoch_time: 40 + rng.below(200),
        total_steps: 1 + rng.below(30),
        init_min_clients: min_clients + rng.below(3),
        min_clients,
        max_clients: min_clients + 2 + rng.below(6),
        witness_nodes: rng.below(min_clients + 1),
        global_batch_size_start: 1 + rng.below(8),
        global_batch_size_end: 9 + rng.below(24),
        verification_percent: 0,
        waiting_for_members_extra_time: 1 + rng.below(5),
    }
}

fn model() -> ModelConfig {
    ModelConfig {
        max_seq_len: 64,
        cold_start_warmup_steps: 0,
        checkpoint: Checkpoint::Hub(HubRepo { repo_id: "org/model".into(), revision: None }),
        lr_schedule: LrSchedule::Constant { base_lr: 3e-4, warmup_init_lr: 0.0, warmup_steps: 0 },
    }
}

/// Invariants of docs/coordinator.md §12 (the batch check runs when the current round changed).
fn check_invariants(c: &Coordinator, prev: &Coordinator, check_batches: bool) {
    let e = &c.epoch_state;
    for (i, a) in e.clients.iter().enumerate() {
        assert!(e.clients[..i].iter().all(|b| b.id != a.id), "duplicate client id");
        if a.state == ClientState::Healthy {
            assert!(e.exited_clients.iter().all(|x| x.id != a.id), "client both Healthy and exited");
        }
    }
    assert!(e.clients.len() as u64 <= c.config.max_clients);
    assert!(c.pending.len() <= MAX_PENDING);
    assert!(c.progress.step >= prev.progress.step, "step decreased");
    assert!(c.progress.step as u64 <= c.config.total_steps + 1, "step beyond total_steps + 1");
    assert!(c.progress.epoch >= prev.progress.epoch, "epoch decreased");
    for r in &e.rounds {
        let cap = effective_witness_nodes(c.config.witness_nodes, r.clients_len as u64);
        assert!(r.witnesses.len() as u64 <= cap && cap <= MAX_WITNESSES as u64);
    }
    let r = c.current_round();
    if check_batches && r.clients_len > 0 {
        let total = c.batch_size(r.data_index);
        let mut next = r.data_index;
        for (range, index) in c.assign_batches(r) {
            assert!(index < r.clients_len);
            assert_eq!(range.start, next, "batch ranges must be contiguous and disjoint");
            next = range.end + 1;
        }
        assert_eq!(next, r.data_index + total, "batch ranges must cover the global batch");
    }
}

#[test]
fn random_event_sequences_keep_the_invariants() {
    let ids: Vec<ClientId> = (0..14u32).map(|i| sha256(&i.to_be_bytes())).collect();
    let (mut events, mut errors, mut epochs, mut rounds) = (0u64, 0u64, 0u64, 0u64);
    for seq in 0..96u64 {
        let mut rng = Rng(Lcg::new(0x5eed_0000 + seq));
        let mut c = Coordinator::new("prop", config(&mut rng), model()).expect("valid config");
        let mut now = 1000u64;
        c.resume(now).unwrap();
        let mut last_seed = c.current_round().random_seed;
        for _ in 0..260 {
            now += rng.below(8);
            let before = c.clone();
            let r = match rng.below(20) {
                0..=8 => {
                    let joiners: Vec<ClientId> =
                        (0..rng.below(3)).map(|_| ids[rng.below(ids.len() as u64) as usize]).collect();
                    let t = if rng.chance(3) { now.saturating_sub(50) } else { now };
                    c.tick(&joiners, t, rng.0.next()).map(|r| {
                        if r == TickResult::EpochEnd(true) {
                            epochs += 1;
                        }
                    })
                }
                9 => c.join(ids[rng.below(ids.len() as u64) as usize]),
                10 => c.withdraw(ids[rng.below(ids.len() as u64) as usize]),
                11..=14 => {
                    // A witness from a random client (often a real witness), seeing a random subset of clients.
                    let n = c.epoch_state.clients.len() as u64;
                    let index = rng.below(n + 1);
                    let from = c.epoch_state.clients.get(index as usize).map_or(ids[0], |x| x.id);
                    let mut participants = Bloom::new(64, [rng.0.next(), 2, 3, 4, 5, 6, 7, 8]);
                    for cl in &c.epoch_state.clients {
                        if rng.chance(85) {
                            participants.add(&sha256(&cl.id));
                        }
                    }
                    let mut broadcast = Bloom::new(32, [1; 8]);
                    if rng.chance(5) {
                        broadcast.bits[1] = 1; // bit 64 >= 32 bits: invalid
                    }
                    let merkle = if rng.chance(5) { vec![0u8; 31] } else { vec![rng.below(256) as u8; 32] };
                    let msg = WitnessMessage {
                        from,
                        index,
                        participant_bloom: participants,
                        broadcast_bloom: broadcast,
                        broadcast_merkle: &merkle,
                    };
                    c.witness(&msg, now)
                }
                15 => {
                    let n = c.epoch_state.clients.len() as u64;
                    let index = rng.below(n + 1);
                    let from = c.epoch_state.clients.get(index as usize).map_or(ids[1], |x| x.id);
                    c.warmup_witness(from, index, now, rng.0.next())
                }
                16 | 17 => {
                    let n = c.epoch_state.clients.len();
                    let from = if n > 0 { c.epoch_state.clients[rng.below(n as u64) as usize].id } else { ids[2] };
                    let checks: Vec<HealthCheckEntry> = (0..1 + rng.below(3))
                        .map(|_| {
                            let index = rng.below(n as u64 + 1);
                            let id = c.epoch_state.clients.get(index as usize).map_or(ids[3], |x| x.id);
                            HealthCheckEntry { index, id }
                        })
                        .collect();
                    c.health_check(from, &checks, now).map(|_| ())
                }
                18 => c.pause(now),
                _ => c.resume(now),
            };
            events += 1;
            if r.is_err() {
                errors += 1;
                assert_eq!(c, before, "a failed call changed the state");
            }
            let seed = c.current_round().random_seed;
            let new_round = seed != last_seed;
            if new_round {
                rounds += 1;
                last_seed = seed;
            }
            check_invariants(&c, &before, new_round);
            if c.run_state == RunState::Finished {
                break;
            }
        }
    }
    println!("property: {events} events ({errors} rejected), {rounds} rounds, {epochs} epochs");
    // The generator must actually exercise the machine: many rounds, several whole epochs, some rejections.
    assert!(rounds > 100 && epochs > 10 && errors > 100, "{rounds} rounds, {epochs} epochs, {errors} errors");
}
