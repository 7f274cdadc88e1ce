//! `service=sip` negotiate check (§3.4): one SIP OPTIONS request.
//!
//! Exchange: over UDP when the virtual service is UDP, else TCP, send
//!
//! ```text
//! OPTIONS sip:<login> SIP/2.0
//! Via: SIP/2.0/UDP <local-addr>:<local-port>;branch=z9hG4bKhjhs8ass877
//! Max-Forwards: 70
//! To: <sip:<login>>
//! From: <sip:<login>>;tag=1928301774
//! Call-ID: <16 random hex digits>
//! CSeq: 63104 OPTIONS
//! Contact: <sip:<login>>
//! Accept: application/sdp
//! Content-Length: 0
//! ```
//!
//! (CR LF line ends, a blank line after the headers) — stock's request, including its
//! fixed branch and tag and its `UDP` in Via even over TCP. `login` defaults to
//! `ldirectord@HOSTNAME` in the parser when `service=sip` is explicit.
//!
//! Up when the first line of the first reply starts with `SIP/2.0 200 OK`. The whole
//! exchange is bounded by `negotiatetimeout`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ldirectord_parsers::config::{Protocol, ip_text};
use tokio::io::AsyncWriteExt;

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::proto::{self, LineConn, quote};
use crate::spec::CheckSpec;

/// The largest UDP reply we read (the rest of a larger datagram is discarded).
const MAX_DATAGRAM: usize = 65_535;

/// Build the check for `spec`.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    proto::reject_line_breaks("login", &spec.login)?;
    Ok(Arc::new(SipCheck { spec: spec.clone() }))
}

#[derive(Debug)]
struct SipCheck {
    spec: CheckSpec,
}

impl Checker for SipCheck {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.spec.negotiatetimeout, self.run()))
    }
}

impl SipCheck {
    async fn run(&self) -> Result<String, Failure> {
        let addr = proto::target(&self.spec)?;
        let status = if self.spec.protocol == Protocol::Udp {
            self.over_udp(addr).await?
        } else {
            self.over_tcp(addr).await?
        };
        verdict(&status)
    }

    async fn over_udp(&self, addr: SocketAddr) -> Result<Vec<u8>, Failure> {
        let socket = proto::connect_udp(addr).await?;
        let me = socket.local_addr().map_err(proto::io_failure)?;
        socket
            .send(options_request(&self.spec.login, me).as_bytes())
            .await
            .map_err(proto::io_failure)?;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // ICMP port unreachable surfaces here as `Connection refused`.
        let n = socket.recv(&mut buf).await.map_err(proto::io_failure)?;
        Ok(first_line(&buf[..n]).to_vec())
    }

    async fn over_tcp(&self, addr: SocketAddr) -> Result<Vec<u8>, Failure> {
        let mut stream = proto::connect_tcp(addr).await?;
        let me = stream.local_addr().map_err(proto::io_failure)?;
        stream
            .write_all(options_request(&self.spec.login, me).as_bytes())
            .await
            .map_err(proto::io_failure)?;
        LineConn::new(stream).read_line().await
    }
}

/// The status line of a reply datagram: its first line, without CR LF.
pub(crate) fn first_line(datagram: &[u8]) -> &[u8] {
    let first = datagram.split(|&b| b == b'\n').next().unwrap_or_default();
    first.strip_suffix(b"\r").unwrap_or(first)
}

/// Up when the status line starts with `SIP/2.0 200 OK`; the reason is the line.
pub(crate) fn verdict(status: &[u8]) -> Result<String, Failure> {
    if status.starts_with(b"SIP/2.0 200 OK") {
        Ok(quote(status))
    } else {
        Err(Failure::protocol(quote(status)))
    }
}

/// Stock's OPTIONS request from `me`, with a fresh Call-ID.
fn options_request(login: &str, me: SocketAddr) -> String {
    let call_id = format!("{:016x}", rand::random::<u64>());
    let host = match me.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        v6 @ IpAddr::V6(_) => ip_text(v6),
    };
    format!(
        "OPTIONS sip:{login} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKhjhs8ass877\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{login}>\r\n\
         From: <sip:{login}>;tag=1928301774\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 63104 OPTIONS\r\n\
         Contact: <sip:{login}>\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\
         \r\n",
        port = me.port(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_text() {
        let r = options_request("ldirectord@lb1", "127.0.0.1:5070".parse().unwrap());
        let lines: Vec<&str> = r.split("\r\n").collect();
        assert_eq!(lines[0], "OPTIONS sip:ldirectord@lb1 SIP/2.0");
        assert_eq!(
            lines[1],
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKhjhs8ass877"
        );
        assert_eq!(lines[2], "Max-Forwards: 70");
        assert_eq!(lines[3], "To: <sip:ldirectord@lb1>");
        assert_eq!(lines[4], "From: <sip:ldirectord@lb1>;tag=1928301774");
        let call_id = lines[5].strip_prefix("Call-ID: ").unwrap();
        assert_eq!(call_id.len(), 16);
        assert!(call_id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            &lines[6..],
            [
                "CSeq: 63104 OPTIONS",
                "Contact: <sip:ldirectord@lb1>",
                "Accept: application/sdp",
                "Content-Length: 0",
                "",
                ""
            ]
        );
        let r6 = options_request("x", "[::1]:5060".parse().unwrap());
        assert!(r6.contains("Via: SIP/2.0/UDP [::1]:5060;"));
    }
}
