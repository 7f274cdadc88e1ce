//! The words the director says: stock ldirectord's exact log texts (§4.9 of the reference),
//! the monitorfile line (§4.10, without the `[CTIME] [PID] ` prefix the shell adds) and the
//! maintenance file names (§3.8). Operators grep for these strings, so they are kept
//! byte for byte.

use std::net::SocketAddr;

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::{CheckType, Forward, Protocol, ip_text};

/// The kind of server a log line is about: ldirectord logs reals and fallbacks alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Real,
    Fallback,
}

impl Tag {
    fn as_str(self) -> &'static str {
        match self {
            Tag::Real => "real server",
            Tag::Fallback => "fallback server",
        }
    }
}

pub fn added(tag: Tag, real: &str, virt: &str, weight: u32) -> String {
    format!(
        "Added {}: {real} ({virt}) (Weight set to {weight})",
        tag.as_str()
    )
}

pub fn restored(tag: Tag, real: &str, virt: &str, weight: u32) -> String {
    format!(
        "Restored {}: {real} ({virt}) (Weight set to {weight})",
        tag.as_str()
    )
}

pub fn deleted(tag: Tag, real: &str, virt: &str) -> String {
    format!("Deleted {}: {real} ({virt})", tag.as_str())
}

pub fn quiescent(tag: Tag, real: &str, virt: &str) -> String {
    format!(
        "Quiescent {}: {real} ({virt}) (Weight set to 0)",
        tag.as_str()
    )
}

pub fn readd_quiescent(tag: Tag, real: &str, virt: &str) -> String {
    format!(
        "Readd Quiescent {}: {real} ({virt}) (Weight set to 0)",
        tag.as_str()
    )
}

/// Extension (`ldirectord drain`): no stock line exists for an operator's drain.
pub fn drained(real: &str, virt: &str) -> String {
    format!("Drained real server: {real} ({virt}) (Weight set to 0)")
}

/// Extension (`ldirectord ready`): the drain is lifted; what the checks say applies again.
pub fn undrained(real: &str, virt: &str) -> String {
    format!("Ready real server: {real} ({virt})")
}

pub fn soft_failure(real: &str, virtual_id: &str, count: u32, of: u32) -> String {
    format!("Soft failure real server: {real} ({virtual_id}) failure {count}/{of}")
}

pub fn reset_failures(real: &str, virtual_id: &str) -> String {
    format!("Resetting soft failure count: {real} ({virtual_id})")
}

pub fn purged_real(phase: Phase, real: &str, virt: &str) -> String {
    format!("Purged real server ({}): {real} ({virt})", phase.as_str())
}

pub fn purged_virtual(phase: Phase, virt: &str) -> String {
    format!("Purged virtual server ({}): {virt}", phase.as_str())
}

pub fn added_virtual(virt: &str) -> String {
    format!("Added virtual server: {virt}")
}

pub fn changed_virtual(virt: &str) -> String {
    format!("Changed virtual server: {virt}")
}

pub fn inaccessible(real: &str, virt: &str) -> String {
    format!("Inaccessible real server: {real} ({virt})")
}

/// ldirectord-rs only: a real listed twice in one virtual (stock's second `-a` fails).
pub fn duplicate_real(real: &str, virt: &str) -> String {
    format!("Ignoring duplicate real server: {real} ({virt})")
}

/// `(start)` for start-up and reload, `(stop)` for shutdown, as stock words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Start,
    Stop,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Stop => "stop",
        }
    }
}

/// ldirectord's real-server identity for one (virtual, real): check kind, protocol, RIP,
/// RPORT, virtualhost, checkport, weight, forwarding, request, receive, joined by `:`, then
/// every run of `:` replaced by one space and backslashes removed (which is how it appears
/// in the monitorfile; IPv6 addresses get their colons collapsed too, as in stock).
pub fn monitor_identity(
    spec: &CheckSpec,
    checkport: Option<u16>,
    weight: u32,
    forward: Forward,
) -> String {
    let kind = match spec.checktype {
        CheckType::Negotiate => format!("negotiate:{}", spec.service),
        CheckType::Combined(_) => format!("combined:{}", spec.service),
        CheckType::External | CheckType::ExternalPerl => {
            format!("{}:{}", spec.checktype.name(), spec.checkcommand)
        }
        other => other.name().to_owned(),
    };
    let joined = [
        kind,
        spec.protocol.as_str().to_owned(),
        ip_text(spec.ip),
        spec.real_port.to_string(),
        spec.virtualhost.clone().unwrap_or_default(),
        checkport.map(|p| p.to_string()).unwrap_or_default(),
        weight.to_string(),
        forward.as_str().to_owned(),
        spec.request.clone(),
        spec.receive
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
    ]
    .join(":");
    let mut out = String::with_capacity(joined.len());
    let mut in_colons = false;
    for c in joined.chars() {
        match c {
            ':' if in_colons => {}
            ':' => {
                in_colons = true;
                out.push(' ');
            }
            // Removed before collapsing, so `:\:` is one run.
            '\\' => {}
            c => {
                in_colons = false;
                out.push(c);
            }
        }
    }
    out
}

