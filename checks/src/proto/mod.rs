//! Plumbing shared by the hand-written protocol checks (ftp, smtp, pop, imap, sip, radius,
//! dns): where to connect, how to turn an I/O error into a monitorfile reason, a
//! line-protocol connection that reads with a cap, and the TLS connector of pops/imaps.
//!
//! Declared from `smtp.rs` (lib.rs belongs to the registry), used by the sibling modules
//! as `crate::smtp::proto`.

pub(crate) mod tls;

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::CheckSpec;

/// The longest protocol line we accept. Real greetings and replies are well under 1 KiB;
/// a server sending more without a newline is broken or hostile.
pub(crate) const MAX_LINE: usize = 8 * 1024;

/// The most lines of one multi-line `NNN-` reply (EHLO lists, FTP banners). A server that
/// keeps sending continuation lines is treated as broken rather than read until timeout.
const MAX_REPLY_LINES: usize = 256;

/// The longest server text quoted in a reason: enough to identify a message, short enough
/// for one monitorfile line.
const MAX_QUOTE: usize = 160;

/// The address to check: the real's IP and the check port. A spec without check port
/// (possible only for services without default port) fails the check, as stock's connect
/// to port 0 does.
pub(crate) fn target(spec: &CheckSpec) -> Result<SocketAddr, String> {
    match spec.port {
        Some(port) => Ok(SocketAddr::new(spec.ip, port)),
        None => Err("no check port".to_owned()),
    }
}

/// An I/O error as an operator reads it: `Connection refused`, not
/// `Connection refused (os error 111)`.
pub(crate) fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Open a TCP connection to `addr`.
pub(crate) async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| io_reason(&e))?;
    // Checks send a few short commands and wait for each answer.
    let _ = stream.set_nodelay(true);
    Ok(stream)
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

/// One reply of an FTP/SMTP-style protocol: a 3-digit code and the text of its last line
/// (the one without `-`), as quoted in reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    pub line: String,
}

impl Reply {
    /// 1xx preliminary.
    pub fn is_preliminary(&self) -> bool {
        (100..200).contains(&self.code)
    }
    /// 2xx completion.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.code)
    }
    /// 3xx intermediate (e.g. 331 password required).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }
}

/// A line-oriented connection (plain TCP or TLS) whose reads are capped: a server that
/// sends endless data without a newline fails the check instead of growing memory.
pub(crate) struct LineConn<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineConn<S> {
    pub fn new(stream: S) -> LineConn<S> {
        LineConn {
            io: BufReader::new(stream),
        }
    }

    /// The next line without its CR LF (or bare LF). End of stream is an error: every
    /// caller is waiting for an answer.
    pub async fn read_line(&mut self) -> Result<Vec<u8>, String> {
        let mut line = Vec::new();
        loop {
            let buf = self.io.fill_buf().await.map_err(|e| io_reason(&e))?;
            if buf.is_empty() {
                return Err(if line.is_empty() {
                    "connection closed by server".to_owned()
                } else {
                    format!("connection closed by server in mid-line: {}", quote(&line))
                });
            }
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&buf[..i]);
                self.io.consume(i + 1);
                break;
            }
            let n = buf.len();
            line.extend_from_slice(buf);
            self.io.consume(n);
            if line.len() > MAX_LINE {
                return Err(format!("line longer than {MAX_LINE} bytes from server"));
            }
        }
        if line.len() > MAX_LINE {
            return Err(format!("line longer than {MAX_LINE} bytes from server"));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    /// Send one command line, CR LF appended.
    pub async fn send(&mut self, line: &str) -> Result<(), String> {
        let stream = self.io.get_mut();
        let mut data = Vec::with_capacity(line.len() + 2);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
        stream.write_all(&data).await.map_err(|e| io_reason(&e))?;
        stream.flush().await.map_err(|e| io_reason(&e))
    }

    /// One FTP/SMTP reply (RFC 959 §4.2, RFC 5321 §4.2): `NNN text`, or `NNN-text`
    /// continued until a line starting with the same `NNN `.
    pub async fn read_reply(&mut self) -> Result<Reply, String> {
        let first = self.read_line().await?;
        let code = reply_code(&first).ok_or_else(|| format!("not a reply: {}", quote(&first)))?;
        if first.get(3) != Some(&b'-') {
            return Ok(Reply {
                code,
                line: quote(&first),
            });
        }
        for _ in 0..MAX_REPLY_LINES {
            let line = self.read_line().await?;
            // RFC 959 allows arbitrary text lines inside a multi-line reply; only
            // `NNN ` with the same code ends it.
            if reply_code(&line) == Some(code) && line.get(3) != Some(&b'-') {
                return Ok(Reply {
                    code,
                    line: quote(&line),
                });
            }
        }
        Err(format!("reply {code} longer than {MAX_REPLY_LINES} lines"))
    }

    /// Say goodbye (`QUIT`, `LOGOUT`) once the verdict is made: wait briefly for the
    /// answer so the server sees an orderly close, but never let a server that stalls
    /// here turn a healthy result into a timeout.
    pub async fn goodbye(&mut self, command: &str) {
        if self.send(command).await.is_ok() {
            let _ = tokio::time::timeout(GOODBYE_GRACE, self.read_line()).await;
        }
        let _ = self.io.get_mut().shutdown().await;
    }
}

/// How long [`LineConn::goodbye`] waits for the server's answer.
const GOODBYE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// The 3-digit code at the start of a reply line.
fn reply_code(line: &[u8]) -> Option<u16> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if line.len() > 3 && line[3] != b' ' && line[3] != b'-' {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
    )
}

/// A configured value that will be sent inside a command line must not be able to end
/// that line and inject another command.
pub(crate) fn reject_line_breaks(what: &str, value: &str) -> Result<(), crate::BuildError> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(crate::BuildError::Invalid(format!(
            "{what} must not contain CR, LF or NUL characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes() {
        assert_eq!(reply_code(b"220 ready"), Some(220));
        assert_eq!(reply_code(b"250-PIPELINING"), Some(250));
        assert_eq!(reply_code(b"221"), Some(221));
        assert_eq!(reply_code(b"22"), None);
        assert_eq!(reply_code(b"2a0 x"), None);
        assert_eq!(reply_code(b"2200 x"), None);
    }

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

    #[tokio::test]
    async fn multi_line_reply_and_caps() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        server
            .write_all(b"220-first\r\n220 second line\r\n230-a\r\nfree text\r\n 230 not end\r\n230 end\r\n")
            .await
            .unwrap();
        let mut conn = LineConn::new(client);
        assert_eq!(
            conn.read_reply().await.unwrap(),
            Reply {
                code: 220,
                line: "220 second line".into()
            }
        );
        assert_eq!(
            conn.read_reply().await.unwrap(),
            Reply {
                code: 230,
                line: "230 end".into()
            }
        );
        server.write_all(&vec![b'x'; MAX_LINE + 10]).await.unwrap();
        assert!(conn.read_line().await.unwrap_err().contains("longer than"));
    }

    #[tokio::test]
    async fn eof_is_an_error() {
        let (client, server) = tokio::io::duplex(1024);
        drop(server);
        let mut conn = LineConn::new(client);
        assert_eq!(
            conn.read_line().await.unwrap_err(),
            "connection closed by server"
        );
    }
}
