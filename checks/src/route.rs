//! `checkpath=forwarding`: checks that travel the way IPVS sends clients' traffic.
//!
//! IPVS hooks LOCAL_OUT, so a connection the director itself opens is scheduled like a
//! client's. The director keeps, per (virtual, real) checked this way, a firewall-mark
//! service holding only that real (gate or ipip, built in `src/director/`); a check
//! socket carrying that mark (`SO_MARK`) to VIP:port is then delivered to the real's MAC
//! or inside an IPIP packet, exactly as clients' packets are. The reply comes from the
//! VIP, one of the director's own addresses, which the daemon makes acceptable with
//! `accept_local`.
//!
//! How the mark reaches the sockets: [`Forwarding`] runs the check's future inside a
//! task-local scope holding the mark, and every socket this crate opens ([`tcp`],
//! [`udp`]) sets it when the scope is there. That is the least invasive way to cover
//! every check kind that opens its sockets through these helpers, without threading a
//! parameter through each of them. A client library that opens its own socket (mysql's)
//! talks to a loopback relay whose upstream socket is opened here (`relay`). A check
//! that sends nothing of its own over TCP or UDP (ping, external) cannot carry the mark;
//! [`CheckSpec::forwardable`] says which, and those are checked on the direct path
//! ([`DirectOnly`] says so in a down reason).
//!
//! When the forwarding path fails, the direct path is tried once (only then, so a healthy
//! real costs one check): if it answers, the reason is [`DIRECT_ANSWERS`], the
//! misconfiguration the forwarding path exists to catch (the VIP missing on the real's
//! `lo` or `tunl0`).

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ldirectord_parsers::config::{
    CHECK_MARK_COUNT, CheckPath, Config, Forward, RealServer, VirtualAddress,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::check::{BoxFuture, Checker, Outcome};
use crate::spec::CheckRoute;

/// The down reason when the forwarding path fails and the direct path answers.
pub const DIRECT_ANSWERS: &str = "no answer through the forwarding path; direct path answers";

/// What the sockets of a check through the forwarding path need.
#[derive(Debug, Clone, Copy)]
struct Marked {
    mark: u32,
    /// The real's own address: the socket's source is the director's address towards it.
    real: IpAddr,
}

tokio::task_local! {
    /// Set while a check runs through the forwarding path.
    static MARKED: Marked;
}

/// The mark sockets opened now must carry, if any.
fn current_mark() -> Option<u32> {
    MARKED.try_with(|m| m.mark).ok()
}

/// The real server a check through the forwarding path is for (its spec addresses the
/// VIP), for checks that need the real's own address: `None` on the direct path.
pub(crate) fn current_real() -> Option<IpAddr> {
    MARKED.try_with(|m| m.real).ok()
}

/// A socket of `addr`'s family and `kind`, with the check's mark when there is one.
fn socket(addr: SocketAddr, kind: Type, proto: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(proto))?;
    if let Ok(marked) = MARKED.try_with(|m| *m) {
        // Needs CAP_NET_ADMIN, which the director has (it manages IPVS).
        socket.set_mark(marked.mark)?;
        // Left to itself the kernel picks the VIP (a local address) as the source of a
        // connection to the VIP, and the real, holding the VIP too, drops a packet from
        // its own address. The director's address towards the real is what a client's
        // packet would carry instead.
        socket.bind(&SocketAddr::new(source_towards(marked.real)?, 0).into())?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The source address the routing table gives for packets to `ip` (a UDP connect is a
/// route lookup; nothing is sent).
fn source_towards(ip: IpAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = match ip {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect((ip, 9))?;
    Ok(probe.local_addr()?.ip())
}

/// A TCP connection to `addr` (carrying the check's mark, if any).
pub(crate) async fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    if current_mark().is_none() {
        return TcpStream::connect(addr).await;
    }
    let socket = socket(addr, Type::STREAM, Protocol::TCP)?;
    TcpSocket::from_std_stream(std::net::TcpStream::from(socket))
        .connect(addr)
        .await
}

/// A UDP socket on the wildcard address of `addr`'s family, connected to `addr`
/// (carrying the check's mark, if any).
pub(crate) async fn udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = socket(addr, Type::DGRAM, Protocol::UDP)?;
    if current_mark().is_none() {
        socket.bind(&local.into())?;
    }
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
    socket.connect(addr).await?;
    Ok(socket)
}

/// A check through the forwarding path: `via` (the same check sent to VIP:port) runs with
/// the route's mark on its sockets; when it fails, `direct` (the check of the real's own
/// address) runs once to tell a broken forwarding path from a dead real.
#[derive(Debug)]
pub struct Forwarding {
    mark: u32,
    real: IpAddr,
    via: Arc<dyn Checker>,
    direct: Arc<dyn Checker>,
}

impl Forwarding {
    /// `via` through mark `mark` to the real `real`, `direct` on its own address.
    pub fn new(
        mark: u32,
        real: IpAddr,
        via: Arc<dyn Checker>,
        direct: Arc<dyn Checker>,
    ) -> Forwarding {
        Forwarding {
            mark,
            real,
            via,
            direct,
        }
    }
}

impl Checker for Forwarding {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let marked = Marked {
                mark: self.mark,
                real: self.real,
            };
            let through = MARKED.scope(marked, self.via.check()).await;
            if through.is_up() || through.verdict == crate::Verdict::Maintenance {
                return through;
            }
            let direct = self.direct.check().await;
            if direct.is_up() {
                let mut out = through;
                out.reason = DIRECT_ANSWERS.to_owned();
                out.latency += direct.latency;
                out
            } else {
                // Both paths fail: the real itself is down; say so in the direct path's
                // words, which are the ones stock would give.
                let mut out = direct;
                out.latency += through.latency;
                out
            }
        })
    }
}

