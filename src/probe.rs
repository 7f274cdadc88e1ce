//! `--probe`: run one round of every configured health check and report, without touching
//! IPVS. An operator runs it before switching from stock ldirectord to see what
//! ldirectord-rs would decide for each real server, and why.
//!
//! Each (virtual, real) pair gets the [`CheckSpec`] the daemon would use. Identical specs
//! (the same real checked the same way in several virtuals, §3.3) run once and their
//! result is reported on every row that shares them. Checks run concurrently, at most
//! [`MAX_CONCURRENT`] at a time, each bounded by its own timeout (plus a safety margin
//! in case a checker overran it). `checktype=off` rows are not checked; a check that
//! cannot be built (e.g. `service=oracle`) is reported down with the reason.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ldirectord_checks::{CheckSpec, Checker, Outcome};
use ldirectord_parsers::config::{CheckType, Config};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Checks in flight at once.
pub const MAX_CONCURRENT: usize = 256;
/// Added to a check's own timeout before the probe gives up on it.
const SAFETY_MARGIN: Duration = Duration::from_secs(2);

/// One real server of one virtual service, as probed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeRow {
    /// The virtual's id: `tcp:10.0.0.100:80`, `udp:[2001:db8::5]:53`, `fwm:5`.
    pub r#virtual: String,
    /// The real server: `10.0.0.1:80`, `[2001:db8::1]:80`.
    pub real: String,
    /// The check's label: `negotiate:http`, `connect`, `external:/x/check`.
    pub check: String,
    pub up: bool,
    /// Why, in the check's words (HTTP status line, `Connection refused`, …).
    pub reason: String,
    /// Wall time of the check, in milliseconds (0 when nothing ran).
    pub latency_ms: f64,
}

/// What a row is waiting for.
enum Pending {
    /// Index into the unique checks.
    Check(usize),
    /// Known without running anything.
    Done(Outcome),
}

/// Run one round of every configured check of `config`; rows in file order (virtuals,
/// then reals).
// `Receive` (inside `CheckSpec`) hashes and compares by its source text only; the compiled
// regex behind it never changes that.
#[allow(clippy::mutable_key_type)]
pub async fn run(config: &Config) -> Vec<ProbeRow> {
    let mut unique: Vec<(CheckSpec, Arc<dyn Checker>)> = Vec::new();
    let mut index: HashMap<CheckSpec, usize> = HashMap::new();
    let mut rows = Vec::new();
    // `checkpath=forwarding` checks go through the helper services of the running
    // director (same configuration, same marks); without one they find no helper.
    let routes = ldirectord_checks::route::check_routes(config);
    for (vs, routes) in config.virtuals.iter().zip(&routes) {
        for (real, route) in vs.reals.iter().zip(routes) {
            let mut spec = CheckSpec::for_real(vs, real);
            if let Some(route) = *route {
                spec = spec.through(route);
            }
            let pending = if spec.checktype == CheckType::Off {
                Pending::Done(Outcome::down("checktype=off: not checked", Duration::ZERO))
            } else if let Some(&i) = index.get(&spec) {
                Pending::Check(i)
            } else {
                match ldirectord_checks::build(&spec) {
                    Ok(Some(checker)) => {
                        unique.push((spec.clone(), checker));
                        index.insert(spec.clone(), unique.len() - 1);
                        Pending::Check(unique.len() - 1)
                    }
                    // Only `off` builds to nothing, and it was handled above.
                    Ok(None) => {
                        Pending::Done(Outcome::down("checktype=off: not checked", Duration::ZERO))
                    }
                    Err(e) => Pending::Done(Outcome::down(e.to_string(), Duration::ZERO)),
                }
            };
            let row = (
                vs.id(),
                SocketAddr::new(real.ip, real.port).to_string(),
                spec.label(),
                pending,
            );
            rows.push(row);
        }
    }

    let outcomes = run_all(unique).await;
    rows.into_iter()
        .map(|(virtual_id, real, check, pending)| {
            let out = match pending {
                Pending::Check(i) => outcomes[i].clone(),
                Pending::Done(out) => out,
            };
            ProbeRow {
                r#virtual: virtual_id,
                real,
                check,
                up: out.is_up(),
                reason: out.reason,
                latency_ms: out.latency.as_secs_f64() * 1000.0,
            }
        })
        .collect()
}

/// Run every check once, concurrently and bounded; outcomes by index.
async fn run_all(checks: Vec<(CheckSpec, Arc<dyn Checker>)>) -> Vec<Outcome> {
    let n = checks.len();
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut set = JoinSet::new();
    for (i, (spec, checker)) in checks.into_iter().enumerate() {
        let permits = permits.clone();
        let limit = budget(&spec);
        set.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let out = match tokio::time::timeout(limit, checker.check()).await {
                Ok(out) => out,
                Err(_) => Outcome::down(format!("no result within {}s", limit.as_secs()), limit),
            };
            (i, out)
        });
    }
    let mut outcomes = vec![Outcome::down("check did not run", Duration::ZERO); n];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, out)) => outcomes[i] = out,
            // A panicking checker is a bug; its rows keep "check did not run".
            Err(e) => tracing::error!("probe: a check task failed: {e}"),
        }
    }
    outcomes
}

/// The longest a check may legitimately take, plus a margin.
fn budget(spec: &CheckSpec) -> Duration {
    let per = spec.checktimeout.max(spec.negotiatetimeout);
    per * spec.checkcount.max(1) + SAFETY_MARGIN
}

/// The rows as an aligned table with a header; the reason column comes last and is not
/// padded.
pub fn render_table(rows: &[ProbeRow]) -> String {
    let header = ["VIRTUAL", "REAL", "CHECK", "STATUS", "LATENCY", "REASON"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.r#virtual.clone(),
                r.real.clone(),
                r.check.clone(),
                if r.up { "up" } else { "down" }.to_owned(),
                format!("{:.1}ms", r.latency_ms),
                r.reason.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: [&str; 6]| {
        let mut text = String::new();
        for (i, cell) in cols.iter().enumerate() {
            if i == cols.len() - 1 {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]].map(String::as_str));
    }
    out
}

/// The rows as a JSON array of objects with the keys `virtual`, `real`, `check`, `up`,
/// `reason`, `latency_ms`.
pub fn render_json(rows: &[ProbeRow]) -> String {
    serde_json::to_string_pretty(rows).expect("rows always serialize")
}
