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
//! parameter through each of them. A check whose client library opens its own socket
//! cannot carry the mark; [`CheckSpec::forwardable`] says which, and those are checked
//! on the direct path ([`DirectOnly`] says so in a down reason).
//!
//! When the forwarding path fails, the direct path is tried once (only then, so a healthy
//! real costs one check): if it answers, the reason is [`DIRECT_ANSWERS`], the
//! misconfiguration the forwarding path exists to catch (the VIP missing on the real's
//! `lo` or `tunl0`).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::check::{BoxFuture, Checker, Outcome};

/// The down reason when the forwarding path fails and the direct path answers.
pub const DIRECT_ANSWERS: &str = "no answer through the forwarding path; direct path answers";

tokio::task_local! {
    /// The firewall mark of the check running in this task, if it goes through the
    /// forwarding path.
    static MARK: u32;
}

/// The mark sockets opened now must carry, if any.
fn current_mark() -> Option<u32> {
    MARK.try_with(|m| *m).ok()
}

/// A socket of `addr`'s family and `kind`, with the check's mark when there is one.
fn socket(addr: SocketAddr, kind: Type, proto: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(proto))?;
    if let Some(mark) = current_mark() {
        // Needs CAP_NET_ADMIN, which the director has (it manages IPVS).
        socket.set_mark(mark)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
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
    socket.bind(&local.into())?;
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
    via: Arc<dyn Checker>,
    direct: Arc<dyn Checker>,
}

impl Forwarding {
    pub fn new(mark: u32, via: Arc<dyn Checker>, direct: Arc<dyn Checker>) -> Forwarding {
        Forwarding { mark, via, direct }
    }
}

impl Checker for Forwarding {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let through = MARK.scope(self.mark, self.via.check()).await;
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

/// A check that `checkpath=forwarding` cannot route (ping, external, library-owned
/// sockets): it runs on the direct path and says so when it fails.
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
        let f = Forwarding::new(0x6c64_0001, Arc::new(SeesMark), Arc::new(SeesMark));
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
}
