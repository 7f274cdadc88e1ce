//! The running daemon's own view, as the control socket hands it out: the [`Snapshot`]
//! (`ldirectord status --json`, schema in `compat/status-schema.md`), its table for a
//! person (`status --verbose`, [`render_table`]), and the request protocol and client
//! ([`protocol`]).
//!
//! Plain serde types only: the daemon fills them ([`crate::daemon::observe`]), the
//! command line reads them back, and a metrics exporter may read the same snapshot.
//! Times are RFC 3339 texts in UTC; durations are numbers with their unit in the name.

use serde::{Deserialize, Serialize};

pub mod protocol;

/// The version of the [`Snapshot`] layout. Bumped when a field changes meaning or goes
/// away; new fields may appear within a version.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `status --json` prints while the daemon runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// `true` here; `status --json` prints `false` (and no daemon facts) when stopped.
    pub running: bool,
    pub daemon: DaemonFacts,
    pub virtuals: Vec<VirtualView>,
    /// The operators' drains in force, in the order they were made.
    pub drains: Vec<DrainView>,
}

/// Facts about the daemon process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonFacts {
    pub pid: u32,
    /// ldirectord-rs's version.
    pub version: String,
    /// `netlink`, `ipvsadm` or `userspace`.
    pub engine: String,
    /// `starting`, `running`, `reloading`, `stopping` (ldirectord's daemon states).
    pub state: String,
    pub config_path: String,
    /// MD5 (hex) of the configuration file as last read successfully.
    pub config_md5: String,
    pub started_at: String,
    pub uptime_seconds: u64,
    /// `None` until the first reload.
    pub last_reload: Option<ReloadView>,
    /// The daemon's effective capabilities (`CAP_NET_ADMIN`, …): after start-up as root,
    /// the few it keeps (DEVIATIONS L27); empty when not run as root. Absent from older
    /// daemons' answers.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// The last reload (HUP, autoreload or `reload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadView {
    pub at: String,
    /// `ok` or `error`.
    pub result: String,
    /// The parse error (stock's one-line form) when `result` is `error`.
    pub error: Option<String>,
}

/// One virtual service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualView {
    /// ldirectord's id: `tcp:10.0.0.100:80`, `udp:[2001:db8::1]:53`, `fwm:33`, `fwm6:33`.
    pub id: String,
    pub scheduler: String,
    /// Persistence timeout in seconds, `None` when not persistent.
    pub persistent: Option<u32>,
    /// Whether the service is in the table (as the daemon believes it).
    pub in_table: bool,
    /// Whether the fallback server is in the table now (no real serves).
    pub fallback_active: bool,
    pub fallback: Option<FallbackView>,
    pub reals: Vec<RealView>,
}

/// The fallback server of a virtual service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallbackView {
    pub server: String,
    pub forward: String,
    /// `fallback` while in the table, `standby` otherwise.
    pub state: String,
}

/// One real server of one virtual service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealView {
    /// `RIP:PORT` as configured.
    pub server: String,
    /// `gate`, `masq` or `ipip`.
    pub forward: String,
    /// The configured weight.
    pub weight: u32,
    /// The weight in the table, `None` when the real is not in it.
    pub table_weight: Option<u32>,
    /// See [`RealState`].
    pub state: RealState,
    /// The last check run, `None` before the first or for `checktype=on`/`off`.
    pub check: Option<CheckView>,
    /// Up/down transitions since the daemon started (carried over reloads).
    pub transitions: u32,
    pub last_transition_at: Option<String>,
    /// The operator's drain holding this real, if any.
    pub drain: Option<DrainView>,
}

/// What a real is doing, in the operator's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RealState {
    /// Healthy, in the table at its weight.
    Up,
    /// Failed, not in the table.
    Down,
    /// Failed, in the table at weight 0 (`quiescent=yes`).
    Quiesced,
    /// A `maintenancedir=` file names it: not checked, forced down.
    Maintenance,
    /// An operator drained it: at weight 0 whatever its checks say.
    Draining,
    /// No check has answered yet since it was configured.
    Unchecked,
}

impl RealState {
    pub fn as_str(self) -> &'static str {
        match self {
            RealState::Up => "up",
            RealState::Down => "down",
            RealState::Quiesced => "quiesced",
            RealState::Maintenance => "maintenance",
            RealState::Draining => "draining",
            RealState::Unchecked => "unchecked",
        }
    }
}

/// The last run of a real's check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckView {
    /// `up`, `down` or `maintenance`.
    pub verdict: String,
    pub reason: String,
    /// For `down`: `timeout`, `connect`, `tls`, `protocol`, `mismatch`, `auth`, `command`
    /// or `other`.
    pub failure_class: Option<String>,
    pub latency_ms: f64,
    pub checked_at: String,
    /// Consecutive down verdicts of this check (0 after an up).
    pub consecutive_failures: u32,
    /// Consecutive up verdicts of this check (0 after a down).
    pub consecutive_successes: u32,
}

