//! Replays every conformance scenario in `fixtures/coordinator/` (format: `fixtures/coordinator/FORMAT.md`)
//! and checks every `result` and `state` line, and every `check` function vector, against this crate.
//!
//! Prints `replayed N scenarios (E events, C checks)`; `packages/coordinator/test/rust-core.test.ts` compares N
//! with the number of scenario files.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use psyche_coordinator_core::account::CoordinatorAccount;
use psyche_coordinator_core::bloom::{BLOOM_KEYS, BLOOM_WORDS, Bloom, bloom_num_bits, fnv1a_keyed};
use psyche_coordinator_core::committee::witness_quorum;
use psyche_coordinator_core::config::{
    CONFIG_FIELDS, Checkpoint, CoordinatorConfig, GcsRepo, HubRepo, LrSchedule, ModelConfig,
};
use psyche_coordinator_core::coordinator::{
    ClientId, ClientState, ConfigChange, Coordinator, HealthCheckEntry, TickResult, WitnessMessage, client_id_from_hex,
};
use psyche_coordinator_core::error::CoordinatorError;
use psyche_coordinator_core::hashes::{commitment_hash, round_seed};
use psyche_coordinator_core::schedule::{batch_size, lr_at};
use psyche_coordinator_core::sha256::{sha256, to_hex};
use psyche_coordinator_core::shuffle::{compute_shuffled_index, derive_shuffle_seed, deterministic_shuffle};

type ParseResult<T> = Result<T, String>;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/coordinator")
}

fn int(tok: Option<&&str>) -> ParseResult<u64> {
    let t = tok.ok_or("missing integer token")?;
    let ok = !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && (t.len() == 1 || !t.starts_with('0'));
    if !ok {
        return Err(format!("bad integer token {t:?}"));
    }
    t.parse::<u64>().map_err(|e| format!("integer {t:?}: {e}"))
}

