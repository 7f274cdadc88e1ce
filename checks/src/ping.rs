//! `checktype=ping`, and `checktype=connect` on UDP virtuals (the registry routes that
//! here, as stock does): ICMP echo to the real server, without a subprocess.
//!
//! Up to `checkcount` echo requests are sent one after the other, each waiting at most
//! `checktimeout` for its reply; the first echo reply makes the real up. IPv4 and IPv6.
//!
//! One ICMP socket per address family is shared by every ping checker of a runtime
//! (surge-ping matches replies to requests by address, identifier and sequence): with raw
//! sockets each socket receives a copy of *every* ICMP packet, so a socket per real would
//! cost N² packet copies. surge-ping opens a `SOCK_DGRAM` ICMP socket when
//! `net.ipv4.ping_group_range` allows it and falls back to `SOCK_RAW` (root or
//! CAP_NET_RAW), like stock's `Net::Ping->new("icmp")`.
//!
//! Defaults: `checkcount` 1, `checktimeout` 5 s per attempt (§2.8). Reasons: `-` when up;
//! `timed out after 5s` (with `(3 attempts)` when `checkcount` > 1), an ICMP error
//! (`Destination unreachable (code 1)`), the socket error (`Network is unreachable`) or
//! `cannot open ICMP socket: …` when down.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};
use tokio::runtime::{Handle, Id};
use tokio::sync::oneshot;

use crate::check::{BoxFuture, BuildError, Checker, Failure, FailureClass, Outcome};
use crate::proto::io_reason;
use crate::spec::CheckSpec;

/// 56 bytes of payload, as ping(8) sends by default.
const PAYLOAD: [u8; 56] = [0; 56];

/// The ping checker for `spec`: the real's IP, `checkcount` attempts of `checktimeout`.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    Ok(Arc::new(Ping::new(
        spec.ip,
        spec.checkcount,
        spec.checktimeout,
    )))
}

/// ICMP echo to one address.
#[derive(Debug, Clone)]
pub struct Ping {
    ip: IpAddr,
    /// Attempts, at least 1.
    count: u32,
    /// Per attempt.
    timeout: Duration,
}

impl Ping {
    /// `count` attempts (0 is taken as 1), each waiting up to `timeout` for a reply.
    pub fn new(ip: IpAddr, count: u32, timeout: Duration) -> Ping {
        Ping {
            ip,
            count: count.max(1),
            timeout,
        }
    }

    async fn attempt(&self, client: &Client) -> Result<(), Failure> {
        // Distinct sequence numbers keep concurrent pings of one address (several
        // checkers sharing a real) from colliding in surge-ping's reply table.
        static SEQ: AtomicU16 = AtomicU16::new(0);
        let seq = PingSequence(SEQ.fetch_add(1, Ordering::Relaxed));
        let mut pinger = client.pinger(self.ip, PingIdentifier(rand::random())).await;
        // Our own timeout bounds the attempt; surge-ping's is set above it so it never
        // answers first.
        pinger.timeout(self.timeout + Duration::from_secs(1));
        match tokio::time::timeout(self.timeout, pinger.ping(seq, &PAYLOAD)).await {
            Err(_) => Err(Failure::new(
                FailureClass::Timeout,
                timeout_reason(self.timeout, self.count),
            )),
            Ok(Err(e)) => Err(surge_failure(&e, self.timeout, self.count)),
            Ok(Ok((packet, _))) => match packet {
                IcmpPacket::V4(p) => match p.get_icmp_type().0 {
                    0 => Ok(()),
                    3 => Err(Failure::connect(format!(
                        "Destination unreachable (code {})",
                        p.get_icmp_code().0
                    ))),
                    11 => Err(Failure::connect("Time exceeded")),
                    t => Err(Failure::protocol(format!("unexpected ICMP type {t}"))),
                },
                IcmpPacket::V6(p) => match p.get_icmpv6_type().0 {
                    129 => Ok(()),
                    1 => Err(Failure::connect(format!(
                        "Destination unreachable (code {})",
                        p.get_icmpv6_code().0
                    ))),
                    3 => Err(Failure::connect("Time exceeded")),
                    t => Err(Failure::protocol(format!("unexpected ICMPv6 type {t}"))),
                },
            },
        }
    }
}

impl Checker for Ping {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let start = tokio::time::Instant::now();
            let client = match shared_client(self.ip) {
                Ok(c) => c,
                Err(e) => {
                    return Outcome::down(
                        format!("cannot open ICMP socket: {}", io_reason(&e)),
                        start.elapsed(),
                    );
                }
            };
            let mut last = Failure::other(String::new());
            for _ in 0..self.count {
                match self.attempt(&client).await {
                    Ok(()) => return Outcome::up("-", start.elapsed()),
                    Err(failure) => last = failure,
                }
            }
            Outcome::failed(last, start.elapsed())
        })
    }
}

fn timeout_reason(timeout: Duration, count: u32) -> String {
    let secs = if timeout.subsec_millis() == 0 {
        format!("{}s", timeout.as_secs())
    } else {
        format!("{}ms", timeout.as_millis())
    };
    if count > 1 {
        format!("timed out after {secs} ({count} attempts)")
    } else {
        format!("timed out after {secs}")
    }
}

fn surge_failure(e: &SurgeError, timeout: Duration, count: u32) -> Failure {
    match e {
        SurgeError::Timeout { .. } => {
            Failure::new(FailureClass::Timeout, timeout_reason(timeout, count))
        }
        SurgeError::IOError(io) => Failure::connect(io_reason(io)),
        other => Failure::other(other.to_string()),
    }
}

/// A shared ICMP client of one runtime and family. The client's receive task lives on
/// the runtime that created it; `alive` closes when that runtime shuts down, so a
/// client is never handed to a runtime where nobody reads its socket.
struct Shared {
    client: Client,
    alive: oneshot::Sender<()>,
}

/// The ICMP client for `ip`'s family on the current runtime, created on first use.
fn shared_client(ip: IpAddr) -> std::io::Result<Client> {
    static CLIENTS: Mutex<Option<HashMap<(Id, bool), Shared>>> = Mutex::new(None);
    let handle = Handle::current();
    let key = (handle.id(), ip.is_ipv6());
    let mut guard = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    let clients = guard.get_or_insert_with(HashMap::new);
    // Forget clients of runtimes that are gone (tests run many runtimes).
    clients.retain(|_, s| !s.alive.is_closed());
    if let Some(s) = clients.get(&key) {
        return Ok(s.client.clone());
    }
    let config = if ip.is_ipv6() {
        Config::builder().kind(ICMP::V6).build()
    } else {
        Config::default()
    };
    let client = Client::new(&config)?;
    let (alive, watch) = oneshot::channel::<()>();
    // Holds the receiver until the runtime drops the task at shutdown.
    handle.spawn(async move {
        let _watch = watch;
        std::future::pending::<()>().await
    });
    clients.insert(
        key,
        Shared {
            client: client.clone(),
            alive,
        },
    );
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_reasons() {
        assert_eq!(
            timeout_reason(Duration::from_secs(5), 1),
            "timed out after 5s"
        );
        assert_eq!(
            timeout_reason(Duration::from_millis(1500), 3),
            "timed out after 1500ms (3 attempts)"
        );
    }

    #[test]
    fn zero_count_means_one_attempt() {
        assert_eq!(
            Ping::new("127.0.0.1".parse().unwrap(), 0, Duration::from_secs(1)).count,
            1
        );
    }
}