/// An operator's drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainView {
    /// `RIP:PORT`, or `RIP` for every port.
    pub real: String,
    /// A virtual id, `None` for every virtual service.
    pub virtual_id: Option<String>,
    /// Who asked (the user name the control socket's peer runs as).
    pub by: String,
    pub since: String,
}

/// `status --verbose`: one line per real, grouped by virtual service.
pub fn render_table(s: &Snapshot) -> String {
    let d = &s.daemon;
    let mut out = format!(
        "ldirectord-rs {} pid {} engine {} state {} up {}s\nconfig {} (md5 {})\n",
        d.version, d.pid, d.engine, d.state, d.uptime_seconds, d.config_path, d.config_md5
    );
    if let Some(r) = &d.last_reload {
        out.push_str(&format!("last reload {} {}", r.at, r.result));
        if let Some(e) = &r.error {
            out.push_str(&format!(": {e}"));
        }
        out.push('\n');
    }
    let mut rows = vec![
        [
            "VIRTUAL",
            "REAL",
            "STATE",
            "WEIGHT",
            "TABLE",
            "LAST CHECK",
            "LATENCY",
            "CHANGES",
        ]
        .map(str::to_owned),
    ];
    for v in &s.virtuals {
        for r in &v.reals {
            let (check, latency) = match &r.check {
                Some(c) => {
                    let mut text = c.verdict.clone();
                    if !c.reason.is_empty() {
                        text.push_str(&format!(" ({})", one_line(&c.reason, 40)));
                    }
                    (text, format!("{:.1}ms", c.latency_ms))
                }
                None => ("-".to_owned(), "-".to_owned()),
            };
            let mut state = r.state.as_str().to_owned();
            if let Some(dr) = &r.drain {
                state.push_str(&format!(" by {} since {}", dr.by, dr.since));
            }
            rows.push([
                v.id.clone(),
                r.server.clone(),
                state,
                r.weight.to_string(),
                r.table_weight.map_or("-".to_owned(), |w| w.to_string()),
                check,
                latency,
                r.transitions.to_string(),
            ]);
        }
        if let Some(fb) = &v.fallback {
            rows.push([
                v.id.clone(),
                fb.server.clone(),
                fb.state.clone(),
                "1".to_owned(),
                if fb.state == "fallback" { "1" } else { "-" }.to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
            ]);
        }
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The first line of `text`, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            schema: SCHEMA_VERSION,
            running: true,
            daemon: DaemonFacts {
                pid: 42,
                version: "0.1.0".into(),
                engine: "userspace".into(),
                state: "running".into(),
                config_path: "/etc/ha.d/www.cf".into(),
                config_md5: "00".into(),
                started_at: "2026-12-05T10:00:00Z".into(),
                uptime_seconds: 7,
                last_reload: None,
                capabilities: vec!["CAP_NET_ADMIN".into()],
            },
            virtuals: vec![VirtualView {
                id: "tcp:10.0.0.100:80".into(),
                scheduler: "wrr".into(),
                persistent: None,
                in_table: true,
                fallback_active: false,
                fallback: None,
                reals: vec![RealView {
                    server: "10.0.0.1:80".into(),
                    forward: "masq".into(),
                    weight: 3,
                    table_weight: Some(0),
                    state: RealState::Draining,
                    check: Some(CheckView {
                        verdict: "up".into(),
                        reason: "HTTP/1.1 200 OK\nmore".into(),
                        failure_class: None,
                        latency_ms: 1.25,
                        checked_at: "2026-12-05T10:00:06Z".into(),
                        consecutive_failures: 0,
                        consecutive_successes: 2,
                    }),
                    transitions: 1,
                    last_transition_at: None,
                    drain: Some(DrainView {
                        real: "10.0.0.1:80".into(),
                        virtual_id: None,
                        by: "root".into(),
                        since: "2026-12-05T10:00:05Z".into(),
                    }),
                }],
            }],
            drains: Vec::new(),
        }
    }

    #[test]
    fn the_table_has_one_row_per_real() {
        let text = render_table(&snapshot());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[2].starts_with("VIRTUAL"), "{text}");
        assert_eq!(
            lines[3],
            "tcp:10.0.0.100:80  10.0.0.1:80  draining by root since 2026-12-05T10:00:05Z  3       0      up (HTTP/1.1 200 OK)  1.2ms    1"
        );
    }

    #[test]
    fn the_snapshot_reads_back_and_names_states_in_lowercase() {
        let s = snapshot();
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"state\":\"draining\""), "{text}");
        let back: Snapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