fn float(tok: Option<&&str>) -> ParseResult<f64> {
    let t = tok.ok_or("missing float token")?;
    t.parse::<f64>().map_err(|e| format!("float {t:?}: {e}"))
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

fn hex_or_empty(tok: Option<&&str>) -> ParseResult<Vec<u8>> {
    let t = tok.ok_or("missing hex token")?;
    if *t == "-" {
        return Ok(Vec::new());
    }
    hex(t).ok_or_else(|| format!("bad hex token {t:?}"))
}

fn hex32(tok: Option<&&str>) -> ParseResult<[u8; 32]> {
    let v = hex_or_empty(tok)?;
    v.try_into().map_err(|_| "expected 32 bytes".to_string())
}

fn opt(tok: Option<&&str>) -> ParseResult<Option<String>> {
    let t = tok.ok_or("missing token")?;
    Ok(if *t == "-" { None } else { Some(t.to_string()) })
}

fn parse_checkpoint(t: &[&str], i: usize) -> ParseResult<(Checkpoint, usize)> {
    let kind = *t.get(i).ok_or("missing checkpoint")?;
    let name = |k: usize| t.get(k).map(|s| s.to_string()).ok_or_else(|| "missing checkpoint name".to_string());
    Ok(match kind {
        "ephemeral" => (Checkpoint::Ephemeral, i + 1),
        "dummy" | "hub" | "p2p" => {
            let h = HubRepo { repo_id: name(i + 1)?, revision: opt(t.get(i + 2))? };
            let c = match kind {
                "dummy" => Checkpoint::Dummy(h),
                "hub" => Checkpoint::Hub(h),
                _ => Checkpoint::P2P(h),
            };
            (c, i + 3)
        }
        "gcs" | "p2pgcs" => {
            let g = GcsRepo { bucket: name(i + 1)?, prefix: opt(t.get(i + 2))? };
            (if kind == "gcs" { Checkpoint::Gcs(g) } else { Checkpoint::P2PGcs(g) }, i + 3)
        }
        other => return Err(format!("bad checkpoint kind {other:?}")),
    })
}

fn format_checkpoint(c: &Checkpoint) -> String {
    let o = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".into());
    match c {
        Checkpoint::Ephemeral => "ephemeral".into(),
        Checkpoint::Dummy(h) => format!("dummy {} {}", h.repo_id, o(&h.revision)),
        Checkpoint::Hub(h) => format!("hub {} {}", h.repo_id, o(&h.revision)),
        Checkpoint::P2P(h) => format!("p2p {} {}", h.repo_id, o(&h.revision)),
        Checkpoint::Gcs(g) => format!("gcs {} {}", g.bucket, o(&g.prefix)),
        Checkpoint::P2PGcs(g) => format!("p2pgcs {} {}", g.bucket, o(&g.prefix)),
    }
}

fn parse_lr(t: &[&str]) -> ParseResult<LrSchedule> {
    Ok(match *t.first().ok_or("missing lr schedule")? {
        "constant" => LrSchedule::Constant {
            base_lr: float(t.get(1))?,
            warmup_init_lr: float(t.get(2))?,
            warmup_steps: int(t.get(3))?,
        },
        kind @ ("linear" | "cosine") => {
            let (base_lr, warmup_init_lr, warmup_steps, total_steps, final_lr) =
                (float(t.get(1))?, float(t.get(2))?, int(t.get(3))?, int(t.get(4))?, float(t.get(5))?);
            if kind == "linear" {
                LrSchedule::Linear { base_lr, warmup_init_lr, warmup_steps, total_steps, final_lr }
            } else {
                LrSchedule::Cosine { base_lr, warmup_init_lr, warmup_steps, total_steps, final_lr }
            }
        }
        "wsd" => LrSchedule::Wsd {
            base_lr: float(t.get(1))?,
            warmup_init_lr: float(t.get(2))?,
            warmup_steps: int(t.get(3))?,
            stable_steps: int(t.get(4))?,
            cosine_decay_steps: int(t.get(5))?,
            cosine_decay_final_lr: float(t.get(6))?,
            linear_decay_steps: int(t.get(7))?,
            linear_decay_final_lr: float(t.get(8))?,
        },
        other => return Err(format!("bad lr schedule {other:?}")),
    })
}

fn parse_bloom(tok: Option<&&str>) -> ParseResult<Bloom> {
    let t = tok.ok_or("missing bloom")?;
    let parts: Vec<&str> = t.split(':').collect();
    if parts.len() != 3 || parts[1].len() != 16 * BLOOM_KEYS || parts[2].len() != 16 * BLOOM_WORDS {
        return Err(format!("bad bloom token {t:?}"));
    }
    let words = |h: &str| -> ParseResult<Vec<u64>> {
        (0..h.len() / 16)
            .map(|i| {
                let w = &h[16 * i..16 * i + 16];
                if !w.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(format!("bad bloom word {w:?}"));
                }
                u64::from_str_radix(w, 16).map_err(|e| e.to_string())
            })
            .collect()
    };
    let mut b = Bloom { num_bits: u32::try_from(int(Some(&parts[0]))?).unwrap_or(u32::MAX), ..Default::default() };
    b.keys.copy_from_slice(&words(parts[1])?);
    b.bits.copy_from_slice(&words(parts[2])?);
    Ok(b)
}

fn format_bloom(b: &Bloom) -> String {
    let k: String = b.keys.iter().map(|w| format!("{w:016x}")).collect();
    let bits: String = b.bits.iter().map(|w| format!("{w:016x}")).collect();
    format!("{}:{k}:{bits}", b.num_bits)
}

fn read_list<'a>(t: &[&'a str], i: usize) -> ParseResult<(Vec<&'a str>, usize)> {
    let n = int(t.get(i))? as usize;
    let items = t.get(i + 1..i + 1 + n).ok_or("short list")?.to_vec();
    Ok((items, i + 1 + n))
}

fn list(items: Vec<String>) -> String {
    let mut s = items.len().to_string();
    for x in items {
        s.push(' ');
        s.push_str(&x);
    }
    s
}

