//! The daemon's observed state: what the last run of each check said (verdict, reason and
//! its class, latency, when, consecutive counts) and facts about the daemon (pid,
//! version, engine, configuration and its hash, reloads, uptime). Fed from the run loop
//! with one call per event; [`Observer::snapshot`] joins it with the director's view into
//! the public [`Snapshot`](crate::status::Snapshot) the control socket serves.

// CheckSpec holds a compiled regex behind an Arc but hashes and compares by the pattern's
// text, so it is a sound map key.
#![allow(clippy::mutable_key_type)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use ldirectord_checks::{CheckSpec, Outcome, Verdict};
use md5::{Digest, Md5};
use tokio::time::Instant;

use super::drain::{DrainRecord, real_text};
use crate::director::{Director, Health, RealStatus};
use crate::status::{
    CheckView, DaemonFacts, DrainView, FallbackView, RealState, RealView, ReloadView,
    SCHEMA_VERSION, Snapshot, VirtualView,
};

/// The last run of one check.
#[derive(Debug, Clone)]
struct CheckRecord {
    outcome: Outcome,
    at: Timestamp,
    failures: u32,
    successes: u32,
}

/// What the daemon has seen, beyond the director's own state.
#[derive(Debug)]
pub struct Observer {
    engine: &'static str,
    config_path: PathBuf,
    config_md5: String,
    /// The director's clock origin, as a monotonic instant and as wall time.
    started: Instant,
    started_wall: Timestamp,
    last_reload: Option<ReloadView>,
    /// Keyed by the scheduler's shared copy of each spec: a result costs no clone of it,
    /// and an entry is a pointer, not a whole spec (at 10,000 reals the map held 8 MB of
    /// spec copies, and twice that while it grew).
    checks: HashMap<Arc<CheckSpec>, CheckRecord>,
}

impl Observer {
    /// `started` is the instant the director's clock counts from.
    pub fn new(engine: &'static str, config_path: &Path, started: Instant) -> Observer {
        Observer {
            engine,
            config_path: config_path.to_path_buf(),
            config_md5: file_md5(config_path),
            started,
            started_wall: Timestamp::now() - started.elapsed(),
            last_reload: None,
            checks: HashMap::new(),
        }
    }

    /// A check result arrived at `now`, director time (the loop's own reading: no clock
    /// read of its own per result, and the same clock as `last_transition_at`).
    pub fn on_check(&mut self, spec: &Arc<CheckSpec>, outcome: &Outcome, now: Duration) {
        let at = self.wall(now);
        let record = match self.checks.get_mut(&**spec) {
            Some(record) => {
                record.outcome.clone_from(outcome);
                record.at = at;
                record
            }
            None => self
                .checks
                .entry(Arc::clone(spec))
                .or_insert_with(|| CheckRecord {
                    outcome: outcome.clone(),
                    at,
                    failures: 0,
                    successes: 0,
                }),
        };
        match outcome.verdict {
            Verdict::Up => {
                record.successes += 1;
                record.failures = 0;
            }
            Verdict::Down => {
                record.failures += 1;
                record.successes = 0;
            }
            Verdict::Maintenance => {
                record.failures = 0;
                record.successes = 0;
            }
        }
    }

    /// A reload finished: `Ok` with the new configuration in force, or the parse error.
    pub fn on_reload(&mut self, result: Result<(), String>) {
        if result.is_ok() {
            self.config_md5 = file_md5(&self.config_path);
        }
        self.last_reload = Some(ReloadView {
            at: Timestamp::now().to_string(),
            result: if result.is_ok() { "ok" } else { "error" }.to_owned(),
            error: result.err(),
        });
    }

    /// Forget the checks `keep` says are no longer scheduled.
    pub fn retain(&mut self, keep: impl Fn(&CheckSpec) -> bool) {
        self.checks.retain(|k, _| keep(k));
    }

