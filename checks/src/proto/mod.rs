//! Plumbing shared by the checks: where to connect, how to turn an I/O error into a
//! monitorfile reason, TCP and connected-UDP sockets, server text safe to quote, and
//! (in [`line`]) the capped line reader of the FTP/SMTP-style protocols.

mod line;

pub(crate) use line::{Dialogue, LineCheck, LineConn};

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpStream, UdpSocket};

use crate::check::{BuildError, Failure};
use crate::spec::CheckSpec;

/// The longest protocol line we accept. Real greetings and replies are well under 1 KiB;
/// a server sending more without a newline is broken or hostile.
pub(crate) const MAX_LINE: usize = 8 * 1024;

/// The longest server text quoted in a reason: enough to identify a message, short enough
/// for one monitorfile line.
const MAX_QUOTE: usize = 160;

/// The address to check: the real's IP and the check port. A spec without check port
/// (possible only for services without default port) fails the check, as stock's connect
/// to port 0 does.
pub(crate) fn target(spec: &CheckSpec) -> Result<SocketAddr, Failure> {
    match spec.port {
        Some(port) => Ok(SocketAddr::new(spec.ip, port)),
        None => Err(Failure::other("no check port")),
    }
}

/// An I/O error as an operator reads it: `Connection refused`, not
/// `Connection refused (os error 111)`.
pub(crate) fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// An I/O error as a failure: its [`io_reason`], class
/// [`Connect`](crate::FailureClass::Connect) (refused, unreachable, reset, closed).
pub(crate) fn io_failure(e: io::Error) -> Failure {
    Failure::connect(io_reason(&e))
}

/// Open a TCP connection to `addr`.
pub(crate) async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, Failure> {
    let stream = crate::route::tcp(addr).await.map_err(io_failure)?;
    // Checks send a few short commands and wait for each answer.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A UDP socket on the wildcard address of `addr`'s family, connected to `addr`: being
/// connected, an ICMP port unreachable comes back from `recv` as `Connection refused`.
pub(crate) async fn connect_udp(addr: SocketAddr) -> Result<UdpSocket, Failure> {
    crate::route::udp(addr).await.map_err(io_failure)
}

/// Server text made safe to quote in a reason: lossy UTF-8, control characters replaced,
/// surrounding whitespace trimmed, cut to a sane length.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut out = String::with_capacity(text.len().min(MAX_QUOTE + 3));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_QUOTE {
            out.push_str("...");
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// A configured value that will be sent inside a command line must not be able to end
/// that line and inject another command.
pub(crate) fn reject_line_breaks(what: &str, value: &str) -> Result<(), BuildError> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(BuildError::Invalid(format!(
            "{what} must not contain CR, LF or NUL characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_sanitises_and_cuts() {
        assert_eq!(quote(b"  220 hi\x1b[2J\r\n"), "220 hi?[2J");
        assert_eq!(quote(&[b'a'; 500]).len(), MAX_QUOTE + 3);
        assert_eq!(quote(b"\xff\xfe"), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn io_reason_drops_os_error_number() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(io_reason(&e), "Connection refused");
    }

    #[test]
    fn io_reason_drops_the_errno() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(io_reason(&e), "Connection refused");
        let e = io::Error::other("custom");
        assert_eq!(io_reason(&e), "custom");
    }
}
