//! A loopback TCP relay for a client library that opens its own socket (mysql_async), so
//! its check can still go through the forwarding path (`checkpath=forwarding`).
//!
//! Per check: the upstream connection is opened first with [`route::tcp`], inside the
//! check's forwarding scope, so it carries the mark and the source towards the real like
//! every other check socket; then a listener on `127.0.0.1:0` takes the library's
//! connection and [`copy_bidirectional`] joins the two. The library speaks TCP to a
//! loopback address, so it behaves exactly as on a network connection (mysql_async only
//! treats a Unix socket or TLS as safe for a `caching_sha2_password` password in clear;
//! over TCP it encrypts the password with the server's RSA key: `Conn::is_socket` is a
//! matter of the stream's type, not of the address).
//!
//! A loopback port is open to every local process, which could connect first and take
//! the check's place (failing it, or feeding it a fake server). So the relay only serves
//! a connection whose other end is a socket of this process: the peer's port gives its
//! socket in this network namespace's TCP table (`/proc/thread-self/net/tcp`, local
//! address = the peer, remote = the listener), and that socket's inode must be among this
//! process's file descriptors (`/proc/self/fd/N -> socket:[INODE]`). Any other connection
//! is closed at once and the relay keeps waiting, bounded by the check's timeout like the
//! rest of the check. An IPv6 socket reaching the IPv4 listener (as `::ffff:127.0.0.1`) is
//! listed in `tcp6`, not looked at, and so never served: the lookup fails closed.
//!
//! Hand-written rather than the `procfs` crate: two fields of one table, and it must be
//! the calling thread's namespace (`procfs`'s readers take the process's).

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

use crate::route;

/// How long the relay keeps passing bytes after the client is done (its goodbye, e.g.
/// mysql's COM_QUIT, and the server's close), in a task of its own so the check's result
/// does not wait for it.
const GOODBYE: Duration = Duration::from_secs(2);

/// Why a relay could not serve its client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    /// The connection to the real through the forwarding path failed (refused,
    /// unreachable): the check's own failure, worded as a direct connect's would be.
    #[error("{0}")]
    Upstream(#[source] io::Error),
    /// The relay itself failed (no loopback listener, `/proc` unreadable).
    #[error("relay for the forwarding path: {0}")]
    Local(#[source] io::Error),
}

/// A relay to one upstream connection; [`Relay::run`] serves one client through it.
#[derive(Debug)]
pub(crate) struct Relay {
    listener: TcpListener,
    upstream: TcpStream,
}

impl Relay {
    /// Connect to `upstream` (through the forwarding path when the caller runs in its
    /// scope) and listen on a fresh loopback port.
    pub(crate) async fn open(upstream: SocketAddr) -> Result<Relay, RelayError> {
        let upstream = route::tcp(upstream).await.map_err(RelayError::Upstream)?;
        let _ = upstream.set_nodelay(true);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(RelayError::Local)?;
        Ok(Relay { listener, upstream })
    }

    /// Where the client must connect.
    pub(crate) fn addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Run `client`, which connects to [`Relay::addr`] once, relaying its connection to
    /// the upstream. The client's result, or the relay's error when the relay fails
    /// before the client is done. A connection that ends mid-way (either side closing or
    /// resetting) is not an error here: the client sees it and says so in its words.
    pub(crate) async fn run<F: Future>(self, client: F) -> Result<F::Output, RelayError> {
        let Relay {
            listener,
            mut upstream,
        } = self;
        let mut relay = Box::pin(async move {
            let mut ours = accept_own(&listener).await?;
            // One client per check: nobody else gets in once it is there.
            drop(listener);
            let _ = ours.set_nodelay(true);
            let _ = copy_bidirectional(&mut ours, &mut upstream).await;
            Ok::<(), RelayError>(())
        });
        tokio::pin!(client);
        let mut relayed = false;
        let out = loop {
            tokio::select! {
                out = &mut client => break out,
                done = &mut relay, if !relayed => {
                    done?;
                    relayed = true;
                }
            }
        };
        if !relayed {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(GOODBYE, relay).await;
            });
        }
        Ok(out)
    }
}

/// The first connection to `listener` that comes from a socket of this process; every
/// other one is closed as it comes.
async fn accept_own(listener: &TcpListener) -> Result<TcpStream, RelayError> {
    let at = listener.local_addr().map_err(RelayError::Local)?;
    loop {
        let (stream, peer) = listener.accept().await.map_err(RelayError::Local)?;
        if is_ours(peer, at).map_err(RelayError::Local)? {
            return Ok(stream);
        }
        tracing::warn!(
            "closed a connection from {peer} to the check relay at {at}: not from ldirectord"
        );
    }
}