fn b(x: bool) -> &'static str {
    if x { "1" } else { "0" }
}

struct Ctx {
    name: String,
    aliases: HashMap<String, ClientId>,
    reverse: HashMap<ClientId, String>,
    run_id: String,
    config: CoordinatorConfig,
    config_seen: Vec<String>,
    model: ModelConfig,
    state: Option<Coordinator>,
}

impl Ctx {
    fn new() -> Self {
        Ctx {
            name: String::new(),
            aliases: HashMap::new(),
            reverse: HashMap::new(),
            run_id: String::new(),
            config: CoordinatorConfig::default(),
            config_seen: Vec::new(),
            model: ModelConfig {
                max_seq_len: 0,
                cold_start_warmup_steps: 0,
                checkpoint: Checkpoint::Ephemeral,
                lr_schedule: LrSchedule::Constant { base_lr: 0.0, warmup_init_lr: 0.0, warmup_steps: 0 },
            },
            state: None,
        }
    }

    /// An alias, or a raw id token. `Ok(Err(e))` is a malformed id (`InvalidClientId`, 5), which the typed
    /// API cannot receive: the events that carry one apply TypeScript's precedence (see `event`).
    fn id_or_invalid(&self, tok: Option<&&str>) -> ParseResult<Result<ClientId, CoordinatorError>> {
        let t = tok.ok_or("missing client alias")?;
        if let Some(id) = self.aliases.get(*t) {
            return Ok(Ok(*id));
        }
        if t.len() > 1 && t.starts_with('c') && t[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("undeclared client alias {t:?}"));
        }
        Ok(client_id_from_hex(t))
    }

    /// An alias or a well-formed raw id; a malformed one is a parse error here (no fixture event uses one
    /// where the expected precedence would be ambiguous).
    fn id(&self, tok: Option<&&str>) -> ParseResult<ClientId> {
        self.id_or_invalid(tok)?.map_err(|_| format!("malformed client id {:?} in this position", tok.unwrap()))
    }

    fn alias(&self, id: &ClientId) -> String {
        self.reverse.get(id).cloned().unwrap_or_else(|| to_hex(id))
    }

    fn st(&mut self) -> ParseResult<&mut Coordinator> {
        self.state.as_mut().ok_or_else(|| "event before a successful create".to_string())
    }

    /// Header lines (`format`, `name`, `description`, `client`, `run_id`, `config`, `model`).
    fn header(&mut self, line: &str, t: &[&str]) -> ParseResult<bool> {
        match t[0] {
            "format" => {
                if t.get(1) != Some(&"1") {
                    return Err(format!("unsupported format {:?}", t.get(1)));
                }
            }
            "name" => self.name = t.get(1).ok_or("missing name")?.to_string(),
            "description" => {
                let _ = line;
            }
            "client" => {
                let alias = t.get(1).ok_or("missing alias")?.to_string();
                let id = hex32(t.get(2))?;
                self.aliases.insert(alias.clone(), id);
                self.reverse.insert(id, alias);
            }
            "run_id" => self.run_id = t.get(1).ok_or("missing run_id")?.to_string(),
            "config" => {
                let f = *t.get(1).ok_or("missing config field")?;
                let v = int(t.get(2))?;
                *self.config.field_mut(f).ok_or_else(|| format!("unknown config field {f:?}"))? = v;
                self.config_seen.push(f.to_string());
            }
            "model" => match *t.get(1).ok_or("missing model field")? {
                "max_seq_len" => self.model.max_seq_len = int(t.get(2))?,
                "cold_start_warmup_steps" => self.model.cold_start_warmup_steps = int(t.get(2))?,
                "checkpoint" => self.model.checkpoint = parse_checkpoint(t, 2)?.0,
                "lr" => self.model.lr_schedule = parse_lr(&t[2..])?,
                other => return Err(format!("unknown model field {other:?}")),
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn snapshot(&self) -> Vec<String> {
        let s = self.state.as_ref().expect("snapshot of a created coordinator");
        let e = &s.epoch_state;
        let r = s.current_round();
        let letter = |c: ClientState| match c {
            ClientState::Healthy => "H",
            ClientState::Dropped => "D",
            ClientState::Withdrawn => "W",
            ClientState::Ejected => "E",
        };
        let witnesses = s.witness_indices(r).iter().map(|i| i.to_string()).collect();
        let batches = if r.clients_len == 0 {
            Vec::new()
        } else {
            s.assign_batches(r).iter().map(|(range, i)| format!("{}-{}:{}", range.start, range.end, i)).collect()
        };
        vec![
            format!("state run_state {}", s.run_state.name()),
            format!("state run_state_start {}", s.run_state_start),
            format!("state epoch {}", s.progress.epoch),
            format!("state step {}", s.progress.step),
            format!("state epoch_start_data_index {}", s.progress.epoch_start_data_index),
            format!("state pending_pause {}", b(s.pending_pause)),
            format!("state cold_start_epoch {}", b(e.cold_start_epoch)),
            format!("state first_round {}", b(e.first_round)),
            format!("state start_step {}", e.start_step),
            format!("state last_step {}", e.last_step),
            format!("state epoch_start_timestamp {}", e.start_timestamp),
            format!("state last_round_seed {}", s.last_round_seed),
            format!("state checkpoint {}", format_checkpoint(&s.model.checkpoint)),
            format!("state pending {}", list(s.pending.iter().map(|id| self.alias(id)).collect())),
            format!(
                "state clients {}",
                list(e.clients.iter().map(|c| format!("{}:{}", self.alias(&c.id), letter(c.state))).collect())
            ),
            format!(
                "state exited {}",
                list(
                    e.exited_clients
                        .iter()
                        .map(|c| format!("{}:{}:{}", self.alias(&c.id), letter(c.state), c.exited_height))
                        .collect()
                )
            ),
            format!("state warmup_witnesses {}", list(e.warmup_witnesses.iter().map(|i| i.to_string()).collect())),
            format!(
                "state round {} {} {} {} {} {}",
                e.rounds_head,
                r.height,
                r.data_index,
                r.random_seed,
                r.clients_len,
                list(r.witnesses.iter().map(|w| w.index.to_string()).collect())
            ),
            format!("state batch_size {}", s.batch_size(r.data_index)),
            format!("state witnesses {}", list(witnesses)),
            format!("state batches {}", list(batches)),
            "end_state".to_string(),
        ]
    }

    /// Runs one event; returns the result line and the snapshot lines.
    fn event(&mut self, t: &[&str]) -> ParseResult<Vec<String>> {
        fn res(r: Result<String, CoordinatorError>) -> String {
            r.unwrap_or_else(|e| format!("result error {}", e.code.number()))
        }
        let before = self.state.clone();
        let result = match t[0] {
            "create" => {
                for f in CONFIG_FIELDS {
                    if !self.config_seen.iter().any(|s| s == f) {
                        return Err(format!("config field {f} missing before create"));
                    }
                }
                match Coordinator::new(&self.run_id, self.config.clone(), self.model.clone()) {
                    Ok(c) => {
                        self.state = Some(c);
                        "result ok".to_string()
                    }
                    Err(e) => return Ok(vec![format!("result error {}", e.code.number())]),
                }
            }
            "tick" => {
                let (now, seed) = (int(t.get(1))?, int(t.get(2))?);
                let (ids, _) = read_list(t, 3)?;
                let ids = ids.iter().map(|a| self.id_or_invalid(Some(a))).collect::<ParseResult<Vec<_>>>()?;
                let st = self.st()?;
                // Precedence (docs/coordinator.md §6.2): now (3), seed (4), Halted (1), then ids (5).
                let bad = ids.iter().find_map(|r| r.as_ref().err().cloned());
                match bad {
                    Some(e) => res(st.check_now(now).and_then(|_| st.join_allowed()).and(Err(e))),
                    None => {
                        let ids: Vec<ClientId> = ids.into_iter().map(|r| r.unwrap()).collect();
                        res(st.tick(&ids, now, seed).map(|r| match r {
                            TickResult::Ticked => "result ok".to_string(),
                            TickResult::EpochEnd(s) => format!("result epoch_end {}", b(s)),
                        }))
                    }
                }
            }
            "join" => {
                let id = self.id_or_invalid(t.get(1))?;
                let st = self.st()?;
                // Precedence (§6.1): Halted (1), then the id (5).
                res(st.join_allowed().and(id).and_then(|id| st.join(id)).map(|_| "result ok".into()))
            }
            "withdraw" => {
                let id = self.id_or_invalid(t.get(1))?;
                let st = self.st()?;
                res(id.and_then(|id| st.withdraw(id)).map(|_| "result ok".into()))
            }
            "witness" => {
                let now = int(t.get(1))?;
                let from = self.id(t.get(2))?;
                let index = int(t.get(3))?;
                let participant_bloom = parse_bloom(t.get(4))?;
                let broadcast_bloom = parse_bloom(t.get(5))?;
                // A malformed merkle token is passed as an empty root: the coordinator must reject it (14).
                let merkle = t.get(6).and_then(|m| hex(m)).unwrap_or_default();
                let msg = WitnessMessage { from, index, participant_bloom, broadcast_bloom, broadcast_merkle: &merkle };
                res(self.st()?.witness(&msg, now).map(|_| "result ok".into()))
            }
            "warmup_witness" => {
                let (now, seed) = (int(t.get(1))?, int(t.get(2))?);
                let from = self.id(t.get(3))?;
                let index = int(t.get(4))?;
                res(self.st()?.warmup_witness(from, index, now, seed).map(|_| "result ok".into()))
            }
            "health_check" => {
                let now = int(t.get(1))?;
                let from = self.id(t.get(2))?;
                let (entries, _) = read_list(t, 3)?;
                let mut checks = Vec::new();
                for x in entries {
                    let (i, a) = x.split_once(':').ok_or_else(|| format!("bad health-check entry {x:?}"))?;
                    checks.push(HealthCheckEntry { index: int(Some(&i))?, id: self.id(Some(&a))? });
                }
                res(self
                    .st()?
                    .health_check(from, &checks, now)
                    .map(|r| format!("result health {} {} {}", r.dropped, r.rejected_healthy, r.already_unhealthy)))
            }
            "checkpoint" => {
                let from = self.id(t.get(1))?;
                let index = int(t.get(2))?;
                let (cp, _) = parse_checkpoint(t, 3)?;
                res(self.st()?.checkpoint(from, index, &cp).map(|_| "result ok".into()))
            }
            "pause" => {
                let now = int(t.get(1))?;
                res(self.st()?.pause(now).map(|_| "result ok".into()))
            }
            "resume" => {
                let now = int(t.get(1))?;
                res(self.st()?.resume(now).map(|_| "result ok".into()))
            }
            "update_config" => {
                let (pairs, _) = read_list(t, 1)?;
                let mut changes = Vec::new();
                for p in pairs {
                    let (k, v) = p.split_once('=').ok_or_else(|| format!("bad change {p:?}"))?;
                    changes.push(ConfigChange::Integer(k.to_string(), int(Some(&v))?));
                }
                res(self.st()?.update_config(&changes).map(|_| "result ok".into()))
            }
            other => return Err(format!("unknown keyword {other:?}")),
        };
        if result.starts_with("result error") && before.is_some() && before != self.state {
            return Err(format!("state changed by a failed event: {}", t.join(" ")));
        }
        // The fixed `#[repr(C)]` account layout holds every state exactly (the fixtures stay within 256 clients).
        if let Some(s) = &self.state {
            let account = CoordinatorAccount::store(s).map_err(|e| format!("account store: {e}"))?;
            if account.load().as_ref() != Ok(s) {
                return Err(format!("account round trip changed the state after {}", t.join(" ")));
            }
        }
        let mut out = vec![result];
        out.extend(self.snapshot());
        Ok(out)
    }

    /// Evaluates a `check` line; `Ok(None)` when it matches.
    fn check(&self, line: &str, t: &[&str]) -> ParseResult<Option<String>> {
        let eq = |got: String, want: Option<&&str>| {
            if Some(got.as_str()) == want.copied() { None } else { Some(format!("{line}: got {got}")) }
        };
        let st = || self.state.as_ref().ok_or_else(|| "check before a successful create".to_string());
        Ok(match *t.get(1).ok_or("missing check kind")? {
            "sha256" => eq(to_hex(&sha256(&hex_or_empty(t.get(2))?)), t.get(3)),
            "shuffle" => {
                let got = compute_shuffled_index(int(t.get(2))?, int(t.get(3))?, &hex32(t.get(4))?)
                    .map_or("InvalidArgument".to_string(), |p| p.to_string());
                eq(got, t.get(5))
            }
            "committee_seed" => {
                let salt = *t.get(3).ok_or("missing salt")?;
                if salt != "committee" && salt != "witness" {
                    return Err(format!("bad salt {salt:?}"));
                }
                eq(to_hex(&derive_shuffle_seed(int(t.get(2))?, salt.as_bytes())), t.get(4))
            }
            "lcg_shuffle" => {
                let seed = int(t.get(2))?;
                let (items, _) = read_list(t, 3)?;
                let mut v: Vec<u64> = (0..items.len() as u64).collect();
                deterministic_shuffle(&mut v, seed);
                let got: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                if got == items { None } else { Some(format!("{line}: got {}", got.join(" "))) }
            }
            "fnv1a" => eq(fnv1a_keyed(int(t.get(2))?, &hex_or_empty(t.get(3))?).to_string(), t.get(4)),
            "bloom_bits" => {
                let n = int(t.get(2))?;
                eq(bloom_num_bits(n, 0.01).map_err(|e| e.to_string())?.to_string(), t.get(3))
            }
            "bloom_contains" => {
                let bl = parse_bloom(t.get(2))?;
                eq(b(bl.contains(&hex_or_empty(t.get(3))?)).to_string(), t.get(4))
            }
            "quorum" => eq(witness_quorum(int(t.get(2))?).to_string(), t.get(3)),
            "batch_size" => {
                let s = st()?;
                eq(batch_size(&s.config, s.model.max_seq_len, int(t.get(2))?).to_string(), t.get(3))
            }
            "lr" => {
                let s = st()?;
                let got = lr_at(&s.model.lr_schedule, int(t.get(2))?).map_err(|e| e.to_string())?;
                let want = float(t.get(3))?;
                // Tolerance stated in FORMAT.md: |a − b| <= 1e-12 · max(1, |b|).
                if (got - want).abs() <= 1e-12 * want.abs().max(1.0) {
                    None
                } else {
                    Some(format!("{line}: got {got}"))
                }
            }
            "commitment" => {
                let step = u32::try_from(int(t.get(2))?).map_err(|e| e.to_string())?;
                eq(to_hex(&commitment_hash(step, int(t.get(3))?, int(t.get(4))?, &hex_or_empty(t.get(5))?)), t.get(6))
            }
            "round_seed" => {
                let (tick_seed, prev_seed) = (int(t.get(2))?, int(t.get(3))?);
                let epoch = u32::try_from(int(t.get(4))?).map_err(|e| e.to_string())?;
                let step = u32::try_from(int(t.get(5))?).map_err(|e| e.to_string())?;
                let (ws, next) = read_list(t, 6)?;
                let mut witnesses = Vec::new();
                for w in ws {
                    let (i, m) = w.split_once(':').ok_or_else(|| format!("bad witness {w:?}"))?;
                    let i = u32::try_from(int(Some(&i))?).map_err(|e| e.to_string())?;
                    witnesses.push((i, hex32(Some(&m))?));
                }
                eq(round_seed(tick_seed, prev_seed, epoch, step, &witnesses).to_string(), t.get(next))
            }
            other => return Err(format!("unknown check {other:?}")),
        })
    }
}

struct Replay {
    events: usize,
    checks: usize,
    mismatches: Vec<String>,
}

fn replay(text: &str) -> ParseResult<(String, Replay)> {
    let mut ctx = Ctx::new();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Replay { events: 0, checks: 0, mismatches: Vec::new() };
    let mut i = 0;
    let mut saw_end = false;
    while i < lines.len() {
        let line = lines[i];
        let at = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let t: Vec<&str> = line.split(' ').collect();
        if ctx.header(line, &t).map_err(|e| format!("line {at}: {e}"))? {
            continue;
        }
        if line == "end" {
            saw_end = true;
            break;
        }
        if t[0] == "check" {
            out.checks += 1;
            if let Some(m) = ctx.check(line, &t).map_err(|e| format!("line {at}: {e}"))? {
                out.mismatches.push(format!("line {at}: {m}"));
            }
            continue;
        }
        out.events += 1;
        let got = ctx.event(&t).map_err(|e| format!("line {at}: {e}"))?;
        for (k, g) in got.iter().enumerate() {
            let want = lines.get(i + k).copied().unwrap_or("<end of file>");
            if want != g {
                out.mismatches.push(format!("line {}: after {line:?} expected {want:?} got {g:?}", i + k + 1));
            }
        }
        i += got.len();
    }
    if !saw_end {
        out.mismatches.push("missing end line".into());
    }
    Ok((ctx.name, out))
}

#[test]
fn replays_every_conformance_scenario() {
    let dir = fixtures_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    let (mut events, mut checks) = (0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(f).expect("read scenario");
        match replay(&text) {
            Err(e) => failures.push(format!("{stem}: parse error: {e}")),
            Ok((name, r)) => {
                if name != stem {
                    failures.push(format!("{stem}: name line says {name:?}"));
                }
                if r.events == 0 {
                    failures.push(format!("{stem}: no events"));
                }
                events += r.events;
                checks += r.checks;
                failures.extend(r.mismatches.into_iter().take(5).map(|m| format!("{stem}: {m}")));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    println!("replayed {} scenarios ({events} events, {checks} checks)", files.len());
}

#[test]
fn bloom_token_round_trip() {
    let mut bl = Bloom::new(100, [1, 2, 3, 4, 5, 6, 7, u64::MAX]);
    bl.add(b"abc");
    let tok = format_bloom(&bl);
    assert_eq!(parse_bloom(Some(&tok.as_str())).unwrap(), bl);
    assert!(parse_bloom(Some(&"1:00:00")).is_err());
}

#[test]
fn parser_is_strict() {
    assert!(int(Some(&"01")).is_err());
    assert!(int(Some(&"-1")).is_err());
    assert!(int(Some(&"18446744073709551616")).is_err());
    assert_eq!(int(Some(&"18446744073709551615")).unwrap(), u64::MAX);
    assert!(replay("format 2\nend\n").is_err());
    assert!(replay("format 1\nbogus 1\nend\n").is_err());
    let (_, r) = replay("format 1\nname x\n").unwrap();
    assert_eq!(r.mismatches, vec!["missing end line".to_string()]);
}

#[test]
fn replay_detects_a_wrong_expectation() {
    // Take a real scenario, change one expected line, and the replay must report exactly that line.
    let text = fs::read_to_string(fixtures_dir().join("full-epoch.txt")).expect("full-epoch.txt");
    let (_, ok) = replay(&text).unwrap();
    assert!(ok.mismatches.is_empty());
    let at = text.find("\nstate step 1\n").expect("a step line") + 1;
    let broken = format!("{}state step 2{}", &text[..at], &text[at + "state step 1".len()..]);
    let (_, r) = replay(&broken).unwrap();
    assert_eq!(r.mismatches.len(), 1, "{:?}", r.mismatches);
    assert!(r.mismatches[0].contains("expected \"state step 2\" got \"state step 1\""));
}