    /// The daemon's view now.
    pub fn snapshot(&self, director: &Director, drains: &[DrainRecord]) -> Snapshot {
        let drain_view = |r: &DrainRecord| DrainView {
            real: r.real_text(),
            virtual_id: r.virtual_id.clone(),
            by: r.by.clone(),
            since: r.since.clone(),
        };
        // By address first: the director, the scheduler and this map share one Arc per
        // check (a reload keeps the Arc of a check that stays), so the per-real lookup
        // needs no hash of a whole spec. Hashing and comparing specs was 37% of a
        // 40,000-real snapshot (perf, `status_snapshot` bench); it is the fallback.
        let by_address: HashMap<*const CheckSpec, &CheckRecord> = self
            .checks
            .iter()
            .map(|(spec, record)| (Arc::as_ptr(spec), record))
            .collect();
        let record = |spec: &CheckSpec| {
            by_address
                .get(&std::ptr::from_ref(spec))
                .copied()
                .or_else(|| self.checks.get(spec))
        };
        let virtuals = director
            .status()
            .into_iter()
            .map(|v| {
                let reals = v
                    .reals
                    .iter()
                    .map(|r| {
                        let drain = r
                            .drained
                            .then(|| {
                                drains
                                    .iter()
                                    .find(|d| d.target().matches(&v.virtual_id, &r.dest))
                            })
                            .flatten()
                            .map(drain_view);
                        self.real_view(r, drain, r.check.and_then(record))
                    })
                    .collect();
                let fallback = v.fallback.map(|(fb, active)| FallbackView {
                    server: real_text(fb.ip, Some(fb.port)),
                    forward: fb.forward.as_str().to_owned(),
                    state: if active { "fallback" } else { "standby" }.to_owned(),
                });
                VirtualView {
                    id: v.virtual_id.clone(),
                    scheduler: v.spec.scheduler.clone(),
                    persistent: v.spec.persistent,
                    in_table: v.in_table,
                    fallback_active: v.fallback.is_some_and(|(_, active)| active),
                    fallback,
                    reals,
                }
            })
            .collect();
        let uptime = self.started.elapsed();
        Snapshot {
            schema: SCHEMA_VERSION,
            running: true,
            daemon: DaemonFacts {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                engine: self.engine.to_owned(),
                state: director.state().as_str().to_owned(),
                config_path: self.config_path.display().to_string(),
                config_md5: self.config_md5.clone(),
                started_at: self.started_wall.to_string(),
                uptime_seconds: uptime.as_secs(),
                last_reload: self.last_reload.clone(),
                capabilities: super::privilege::effective(),
            },
            virtuals,
            drains: drains.iter().map(drain_view).collect(),
        }
    }

    /// One real's view: the director's `r`, its drain and its check's last run.
    fn real_view(
        &self,
        r: &RealStatus<'_>,
        drain: Option<DrainView>,
        last: Option<&CheckRecord>,
    ) -> RealView {
        let state = if r.drained {
            RealState::Draining
        } else if r.maintenance {
            RealState::Maintenance
        } else {
            match r.health {
                Health::Up => RealState::Up,
                Health::Down if r.table_weight == Some(0) => RealState::Quiesced,
                Health::Down => RealState::Down,
                Health::New | Health::Unchecked => RealState::Unchecked,
            }
        };
        let check = last.map(|c| CheckView {
            verdict: match c.outcome.verdict {
                Verdict::Up => "up",
                Verdict::Down => "down",
                Verdict::Maintenance => "maintenance",
            }
            .to_owned(),
            reason: c.outcome.reason.clone(),
            failure_class: c.outcome.class().map(|k| k.as_str().to_owned()),
            latency_ms: c.outcome.latency.as_secs_f64() * 1000.0,
            checked_at: c.at.to_string(),
            consecutive_failures: c.failures,
            consecutive_successes: c.successes,
        });
        RealView {
            server: r.real.clone(),
            forward: r.dest.forward.as_str().to_owned(),
            weight: r.dest.weight,
            table_weight: r.table_weight,
            state,
            check,
            transitions: r.transitions,
            last_transition_at: r.last_transition.map(|d| self.wall(d).to_string()),
            drain,
        }
    }

    /// Director time (since start-up) as wall time.
    fn wall(&self, since_start: Duration) -> Timestamp {
        self.started_wall + since_start
    }
}

/// MD5 of a file as lowercase hex, empty when it cannot be read.
fn file_md5(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| {
            Md5::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .unwrap_or_default()
}
