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
//! a connection whose other end is a socket of this process: the kernel's socket table
//! (a sock_diag exact lookup of the established TCP socket with local address = the peer
//! and remote = the listener, in the calling thread's network namespace) gives that
//! socket's inode, which must be among this process's file descriptors
//! (`/proc/self/fd/N -> socket:[INODE]`). Any other connection is closed at once and the
//! relay keeps waiting, bounded by the check's timeout like the rest of the check. An IPv6
//! socket reaching the IPv4 listener (as `::ffff:127.0.0.1`) is not found by an IPv4
//! lookup and so never served: the lookup fails closed.
//!
//! The exact lookup rather than reading `/proc/net/tcp`: that table lists every socket of
//! the namespace, TIME_WAIT ones included; on this host (10,158 lines, 1.5 MB) reading and
//! parsing it made a relayed check take 49.7 ms instead of 0.8 ms (check_path bench, dev
//! profile). The request and reply are the netlink-packet-sock-diag crate's.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_ESTABLISHED};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
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
    /// The relay itself failed (no loopback listener, the socket lookup failing).
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
    /// The client must wait for the upstream before it is done (a mysql server speaks
    /// first): one done before its connection was taken gets nothing passed on.
    pub(crate) async fn run<F: Future>(self, client: F) -> Result<F::Output, RelayError> {
        let Relay {
            listener,
            mut upstream,
        } = self;
        tokio::pin!(client);
        let mut ours = tokio::select! {
            // Done without connecting (a failure before it): nothing to pass on.
            out = &mut client => return Ok(out),
            ours = accept_own(&listener) => ours?,
        };
        // One client per check: nobody else gets in once it is there.
        drop(listener);
        let _ = ours.set_nodelay(true);
        let mut copy = Box::pin(async move {
            let _ = copy_bidirectional(&mut ours, &mut upstream).await;
        });
        tokio::select! {
            out = &mut client => {
                tokio::spawn(tokio::time::timeout(GOODBYE, copy));
                Ok(out)
            }
            () = &mut copy => Ok(client.await),
        }
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
    let Some(inode) = socket_inode(peer, listener)? else {
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

/// The inode of the established TCP socket with local address `local` and remote address
/// `remote`, in the calling thread's network namespace; `None` when there is none (a
/// socket closed meanwhile, one in TIME_WAIT, whose inode is 0, or the listener the
/// kernel's lookup falls back to).
fn socket_inode(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u32>> {
    let mut id = if local.is_ipv4() {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    id.source_address = local.ip();
    id.source_port = local.port();
    id.destination_address = remote.ip();
    id.destination_port = remote.port();
    // No cookie: match by the addresses alone.
    id.cookie = [0xff; 8];
    let request = InetRequest {
        family: if local.is_ipv4() { AF_INET } else { AF_INET6 },
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::all(),
        socket_id: id.clone(),
    };
    let mut header = NetlinkHeader::default();
    // A request without NLM_F_DUMP: the kernel looks one socket up by its addresses.
    header.flags = NLM_F_REQUEST;
    let mut packet = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    let socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_SOCK_DIAG)?;
    socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    socket.send(&buf, 0)?;
    // The kernel answers within the send: the reply is queued when it returns, so the
    // runtime's thread never waits here.
    let mut reply = Vec::with_capacity(8192);
    socket.recv(&mut reply, libc::MSG_DONTWAIT)?;
    let message = NetlinkMessage::<SockDiagMessage>::deserialize(&reply)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    match message.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(found)) => {
            let h = &found.header;
            let exact = h.socket_id.source_address == id.source_address
                && h.socket_id.source_port == id.source_port
                && h.socket_id.destination_address == id.destination_address
                && h.socket_id.destination_port == id.destination_port;
            Ok((exact && h.state == TCP_ESTABLISHED && h.inode != 0).then_some(h.inode))
        }
        NetlinkPayload::Error(e) if e.to_io().kind() == io::ErrorKind::NotFound => Ok(None),
        NetlinkPayload::Error(e) => Err(e.to_io()),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected sock_diag reply {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    #[tokio::test]
    async fn the_lookup_finds_the_exact_connection_and_only_an_established_one() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let at = listener.local_addr().unwrap();
        let client = TcpStream::connect(at).await.unwrap();
        let (accepted, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // Both ends are ours, and they are two sockets.
        let ours = socket_inode(peer, at).unwrap().expect("the client's end");
        let theirs = socket_inode(at, peer).unwrap().expect("the accepted end");
        assert_ne!(ours, theirs);
        assert!(is_ours(peer, at).unwrap());
        // Nothing with these addresses.
        let nobody = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        assert_eq!(socket_inode(nobody, at).unwrap(), None);
        // The kernel's lookup falls back to a listener on the local port: not a peer.
        assert_eq!(socket_inode(at, nobody).unwrap(), None);
        // Closed: no longer established (FIN_WAIT, TIME_WAIT with inode 0, or gone). Not
        // always at once: a child forked meanwhile by another test holds the socket
        // until its exec closes it.
        drop(client);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while socket_inode(peer, at).unwrap().is_some() {
            assert!(tokio::time::Instant::now() < deadline, "still established");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(accepted);
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
            crate::process::blocking_command("bash")
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

    /// Run the client `make(relay address)` through a relay to an upstream that says
    /// `hello` and records what it receives until its connection is closed: the client's
    /// output and that.
    async fn recorded<F: Future>(make: impl FnOnce(SocketAddr) -> F) -> (F::Output, String) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let received = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.write_all(b"hello\n").await;
            let mut got = String::new();
            let _ = s.read_to_string(&mut got).await;
            got
        });
        let relay = Relay::open(upstream).await.unwrap();
        let client = make(relay.addr().unwrap());
        let out = relay.run(client).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(30), received)
            .await
            .expect("the upstream connection was left open")
            .unwrap();
        (out, got)
    }

    #[tokio::test]
    async fn the_clients_goodbye_reaches_the_upstream_after_its_result() {
        // Like mysql_async's disconnect: COM_QUIT and close, without waiting.
        let client = |at| async move {
            let mut s = TcpStream::connect(at).await.unwrap();
            let mut hello = [0; 6];
            s.read_exact(&mut hello).await.unwrap();
            s.write_all(b"quit\n").await.unwrap();
            "done"
        };
        assert_eq!(recorded(client).await, ("done", "quit\n".to_owned()));
    }

    #[tokio::test]
    async fn a_client_done_without_connecting_is_answered_at_once() {
        // And the upstream connection is closed with nothing sent.
        assert_eq!(recorded(|_| async { 7 }).await, (7, String::new()));
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