/// One monitorfile line without the `[CTIME] [PID] ` prefix.
pub fn monitor_line(identity: &str, up: bool, message: &str) -> String {
    let state = if up { "up" } else { "down" };
    format!("{identity} [{state}] {}", escape_message(message))
}

/// `-` for no message; `%`, `|`, CR and LF escaped so one result stays one line.
pub fn escape_message(message: &str) -> String {
    if message.is_empty() {
        return "-".to_owned();
    }
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '%' => out.push_str("%25"),
            '|' => out.push_str("%7c"),
            '\r' => out.push_str("%0d"),
            '\n' => out.push_str("%0a"),
            c => out.push(c),
        }
    }
    out
}

/// Whether stock writes a monitorfile line for this result: every check kind that logs
/// (negotiate, connect, external, combined), never `external-perl` or `on`, and ping (also
/// `connect` on a UDP virtual, which stock runs as a ping) only when up.
pub fn monitor_logs(spec: &CheckSpec, up: bool) -> bool {
    match spec.checktype {
        CheckType::ExternalPerl | CheckType::On | CheckType::Off => false,
        CheckType::Ping => up,
        CheckType::Connect if spec.protocol == Protocol::Udp => up,
        _ => true,
    }
}

/// The monitorfile message for a maintenance hit.
pub const IN_MAINTENANCE: &str = "Server in maintenance";

/// The names in `maintenancedir` that put this check's real in maintenance, without the
/// reverse-DNS forms (§3.8): `RIP:RPORT` and `RIP` (IPv6 bracketed). The shell tests them
/// before each check and reports [`crate::director::CheckResult::Maintenance`] on a hit.
pub fn maintenance_names(spec: &CheckSpec) -> [String; 2] {
    [
        SocketAddr::new(spec.ip, spec.real_port).to_string(),
        ip_text(spec.ip),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let cases = [
            ("", "-"),
            ("-", "-"),
            ("200 OK", "200 OK"),
            ("a|b%c\r\nd", "a%7cb%25c%0d%0ad"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape_message(raw), want);
        }
    }

    #[test]
    fn texts() {
        let cases = [
            (
                added(Tag::Real, "10.0.0.1:80", "10.0.0.100:80", 1),
                "Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
            ),
            (
                restored(Tag::Fallback, "127.0.0.1:80", "10.0.0.100:80", 1),
                "Restored fallback server: 127.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
            ),
            (
                deleted(Tag::Real, "10.0.0.1:80", "5"),
                "Deleted real server: 10.0.0.1:80 (5)",
            ),
            (
                quiescent(Tag::Real, "[2001:db8::1]:80", "[2001:db8::5]:80"),
                "Quiescent real server: [2001:db8::1]:80 ([2001:db8::5]:80) (Weight set to 0)",
            ),
            (
                readd_quiescent(Tag::Real, "10.0.0.1:80", "10.0.0.100:80"),
                "Readd Quiescent real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 0)",
            ),
            (
                soft_failure("10.0.0.1:80", "tcp:10.0.0.100:80", 1, 3),
                "Soft failure real server: 10.0.0.1:80 (tcp:10.0.0.100:80) failure 1/3",
            ),
            (
                reset_failures("10.0.0.1:80", "tcp:10.0.0.100:80"),
                "Resetting soft failure count: 10.0.0.1:80 (tcp:10.0.0.100:80)",
            ),
            (
                purged_real(Phase::Start, "10.0.0.9:80", "10.0.0.100:80"),
                "Purged real server (start): 10.0.0.9:80 (10.0.0.100:80)",
            ),
            (
                purged_virtual(Phase::Stop, "10.0.0.100:80"),
                "Purged virtual server (stop): 10.0.0.100:80",
            ),
            (
                added_virtual("10.0.0.100:80"),
                "Added virtual server: 10.0.0.100:80",
            ),
            (changed_virtual("7"), "Changed virtual server: 7"),
            (
                inaccessible("10.0.0.1:80", "10.0.0.100:80"),
                "Inaccessible real server: 10.0.0.1:80 (10.0.0.100:80)",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
