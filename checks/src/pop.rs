//! `service=pop` / `service=pops` negotiate check (§3.4). pops is POP3 inside TLS from the
//! first byte (port 995), with no certificate verification, like stock.
//!
//! Exchange: connect (and TLS handshake for pops), read the greeting, and when `login=` is
//! set `USER login` / `PASS passwd`, then `QUIT`. Up when the greeting is `+OK` and, with
//! a login, both USER and PASS are answered `+OK`.
//!
//! Deliberate fix: stock never looks at the result without a login and so reports a POP
//! server up even when it is unreachable; here a `+OK` greeting is always required.
//! The whole exchange is bounded by `negotiatetimeout`.

use std::sync::Arc;

use ldirectord_parsers::config::Service;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::check::{BuildError, Checker, Failure};
use crate::proto::{Dialogue, LineCheck, LineConn, quote};
use crate::spec::CheckSpec;

/// Build the check for `spec` (pop or pops).
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    LineCheck::<Pop>::build(spec, spec.service == Service::Pops)
}

#[derive(Debug)]
pub(crate) struct Pop;

impl Dialogue for Pop {
    async fn talk<S: AsyncRead + AsyncWrite + Unpin + Send>(
        spec: &CheckSpec,
        mut conn: LineConn<S>,
    ) -> Result<String, Failure> {
        let greeting = conn.read_line().await?;
        if !is_ok(&greeting) {
            return Err(Failure::protocol(format!("greeting: {}", quote(&greeting))));
        }
        if !spec.login.is_empty() {
            for (command, value) in [("USER", &spec.login), ("PASS", &spec.passwd)] {
                conn.send(&format!("{command} {value}")).await?;
                let answer = conn.read_line().await?;
                if !is_ok(&answer) {
                    return Err(Failure::auth(format!(
                        "login failed: {command}: {}",
                        quote(&answer)
                    )));
                }
            }
        }
        conn.goodbye("QUIT").await;
        Ok("-".to_owned())
    }
}

/// A POP3 positive status indicator (RFC 1939 §3): `+OK`, alone or followed by a space.
fn is_ok(line: &[u8]) -> bool {
    line == b"+OK" || line.starts_with(b"+OK ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_indicator() {
        assert!(super::is_ok(b"+OK Dovecot ready."));
        assert!(super::is_ok(b"+OK"));
        assert!(!super::is_ok(b"+OKAY"));
        assert!(!super::is_ok(b"-ERR [AUTH] Authentication failed."));
    }
}
