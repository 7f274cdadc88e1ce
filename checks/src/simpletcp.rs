//! `service=simpletcp` negotiate check: send a line-oriented request, wait for a line
//! matching `receive`.
//!
//! As stock: the request is `request=` without its leading `/`, with every two-character
//! sequence `\n` turned into a newline. Over TCP (the virtual's protocol is tcp or fwm) the
//! request is sent, the write side is shut down, and lines are read until one (newline
//! included) matches `receive`. Over UDP (protocol udp) the request is one datagram and
//! every reply datagram is split into lines the same way. Without `receive`, the first
//! line received counts as a match (Perl's empty pattern matches anything).
//!
//! Bounded by `negotiatetimeout` (30 s unless set, §2.8) as a whole. A line is capped at
//! [`MAX_LINE`] bytes and the whole reply at [`MAX_REPLY`], so a server that streams
//! garbage cannot grow the director's memory.
//!
//! Reasons: the matching line (trimmed) when up; `no line matched receive` (after the
//! server closed), the socket error (`Connection refused`, also from an ICMP port
//! unreachable over UDP), `reply larger than 1048576 bytes without a match`, or
//! `timed out after 30s` when down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ldirectord_parsers::config::{Protocol, Receive};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::connect::{NO_PORT, close_with_reset, tcp};
use crate::proto::{self, io_failure};
use crate::spec::CheckSpec;

/// Longest line looked at; longer lines are split (and matched in pieces).
pub const MAX_LINE: usize = 64 * 1024;
/// Most reply bytes read before giving up.
pub const MAX_REPLY: usize = 1024 * 1024;

/// The simpletcp checker for `spec`.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    let target = spec
        .port
        .filter(|&p| p != 0)
        .map(|p| SocketAddr::new(spec.ip, p));
    Ok(Arc::new(SimpleTcp {
        target,
        udp: spec.protocol == Protocol::Udp,
        request: unescape(spec.request_body()).into_bytes(),
        receive: spec.receive.clone(),
        timeout: spec.negotiatetimeout,
    }))
}

/// Stock's unescaping: the two characters `\n` become a newline; nothing else changes.
pub fn unescape(request: &str) -> String {
    request.replace("\\n", "\n")
}

#[derive(Debug)]
struct SimpleTcp {
    target: Option<SocketAddr>,
    udp: bool,
    request: Vec<u8>,
    receive: Option<Receive>,
    timeout: Duration,
}

impl SimpleTcp {
    fn matches(&self, line: &[u8]) -> bool {
        self.receive.as_ref().is_none_or(|r| r.is_match(line))
    }

    async fn over_tcp(&self, addr: SocketAddr) -> Result<String, Failure> {
        let mut stream = tcp(addr).await?;
        let result = async {
            stream.write_all(&self.request).await.map_err(io_failure)?;
            stream.shutdown().await.map_err(io_failure)?;
            let mut reader = BufReader::new(&mut stream);
            let mut total = 0usize;
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = read_line_capped(&mut reader, &mut line)
                    .await
                    .map_err(io_failure)?;
                if n == 0 {
                    return Err(Failure::mismatch("no line matched receive"));
                }
                if self.matches(&line) {
                    return Ok(show(&line));
                }
                total += n;
                if total >= MAX_REPLY {
                    return Err(Failure::mismatch(format!(
                        "reply larger than {MAX_REPLY} bytes without a match"
                    )));
                }
            }
        }
        .await;
        close_with_reset(stream);
        result
    }

    async fn over_udp(&self, addr: SocketAddr) -> Result<String, Failure> {
        // Connected, so ICMP port unreachable comes back as `Connection refused`.
        let socket = proto::connect_udp(addr).await?;
        socket.send(&self.request).await.map_err(io_failure)?;
        let mut buf = vec![0u8; 65536];
        let mut total = 0usize;
        loop {
            let n = socket.recv(&mut buf).await.map_err(io_failure)?;
            for line in buf[..n].split_inclusive(|&b| b == b'\n') {
                if self.matches(line) {
                    return Ok(show(line));
                }
            }
            total += n;
            if total >= MAX_REPLY {
                return Err(Failure::mismatch(format!(
                    "reply larger than {MAX_REPLY} bytes without a match"
                )));
            }
        }
    }
}

impl Checker for SimpleTcp {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let Some(addr) = self.target else {
                return Outcome::down(NO_PORT, Duration::ZERO);
            };
            if self.udp {
                bounded(self.timeout, self.over_udp(addr)).await
            } else {
                bounded(self.timeout, self.over_tcp(addr)).await
            }
        })
    }
}

/// Read one line (newline included) of at most [`MAX_LINE`] bytes; 0 at end of stream.
async fn read_line_capped<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(line.len());
        }
        let room = MAX_LINE - line.len();
        let window = &available[..available.len().min(room)];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                line.extend_from_slice(&window[..=i]);
                reader.consume(i + 1);
                return Ok(line.len());
            }
            None => {
                let n = window.len();
                line.extend_from_slice(window);
                reader.consume(n);
                if line.len() >= MAX_LINE {
                    return Ok(line.len());
                }
            }
        }
    }
}

/// A received line as a reason: lossy UTF-8, trimmed, at most 200 characters.
fn show(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    text.trim().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_turns_backslash_n_into_newlines() {
        assert_eq!(unescape("GET / HTTP/1.0\\n\\n"), "GET / HTTP/1.0\n\n");
        assert_eq!(unescape("a\\tb"), "a\\tb");
        assert_eq!(unescape("plain"), "plain");
    }

    #[tokio::test]
    async fn long_lines_are_split_at_the_cap() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.push(b'\n');
        let mut reader = BufReader::new(&data[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_line_capped(&mut reader, &mut line).await.unwrap(),
            MAX_LINE
        );
        line.clear();
        assert_eq!(read_line_capped(&mut reader, &mut line).await.unwrap(), 11);
        line.clear();
        assert_eq!(read_line_capped(&mut reader, &mut line).await.unwrap(), 0);
    }
}
