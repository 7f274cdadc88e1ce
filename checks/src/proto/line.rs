//! A line-oriented connection for the FTP/SMTP/POP/IMAP-style checks: reads capped in
//! length and in reply lines, replies parsed into code and quotable text; and
//! [`LineCheck`], the checker of the protocols that may run inside TLS (pop, imap).

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{MAX_LINE, connect_tcp, io_failure, io_reason, quote, reject_line_breaks, target};
use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::spec::CheckSpec;
use crate::tls;

/// What a [`LineCheck`] says once connected: the protocol's own exchange.
pub(crate) trait Dialogue: Send + Sync + std::fmt::Debug + 'static {
    /// Talk to the server on `conn` for `spec`; `Ok` with the up reason, `Err` with the
    /// down one.
    fn talk<S: AsyncRead + AsyncWrite + Unpin + Send>(
        spec: &CheckSpec,
        conn: LineConn<S>,
    ) -> impl Future<Output = Result<String, Failure>> + Send;
}

/// A check that connects to the spec's target, inside TLS from the first byte when asked
/// (no certificate verification, like stock), and hands the line connection to `D`. The
/// whole exchange is bounded by `negotiatetimeout`.
#[derive(Debug)]
pub(crate) struct LineCheck<D> {
    spec: CheckSpec,
    tls: bool,
    dialogue: PhantomData<fn() -> D>,
}

impl<D: Dialogue> LineCheck<D> {
    /// The checker for `spec`; `login=` and `passwd=` go into command lines, so line
    /// breaks in them are refused.
    pub(crate) fn build(spec: &CheckSpec, tls: bool) -> Result<Arc<dyn Checker>, BuildError> {
        reject_line_breaks("login", &spec.login)?;
        reject_line_breaks("passwd", &spec.passwd)?;
        Ok(Arc::new(LineCheck::<D> {
            spec: spec.clone(),
            tls,
            dialogue: PhantomData,
        }))
    }

    async fn run(&self) -> Result<String, Failure> {
        let addr = target(&self.spec)?;
        let tcp = connect_tcp(addr).await?;
        if self.tls {
            let stream = tls::connect(tcp, addr.ip())
                .await
                .map_err(|e| Failure::tls(format!("TLS handshake failed: {}", io_reason(&e))))?;
            D::talk(&self.spec, LineConn::new(stream)).await
        } else {
            D::talk(&self.spec, LineConn::new(tcp)).await
        }
    }
}

impl<D: Dialogue> Checker for LineCheck<D> {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.spec.negotiatetimeout, self.run()))
    }
}

/// The most lines of one multi-line `NNN-` reply (EHLO lists, FTP banners). A server that
/// keeps sending continuation lines is treated as broken rather than read until timeout.
const MAX_REPLY_LINES: usize = 256;

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

impl LineConn<TcpStream> {
    /// Connect to `addr` and read an FTP/SMTP greeting, which must be 2xx.
    pub async fn greeted(addr: SocketAddr) -> Result<LineConn<TcpStream>, Failure> {
        let mut conn = LineConn::new(connect_tcp(addr).await?);
        conn.greeting().await?;
        Ok(conn)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineConn<S> {
    pub fn new(stream: S) -> LineConn<S> {
        LineConn {
            io: BufReader::new(stream),
        }
    }

    /// The next line without its CR LF (or bare LF). End of stream is an error: every
    /// caller is waiting for an answer.
    pub async fn read_line(&mut self) -> Result<Vec<u8>, Failure> {
        let mut line = Vec::new();
        loop {
            let buf = self.io.fill_buf().await.map_err(io_failure)?;
            if buf.is_empty() {
                return Err(Failure::connect(if line.is_empty() {
                    "connection closed by server".to_owned()
                } else {
                    format!("connection closed by server in mid-line: {}", quote(&line))
                }));
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
                return Err(Failure::protocol(format!(
                    "line longer than {MAX_LINE} bytes from server"
                )));
            }
        }
        if line.len() > MAX_LINE {
            return Err(Failure::protocol(format!(
                "line longer than {MAX_LINE} bytes from server"
            )));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    /// Read an FTP/SMTP greeting, which must be 2xx.
    pub async fn greeting(&mut self) -> Result<(), Failure> {
        let greeting = self.read_reply().await?;
        if !greeting.is_ok() {
            return Err(Failure::protocol(format!("greeting: {}", greeting.line)));
        }
        Ok(())
    }

    /// Send one command line, CR LF appended.
    pub async fn send(&mut self, line: &str) -> Result<(), Failure> {
        let stream = self.io.get_mut();
        let mut data = Vec::with_capacity(line.len() + 2);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
        stream.write_all(&data).await.map_err(io_failure)?;
        stream.flush().await.map_err(io_failure)
    }

    /// One FTP/SMTP reply (RFC 959 §4.2, RFC 5321 §4.2): `NNN text`, or `NNN-text`
    /// continued until a line starting with the same `NNN `.
    pub async fn read_reply(&mut self) -> Result<Reply, Failure> {
        let first = self.read_line().await?;
        let code = reply_code(&first)
            .ok_or_else(|| Failure::protocol(format!("not a reply: {}", quote(&first))))?;
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
        Err(Failure::protocol(format!(
            "reply {code} longer than {MAX_REPLY_LINES} lines"
        )))
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
        assert!(
            conn.read_line()
                .await
                .unwrap_err()
                .reason
                .contains("longer than")
        );
    }

    #[tokio::test]
    async fn eof_is_an_error() {
        let (client, server) = tokio::io::duplex(1024);
        drop(server);
        let mut conn = LineConn::new(client);
        assert_eq!(
            conn.read_line().await.unwrap_err().reason,
            "connection closed by server"
        );
    }
}