/// Whether the TCP connection from `peer` to `listener` is a socket of this process.
fn is_ours(peer: SocketAddr, listener: SocketAddr) -> io::Result<bool> {
    let (SocketAddr::V4(peer), SocketAddr::V4(listener)) = (peer, listener) else {
        return Ok(false);
    };
    let table = std::fs::read_to_string("/proc/thread-self/net/tcp")?;
    let Some(inode) = socket_inode(&table, peer, listener) else {
        return Ok(false);
    };
    let link = format!("socket:[{inode}]");
    for fd in std::fs::read_dir("/proc/self/fd")? {
        // A descriptor closed while we look is simply not the one.
        if let Ok(target) = std::fs::read_link(fd?.path())
            && target.as_os_str() == link.as_str()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The inode of the socket listed in `table` (`/proc/net/tcp` text) with local address
/// `local` and remote address `remote`. Addresses are listed as the hex of the 32-bit
/// network-order value read in host order, ports as plain hex: `0100007F:1F90` is
/// 127.0.0.1:8080 on a little-endian machine. Inode 0 (a socket being torn down, or
/// TIME_WAIT) belongs to nobody.
fn socket_inode(table: &str, local: SocketAddrV4, remote: SocketAddrV4) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (l, r, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        if parse_addr(l)? != local || parse_addr(r)? != remote {
            return None;
        }
        inode.parse().ok().filter(|&i| i != 0)
    })
}

/// `0100007F:1F90` as a socket address (see [`socket_inode`]).
fn parse_addr(text: &str) -> Option<SocketAddrV4> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    #[test]
    fn the_table_gives_the_inode_of_the_exact_connection() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:9C40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0\n\
           1: 0100007F:9C40 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 20 4 30 10 -1\n\
           2: 0100007F:D431 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 20 4 30 10 -1\n\
           3: 0100007F:D432 0100007F:9C40 06 00000000:00000000 03:00000A3B 00000000     0        0 0 3 0\n";
        let relay = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0x9c40);
        let peer = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0xd431);
        if cfg!(target_endian = "little") {
            // The client's end, not the relay's accepted end (2222) or the listener.
            assert_eq!(socket_inode(table, peer, relay), Some(3333));
            // TIME_WAIT: inode 0, nobody's.
            let gone = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0xd432);
            assert_eq!(socket_inode(table, gone, relay), None);
        }
        let other = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
        assert_eq!(socket_inode(table, other, relay), None);
        assert_eq!(socket_inode("", peer, relay), None);
    }

    /// A server that greets each connection with `hello`, then echoes one line.
    async fn greeter() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    s.write_all(b"hello\n").await.unwrap();
                    let mut line = String::new();
                    let mut r = BufReader::new(&mut s);
                    r.read_line(&mut line).await.unwrap();
                    s.write_all(line.as_bytes()).await.unwrap();
                });
            }
        });
        addr
    }

    /// What our own client reads through the relay: the greeting and its echoed line.
    async fn exchange(relay: SocketAddr) -> String {
        let mut s = TcpStream::connect(relay).await.unwrap();
        s.write_all(b"ping\n").await.unwrap();
        let mut got = vec![0; 11];
        s.read_exact(&mut got).await.unwrap();
        String::from_utf8(got).unwrap()
    }

    /// Kills and reaps the foreign client even when the test fails.
    struct Reaped(std::process::Child);

    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test]
    async fn a_foreign_connection_is_closed_and_ours_is_served() {
        let relay = Relay::open(greeter().await).await.unwrap();
        let at = relay.addr().unwrap();
        // Another process connects first and prints whatever it is sent.
        let mut foreign = Reaped(
            Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "exec 3<>/dev/tcp/127.0.0.1/{}; echo connected; cat <&3",
                    at.port()
                ))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut out = std::io::BufReader::new(foreign.0.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line, "connected\n", "the foreign client did not connect");
        // Its connection waits in the backlog: the relay accepts it first.
        let got = tokio::time::timeout(Duration::from_secs(30), relay.run(exchange(at)))
            .await
            .expect("the relay never served our client")
            .unwrap();
        assert_eq!(got, "hello\nping\n");
        // The foreign client got nothing and its connection was closed (its cat ended).
        let rest = tokio::task::spawn_blocking(move || {
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
            rest
        });
        let rest = tokio::time::timeout(Duration::from_secs(30), rest)
            .await
            .expect("the foreign connection was left open")
            .unwrap();
        assert_eq!(rest, "");
        assert!(foreign.0.wait().unwrap().success());
    }

    #[tokio::test]
    async fn a_refused_upstream_is_the_relays_own_failure() {
        let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        match Relay::open(addr).await {
            Err(RelayError::Upstream(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused)
            }
            other => panic!("{other:?}"),
        }
    }
}