/// A check that `checkpath=forwarding` cannot route (ping, external): it runs on the
/// direct path and says so when it fails.
#[derive(Debug)]
pub struct DirectOnly {
    inner: Arc<dyn Checker>,
}

impl DirectOnly {
    pub fn new(inner: Arc<dyn Checker>) -> DirectOnly {
        DirectOnly { inner }
    }
}

/// Appended to a down reason of a check that stayed on the direct path.
pub const DIRECT_ONLY: &str = " (direct path: this check cannot go through the forwarding path)";

impl Checker for DirectOnly {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let mut out = self.inner.check().await;
            if out.verdict == crate::Verdict::Down {
                out.reason.push_str(DIRECT_ONLY);
            }
            out
        })
    }
}

/// The firewall marks of `checkpath=forwarding`: each (virtual, real) gets the mark its
/// identity hashes to (FNV-1a of the virtual id and `RIP:PORT`) within `checkmarkbase` ..
/// `checkmarkbase + CHECK_MARK_COUNT`, the next free one on a collision, so a reload that
/// adds or removes other reals keeps a real's mark, its check identity and its health.
/// The forwarding-path route of every configured (virtual, real), indexed like
/// `config.virtuals[v].reals[r]`; `None`: checked on the direct path (`checkpath=direct`,
/// a `masq` real, or a fwmark virtual, which has no single address to check).
pub fn check_routes(config: &Config) -> Vec<Vec<Option<CheckRoute>>> {
    let base = config.globals.checkmarkbase;
    let mut taken: HashSet<u32> = HashSet::new();
    config
        .virtuals
        .iter()
        .map(|vs| {
            // IPv4 and IPv6 alike: IPVS schedules a marked local socket of either family
            // through a helper of the same family.
            let vip = match (vs.checkpath, vs.address) {
                (CheckPath::Forwarding, VirtualAddress::Inet { ip, .. }) => Some(ip),
                _ => None,
            };
            let id = vs.id();
            vs.reals
                .iter()
                .map(|real| {
                    let vip =
                        vip.filter(|_| matches!(real.forward, Forward::Gate | Forward::Ipip))?;
                    let mark = free_mark(base, &mut taken, &id, real)?;
                    Some(CheckRoute { vip, mark })
                })
                .collect()
        })
        .collect()
}

/// The mark `real` of virtual `id` hashes to, or the next free one; `None` when the
/// whole range is taken (the real is then checked on the direct path).
fn free_mark(base: u32, taken: &mut HashSet<u32>, id: &str, real: &RealServer) -> Option<u32> {
    let start = fnv1a(format!("{id} {}", SocketAddr::new(real.ip, real.port)).as_bytes())
        % CHECK_MARK_COUNT;
    (0..CHECK_MARK_COUNT)
        .map(|i| base + (start + i) % CHECK_MARK_COUNT)
        .find(|&mark| taken.insert(mark))
}

/// 32-bit FNV-1a: stable across runs and builds (std's hasher is seeded per process).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug)]
    struct Fixed(bool, &'static str);

    impl Checker for Fixed {
        fn check(&self) -> BoxFuture<'_, Outcome> {
            Box::pin(async move {
                if self.0 {
                    Outcome::up(self.1, Duration::from_millis(1))
                } else {
                    Outcome::down(self.1, Duration::from_millis(1))
                }
            })
        }
    }

    /// Reports whether it ran inside the forwarding scope, and with which mark.
    #[derive(Debug)]
    struct SeesMark;

    impl Checker for SeesMark {
        fn check(&self) -> BoxFuture<'_, Outcome> {
            Box::pin(async move {
                match current_mark() {
                    Some(m) => Outcome::up(format!("mark {m:#x}"), Duration::ZERO),
                    None => Outcome::down("no mark", Duration::ZERO),
                }
            })
        }
    }

    fn fixed(up: bool, why: &'static str) -> Arc<dyn Checker> {
        Arc::new(Fixed(up, why))
    }

    #[tokio::test]
    async fn the_reason_says_which_path_failed() {
        let cases = [
            (true, true, true, "200 OK"),
            (true, false, true, "200 OK"),
            (false, true, false, DIRECT_ANSWERS),
            (false, false, false, "refused on RIP"),
        ];
        for (via, direct, up, reason) in cases {
            let f = Forwarding::new(
                7,
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                fixed(via, if via { "200 OK" } else { "timed out after 5s" }),
                fixed(direct, if direct { "200 OK" } else { "refused on RIP" }),
            );
            let out = f.check().await;
            assert_eq!(
                (out.is_up(), out.reason.as_str()),
                (up, reason),
                "{via} {direct}"
            );
        }
    }

    #[tokio::test]
    async fn only_the_forwarding_run_carries_the_mark() {
        let real = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let f = Forwarding::new(0x6c64_0001, real, Arc::new(SeesMark), Arc::new(SeesMark));
        assert_eq!(f.check().await.reason, "mark 0x6c640001");
        assert_eq!(SeesMark.check().await.reason, "no mark");
        let d = DirectOnly::new(Arc::new(SeesMark));
        assert_eq!(d.check().await.reason, format!("no mark{DIRECT_ONLY}"));
    }

    #[tokio::test]
    async fn unmarked_sockets_work_without_privileges() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(tcp(addr).await.is_ok());
        assert!(udp(addr).await.is_ok());
    }

    #[test]
    fn the_source_towards_a_real_is_a_local_address() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(source_towards(lo).unwrap(), lo);
    }
}
