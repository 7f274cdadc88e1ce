//! `service=imap` / `service=imaps` negotiate check (§3.4). imaps is IMAP inside TLS from
//! the first byte (port 993), with no certificate verification, like stock.
//!
//! Exchange: connect (and TLS handshake for imaps), read the greeting, and when `login=`
//! is set `LOGIN "login" "passwd"` (quoted strings, RFC 3501 §4.3), then `LOGOUT`. Up when
//! the greeting is `* OK` (or `* PREAUTH`: the server already authenticated the session,
//! so no LOGIN is sent) and, with a login, LOGIN is answered with a tagged `OK`.
//! The whole exchange is bounded by `negotiatetimeout`.

use std::sync::Arc;

use ldirectord_parsers::config::Service;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::check::{BuildError, Checker, Failure};
use crate::proto::{Dialogue, LineCheck, LineConn, quote};
use crate::spec::CheckSpec;

/// Tags of our two commands; any other line before the tagged answer is untagged data.
const LOGIN_TAG: &str = "ld1";
const LOGOUT_TAG: &str = "ld2";

/// How many untagged lines (CAPABILITY and the like) may precede the tagged answer.
const MAX_UNTAGGED: usize = 256;

/// Build the check for `spec` (imap or imaps).
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    LineCheck::<Imap>::build(spec, spec.service == Service::Imaps)
}

#[derive(Debug)]
pub(crate) struct Imap;

impl Dialogue for Imap {
    async fn talk<S: AsyncRead + AsyncWrite + Unpin + Send>(
        spec: &CheckSpec,
        mut conn: LineConn<S>,
    ) -> Result<String, Failure> {
        let greeting = conn.read_line().await?;
        let preauth = match greeting_kind(&greeting) {
            Some(Greeting::Ok) => false,
            Some(Greeting::Preauth) => true,
            None => return Err(Failure::protocol(format!("greeting: {}", quote(&greeting)))),
        };
        if !spec.login.is_empty() && !preauth {
            let command = format!(
                "{LOGIN_TAG} LOGIN {} {}",
                quoted(&spec.login),
                quoted(&spec.passwd)
            );
            conn.send(&command).await?;
            let answer = tagged_answer(&mut conn, LOGIN_TAG).await?;
            if !answer.starts_with(b"OK") {
                return Err(Failure::auth(format!("login failed: {}", quote(&answer))));
            }
        }
        conn.goodbye(&format!("{LOGOUT_TAG} LOGOUT")).await;
        Ok("-".to_owned())
    }
}

enum Greeting {
    Ok,
    Preauth,
}

/// RFC 3501 §7.1: `* OK`, `* PREAUTH` or `* BYE` (refused); status words are
/// case-insensitive.
fn greeting_kind(line: &[u8]) -> Option<Greeting> {
    let rest = line.strip_prefix(b"* ")?;
    let word_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let word = &rest[..word_end];
    if word.eq_ignore_ascii_case(b"OK") {
        Some(Greeting::Ok)
    } else if word.eq_ignore_ascii_case(b"PREAUTH") {
        Some(Greeting::Preauth)
    } else {
        None
    }
}

/// Skip untagged lines until the one tagged `tag`; return what follows the tag, with
/// the status word upper-cased so callers can compare it.
async fn tagged_answer<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut LineConn<S>,
    tag: &str,
) -> Result<Vec<u8>, Failure> {
    let prefix = format!("{tag} ");
    for _ in 0..MAX_UNTAGGED {
        let line = conn.read_line().await?;
        if let Some(rest) = line.strip_prefix(prefix.as_bytes()) {
            let mut rest = rest.to_vec();
            let word_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            rest[..word_end].make_ascii_uppercase();
            return Ok(rest);
        }
    }
    Err(Failure::protocol(format!(
        "no answer to {tag} after {MAX_UNTAGGED} lines"
    )))
}

/// An IMAP quoted string: `"` and `\` escaped. (CR/LF are refused at build time.)
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        assert!(matches!(
            greeting_kind(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready."),
            Some(Greeting::Ok)
        ));
        assert!(matches!(greeting_kind(b"* ok hi"), Some(Greeting::Ok)));
        assert!(matches!(
            greeting_kind(b"* PREAUTH welcome"),
            Some(Greeting::Preauth)
        ));
        assert!(greeting_kind(b"* BYE go away").is_none());
        assert!(greeting_kind(b"* OKAY").is_none());
        assert!(greeting_kind(b"+OK pop3").is_none());
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted(""), r#""""#);
    }
}
