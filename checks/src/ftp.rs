//! `service=ftp` negotiate check (§3.4): download a file and match it against `receive`.
//!
//! Exchange: TCP connect, greeting (2xx), `USER login` / `PASS passwd` (login and passwd
//! default to `anonymous` / `ldirectord@HOSTNAME` in the parser when `service=ftp` is
//! explicit), `CWD /`, `TYPE I`, passive mode (`PASV`; `EPSV` to an IPv6 real), `RETR
//! <request>` with the request's leading `/` kept as stock does, read the file to the end
//! (at most [`MAX_FILE`] bytes are kept), the transfer reply, `QUIT`.
//!
//! Up when the download completed (2xx after the data) and the content matches
//! `receive`. Stock leaves an empty `receive` undefined (Perl's "empty pattern" reuses
//! the last successful match); ours is defined: without `receive`, up iff the download
//! succeeded. Like stock, the results of `CWD /` and `TYPE I` are ignored.
//!
//! The data connection goes to the real's own address with the port the server offered:
//! the address inside a PASV reply is ignored (it is often a private or NATed address, and
//! honouring it would let a server point the director at any host).
//!
//! The whole exchange is bounded by `negotiatetimeout` (stock: per operation).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::proto::{self, LineConn};
use crate::spec::CheckSpec;

/// How much of the file is kept and matched. Health pages are small; a larger file is
/// matched on its first MAX_FILE bytes and its transfer is abandoned there.
pub const MAX_FILE: usize = 1024 * 1024;

/// Build the check for `spec`.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    proto::reject_line_breaks("login", &spec.login)?;
    proto::reject_line_breaks("passwd", &spec.passwd)?;
    proto::reject_line_breaks("request", &spec.request)?;
    Ok(Arc::new(FtpCheck { spec: spec.clone() }))
}

#[derive(Debug)]
struct FtpCheck {
    spec: CheckSpec,
}

impl Checker for FtpCheck {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.spec.negotiatetimeout, self.run()))
    }
}

impl FtpCheck {
    async fn run(&self) -> Result<String, Failure> {
        let addr = proto::target(&self.spec)?;
        let mut conn = LineConn::greeted(addr).await?;
        let port = login_and_passive(&mut conn, &self.spec, addr.is_ipv6()).await?;
        let data_addr = SocketAddr::new(addr.ip(), port);
        let mut data = proto::connect_tcp(data_addr)
            .await
            .map_err(|e| e.context(&format!("data connection to port {}: ", data_addr.port())))?;

        conn.send(&format!("RETR {}", self.spec.request)).await?;
        let mark = conn.read_reply().await?;
        if !mark.is_preliminary() && !mark.is_ok() {
            return Err(Failure::protocol(format!(
                "RETR {}: {}",
                self.spec.request, mark.line
            )));
        }

        let mut content = Vec::new();
        (&mut data)
            .take(MAX_FILE as u64)
            .read_to_end(&mut content)
            .await
            .map_err(|e| proto::io_failure(e).context("download: "))?;
        let truncated = content.len() == MAX_FILE;
        drop(data);

        // A 1xx mark is followed by the transfer's completion reply. When we stopped
        // reading a large file early, the server will report an aborted transfer: the
        // part we have is what counts.
        if mark.is_preliminary() && !truncated {
            let done = conn.read_reply().await?;
            if !done.is_ok() {
                return Err(Failure::protocol(format!("download failed: {}", done.line)));
            }
        }
        conn.goodbye("QUIT").await;

        match &self.spec.receive {
            Some(receive) if !receive.is_match(&content) => Err(Failure::mismatch(format!(
                "receive mismatch: {}",
                proto::quote(&content)
            ))),
            _ => Ok("-".to_owned()),
        }
    }
}

/// After the greeting: log in as `spec` says, then ask for passive mode (`EPSV` when
/// `ipv6`, else `PASV`) and return the data port.
pub(crate) async fn login_and_passive<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut LineConn<S>,
    spec: &CheckSpec,
    ipv6: bool,
) -> Result<u16, Failure> {
    conn.send(&format!("USER {}", spec.login)).await?;
    let mut reply = conn.read_reply().await?;
    if reply.is_intermediate() {
        conn.send(&format!("PASS {}", spec.passwd)).await?;
        reply = conn.read_reply().await?;
    }
    if !reply.is_ok() {
        return Err(Failure::auth(format!("login failed: {}", reply.line)));
    }

    // Stock ignores these two; a server without `/` or binary mode may still serve
    // the file.
    conn.send("CWD /").await?;
    conn.read_reply().await?;
    conn.send("TYPE I").await?;
    conn.read_reply().await?;

    let (command, port): (_, fn(&str) -> Option<u16>) = if ipv6 {
        ("EPSV", epsv_port)
    } else {
        ("PASV", pasv_port)
    };
    conn.send(command).await?;
    let reply = conn.read_reply().await?;
    port(&reply.line).ok_or_else(|| Failure::protocol(format!("{command} failed: {}", reply.line)))
}

/// The data port of a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` reply (RFC 959;
/// the parentheses are optional in practice, so the last six numbers are taken).
fn pasv_port(line: &str) -> Option<u16> {
    if !line.starts_with("227") {
        return None;
    }
    let text = line.get(4..).unwrap_or("");
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let numbers: Vec<u8> = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(6)
        .map(|s| s.parse::<u8>().ok())
        .collect::<Option<_>>()?;
    if numbers.len() != 6 {
        return None;
    }
    Some(u16::from(numbers[4]) << 8 | u16::from(numbers[5]))
}

/// The data port of a `229 Entering Extended Passive Mode (|||port|)` reply (RFC 2428).
fn epsv_port(line: &str) -> Option<u16> {
    if !line.starts_with("229") {
        return None;
    }
    let open = line.find('(')?;
    let inner = &line[open + 1..line[open..].find(')')? + open];
    let delimiter = inner.chars().next()?;
    let fields: Vec<&str> = inner.split(delimiter).collect();
    // `<d><d><d>port<d>` splits into ["", "", "", "port", ""].
    if fields.len() != 5 {
        return None;
    }
    fields[3].parse().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasv_replies() {
        assert_eq!(
            pasv_port("227 Entering Passive Mode (127,0,0,1,195,80)."),
            Some(50000)
        );
        assert_eq!(pasv_port("227 =127,0,0,1,4,1"), Some(1025));
        assert_eq!(
            pasv_port("227 Entering Passive Mode (127,0,0,1,300,80)"),
            None
        );
        assert_eq!(pasv_port("227 Entering Passive Mode (127,0,0,1)"), None);
        assert_eq!(pasv_port("500 no"), None);
    }

    #[test]
    fn epsv_replies() {
        assert_eq!(
            epsv_port("229 Entering Extended Passive Mode (|||50000|)"),
            Some(50000)
        );
        assert_eq!(epsv_port("229 ok (!!!2121!)"), Some(2121));
        assert_eq!(epsv_port("229 ok (|||0|)"), None);
        assert_eq!(epsv_port("229 ok (||x|)"), None);
        assert_eq!(epsv_port("500 no"), None);
    }
}
