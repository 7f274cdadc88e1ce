//! `service=nntp` negotiate check: connect to the news server, read its greeting.
//!
//! As stock: one read of at most 64 bytes; up iff the first byte is `2` (`200`/`201`
//! posting allowed or not). Nothing is sent; the connection is then reset (no TIME_WAIT on
//! the director). The whole exchange is bounded by `negotiatetimeout` (30 s unless set,
//! §2.8).
//!
//! Reasons: the greeting line (`200 news.example.com ready`) when up; the greeting when it
//! does not start with `2`, `connection closed without a greeting`, the socket error, or
//! `timed out after 30s` when down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::connect::{NO_PORT, close_with_reset, tcp};
use crate::proto::io_failure;
use crate::spec::CheckSpec;

/// Bytes read from the greeting, as stock.
pub(crate) const GREETING_BYTES: usize = 64;

/// The NNTP checker for `spec`.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    let target = spec
        .port
        .filter(|&p| p != 0)
        .map(|p| SocketAddr::new(spec.ip, p));
    Ok(Arc::new(Nntp {
        target,
        timeout: spec.negotiatetimeout,
    }))
}

#[derive(Debug)]
struct Nntp {
    target: Option<SocketAddr>,
    timeout: Duration,
}

impl Checker for Nntp {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let Some(addr) = self.target else {
                return Outcome::down(NO_PORT, Duration::ZERO);
            };
            bounded(self.timeout, async move {
                let mut stream = tcp(addr).await?;
                let mut buf = [0u8; GREETING_BYTES];
                let read = stream.read(&mut buf).await;
                close_with_reset(stream);
                let n = read.map_err(io_failure)?;
                greeting_result(&buf[..n])
            })
            .await
        })
    }
}

/// Up iff the greeting starts with `2`; the reason is the greeting's first line.
pub(crate) fn greeting_result(greeting: &[u8]) -> Result<String, Failure> {
    if greeting.is_empty() {
        return Err(Failure::protocol("connection closed without a greeting"));
    }
    let line = String::from_utf8_lossy(greeting);
    let line = line.lines().next().unwrap_or_default().trim().to_owned();
    if greeting[0] == b'2' {
        Ok(line)
    } else {
        Err(Failure::protocol(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_decides() {
        assert_eq!(
            greeting_result(b"200 news ready\r\n"),
            Ok("200 news ready".into())
        );
        assert_eq!(
            greeting_result(b"201 no posting\r\n"),
            Ok("201 no posting".into())
        );
        assert_eq!(
            greeting_result(b"400 go away\r\n"),
            Err(Failure::protocol("400 go away"))
        );
        assert_eq!(
            greeting_result(b"\xff\xfe"),
            Err(Failure::protocol("\u{fffd}\u{fffd}"))
        );
        assert!(greeting_result(b"").is_err());
    }
}
