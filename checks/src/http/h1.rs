//! One HTTP/1.1 exchange on a fresh connection (plain, or TLS for `https://`), for the HTTP
//! checks: write the request, read the response head, then the body as the head frames it.
//!
//! Why not the general client for these too: a check is one request on one connection that
//! is closed right after, so a connection pool, a spawned connection task, header maps and
//! URL re-parsing per request are pure overhead. With ten thousand reals checked every
//! second that overhead was most of the director's user CPU. This reads into one buffer and
//! allocates little else; the request bytes of the first hop are built once per check.
//!
//! What it accepts, as LWP does:
//! - informational (`1xx`) heads before the real one are skipped;
//! - the body is framed by `Transfer-Encoding: chunked` (decoded; trailers ignored), else by
//!   `Content-Length`, else by the close of the connection; `HEAD`, `204` and `304` have
//!   none. Another transfer coding than chunked last means "until close" (RFC 9112 §6.3);
//! - at most [`MAX_HEAD`] bytes of head and [`MAX_HEADERS`] header lines; the body is read
//!   up to the caller's cap and the rest left unread.
//!
//! Errors are [`Failure`]s with short reasons (`the server closed the connection before
//! answering`, `invalid HTTP response: …`, `reading the body: …`).

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::check::Failure;

/// Largest response head read (status line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header lines in a head.
pub const MAX_HEADERS: usize = 100;
/// Most informational (`1xx`) heads skipped before the final one.
const MAX_INFORMATIONAL: usize = 8;
/// Longest chunk-size line (with extensions) accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4096;
/// The buffer's first size: most heads and small bodies fit. It doubles as needed.
const FIRST_BUFFER: usize = 2 * 1024;
/// Least room left in the buffer before a read.
const MIN_READ: usize = 1024;

/// The request head for `method target` with these header values. Header values must not
/// contain CR, LF or NUL (see [`valid_header_value`]); `target` comes from a parsed URL.
pub fn request(method: &str, target: &str, host: &str, user_agent: &str) -> Vec<u8> {
    let mut r = Vec::with_capacity(96 + target.len() + host.len() + user_agent.len());
    for part in [
        method,
        " ",
        target,
        " HTTP/1.1\r\nHost: ",
        host,
        "\r\nUser-Agent: ",
        user_agent,
        "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    ] {
        r.extend_from_slice(part.as_bytes());
    }
    r
}

/// Whether `value` can be sent as a header value as is.
pub fn valid_header_value(value: &str) -> bool {
    !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// The parts of a response head a check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// The `Location` header, when present and text.
    pub location: Option<String>,
    framing: Framing,
}

/// How the body after a head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A response being read from `stream`: the head is read by [`Response::head`], the body
/// (optionally) by [`Response::body`]. One buffer serves both.
pub struct Response<'s, S> {
    stream: &'s mut S,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
}

impl<'s, S: AsyncRead + Unpin> Response<'s, S> {
    pub fn new(stream: &'s mut S) -> Self {
        Response {
            stream,
            buf: Vec::with_capacity(FIRST_BUFFER),
            pos: 0,
        }
    }

    /// Read the final response head (skipping `1xx` ones). `head_request`: the request was
    /// `HEAD`, so no body follows whatever the head says.
    pub async fn head(&mut self, head_request: bool) -> Result<Head, Failure> {
        for _ in 0..=MAX_INFORMATIONAL {
            let head = self.one_head(head_request).await?;
            // 101 would switch protocols, which a check never asks for: treat it as final.
            if !(100..200).contains(&head.status) || head.status == 101 {
                return Ok(head);
            }
        }
        Err(Failure::protocol(format!(
            "more than {MAX_INFORMATIONAL} informational (1xx) responses"
        )))
    }

    async fn one_head(&mut self, head_request: bool) -> Result<Head, Failure> {
        loop {
            if let Some((head, len)) = parse_head(&self.buf[self.pos..], head_request)? {
                self.pos += len;
                return Ok(head);
            }
            if self.buf.len() - self.pos >= MAX_HEAD {
                return Err(Failure::protocol(format!(
                    "response head longer than {} KiB",
                    MAX_HEAD / 1024
                )));
            }
            if self.fill().await? == 0 {
                return Err(Failure::connect(if self.pos == self.buf.len() {
                    "the server closed the connection before answering"
                } else {
                    "the server closed the connection in the middle of the response head"
                }));
            }
        }
    }

    /// Read the body of `head`, at most `cap` bytes of it (the rest is left unread).
    pub async fn body(mut self, head: &Head, cap: usize) -> Result<Vec<u8>, Failure> {
        let result = match head.framing {
            Framing::Empty => Ok(Vec::new()),
            Framing::Length(n) => {
                let want = usize::try_from(n).unwrap_or(usize::MAX).min(cap);
                self.plain(want, true).await
            }
            Framing::UntilClose => self.plain(cap, false).await,
            Framing::Chunked => self.chunked(cap).await,
        };
        result.map_err(|e| e.context("reading the body: "))
    }

    /// `want` bytes, or up to `want` until the close when `exact` is false.
    async fn plain(&mut self, want: usize, exact: bool) -> Result<Vec<u8>, Failure> {
        while self.buf.len() - self.pos < want {
            if self.fill().await? == 0 {
                if exact {
                    return Err(Failure::connect(
                        "the connection closed before the end of the body",
                    ));
                }
                break;
            }
        }
        let end = (self.pos + want).min(self.buf.len());
        self.buf.truncate(end);
        self.buf.drain(..self.pos);
        Ok(std::mem::take(&mut self.buf))
    }

    async fn chunked(&mut self, cap: usize) -> Result<Vec<u8>, Failure> {
        let mut body = Vec::new();
        loop {
            let size = self.chunk_size().await?;
            if size == 0 {
                return Ok(body); // trailers are not read
            }
            let mut left = size;
            while left > 0 {
                if self.pos == self.buf.len() && self.fill().await? == 0 {
                    return Err(Failure::connect(
                        "the connection closed in the middle of a chunk",
                    ));
                }
                let available = self.buf.len() - self.pos;
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(available);
                let room = cap - body.len();
                body.extend_from_slice(&self.buf[self.pos..self.pos + take.min(room)]);
                self.pos += take;
                left -= take as u64;
                if body.len() == cap {
                    return Ok(body);
                }
            }
            self.chunk_end().await?;
        }
    }

    /// The size of the next chunk, from its line (`1a;ext=1\r\n`).
    async fn chunk_size(&mut self) -> Result<u64, Failure> {
        let line = self.line().await?;
        let digits = line.split(|&b| b == b';').next().unwrap_or_default();
        let digits = std::str::from_utf8(digits)
            .map(str::trim)
            .map_err(|_| Failure::protocol("invalid chunk size"))?;
        if digits.is_empty() || digits.len() > 16 {
            return Err(Failure::protocol(format!(
                "invalid chunk size {:?}",
                String::from_utf8_lossy(&line)
            )));
        }
        u64::from_str_radix(digits, 16)
            .map_err(|_| Failure::protocol(format!("invalid chunk size {digits:?}")))
    }

    /// The CRLF (or bare LF) after a chunk's data.
    async fn chunk_end(&mut self) -> Result<(), Failure> {
        while self.buf.len() - self.pos < 2 {
            if self.buf.get(self.pos) == Some(&b'\n') {
                break;
            }
            if self.fill().await? == 0 {
                return Err(Failure::connect(
                    "the connection closed in the middle of a chunk",
                ));
            }
        }
        let ending: &[u8] = match self.buf[self.pos] {
            b'\n' => b"\n",
            _ => b"\r\n",
        };
        if self.buf[self.pos..].starts_with(ending) {
            self.pos += ending.len();
            Ok(())
        } else {
            Err(Failure::protocol("missing line end after a chunk"))
        }
    }

    /// The next line without its `\r\n` (a bare `\n` is accepted too).
    async fn line(&mut self) -> Result<Vec<u8>, Failure> {
        let mut searched = 0;
        loop {
            let unread = &self.buf[self.pos..];
            if let Some(i) = unread[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + i;
                let line = unread[..end].strip_suffix(b"\r").unwrap_or(&unread[..end]);
                let line = line.to_vec();
                self.pos += end + 1;
                return Ok(line);
            }
            searched = unread.len();
            if searched > MAX_CHUNK_LINE {
                return Err(Failure::protocol("chunk size line too long"));
            }
            if self.fill().await? == 0 {
                return Err(Failure::connect(
                    "the connection closed in the middle of a chunk",
                ));
            }
        }
    }

    /// Read more into the buffer; returns how many bytes came (0 at the end). What was
    /// consumed is dropped first, so the buffer never holds more than the unread part.
    async fn fill(&mut self) -> Result<usize, Failure> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < MIN_READ {
            self.buf.reserve(self.buf.capacity().max(MIN_READ));
        }
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(crate::proto::io_failure)
    }
}

/// The status, location and framing of a parsed head.
/// The head at the start of `buf` and its length, or `None` while it is incomplete.
/// Apart from the async reader: the header array (3.2 KB) then lives on the stack during the
/// parse instead of in every in-flight check's future (a check's future was 7.4 KB).
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<(Head, usize)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Ok(Some((interpret(&parsed, head_request)?, len))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(Failure::protocol(format!("invalid HTTP response: {e}"))),
    }
}

fn interpret(parsed: &httparse::Response<'_, '_>, head_request: bool) -> Result<Head, Failure> {
    let status = parsed.code.unwrap_or_default();
    let mut location = None;
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("location") {
            location = std::str::from_utf8(h.value)
                .ok()
                .map(|v| v.trim().to_owned());
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for v in h.value.split(|&b| b == b',') {
                let n = std::str::from_utf8(v)
                    .ok()
                    .map(str::trim)
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| Failure::protocol("invalid Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(Failure::protocol("conflicting Content-Length headers"));
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding decides; a later header line comes after an earlier one.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    let framing = if head_request || matches!(status, 100..=199 | 204 | 304) {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    Ok(Head {
        status,
        location,
        framing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read one response from `bytes` delivered in pieces of `step` bytes.
    fn read(bytes: &[u8], step: usize, head_request: bool) -> Result<(Head, Vec<u8>), String> {
        let mut builder = tokio_test_reader(bytes, step);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut r = Response::new(&mut builder);
            let head = r.head(head_request).await.map_err(|f| f.reason)?;
            let body = r.body(&head, 16).await.map_err(|f| f.reason)?;
            Ok((head, body))
        })
    }

    /// A reader that hands out `bytes` at most `step` at a time.
    fn tokio_test_reader(bytes: &[u8], step: usize) -> impl AsyncRead + Unpin {
        let pieces: Vec<Vec<u8>> = bytes.chunks(step).map(<[u8]>::to_vec).collect();
        Pieces(pieces.into_iter().rev().collect())
    }

    struct Pieces(Vec<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if let Some(mut piece) = self.0.pop() {
                let n = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..n]);
                if n < piece.len() {
                    self.0.push(piece.split_off(n));
                }
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn every_step(bytes: &[u8], head_request: bool) -> Result<(Head, Vec<u8>), String> {
        let first = read(bytes, bytes.len().max(1), head_request);
        for step in 1..bytes.len() {
            assert_eq!(read(bytes, step, head_request), first, "pieces of {step}");
        }
        first
    }

    #[test]
    fn request_head_is_exact() {
        assert_eq!(
            request("GET", "/a?b", "10.0.0.1", "ua"),
            b"GET /a?b HTTP/1.1\r\nHost: 10.0.0.1\r\nUser-Agent: ua\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        assert!(valid_header_value("www.example.com"));
        assert!(!valid_header_value("a\r\nX-Evil: 1"));
    }

    #[test]
    fn content_length_frames_the_body() {
        let (head, body) = every_step(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKtrailing",
            false,
        )
        .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(body, b"OK");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=1\r\nOK\r\n3\r\n ok\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(every_step(r, false).unwrap().1, b"OK ok");
        // Chunked wins over Content-Length; bare LF line ends are accepted.
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\nOK\n0\n\n";
        assert_eq!(every_step(r, false).unwrap().1, b"OK");
    }

    #[test]
    fn bodies_are_capped() {
        // The cap (16 here) applies to every framing.
        let long = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n0123456789abcdefghij";
        assert_eq!(every_step(long, false).unwrap().1, b"0123456789abcdef");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n10\r\nabcdefghijklmnop\r\n";
        assert_eq!(every_step(chunked, false).unwrap().1, b"0123456789abcdef");
        let close = b"HTTP/1.0 200 OK\r\n\r\n0123456789abcdefghij";
        assert_eq!(every_step(close, false).unwrap().1, b"0123456789abcdef");
    }

    #[test]
    fn until_close_without_length() {
        let (_, body) = every_step(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nhello", false).unwrap();
        assert_eq!(body, b"hello");
        // An unknown coding last: until close, raw.
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nOK";
        assert_eq!(every_step(r, false).unwrap().1, b"2\r\nOK");
    }

    #[test]
    fn informational_heads_are_skipped() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx";
        let (head, body) = every_step(r, false).unwrap();
        assert_eq!((head.status, body.as_slice()), (404, &b"x"[..]));
    }

    #[test]
    fn endless_informational_heads_are_refused() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INFORMATIONAL + 1);
        let err = read(&r, 4096, false).unwrap_err();
        assert_eq!(err, "more than 8 informational (1xx) responses");
        let mut r = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INFORMATIONAL);
        r.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(read(&r, 4096, false).unwrap().0.status, 200);
    }

    #[test]
    fn no_body_for_head_204_and_304() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(every_step(r, true).unwrap().1, b"");
        for status in ["204 No Content", "304 Not Modified"] {
            let r = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\nhello");
            assert_eq!(every_step(r.as_bytes(), false).unwrap().1, b"");
        }
    }

    #[test]
    fn location_is_kept() {
        let r = b"HTTP/1.1 302 Found\r\nLocation:  /next \r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            every_step(r, false).unwrap().0.location.as_deref(),
            Some("/next")
        );
    }

    #[test]
    fn broken_responses_are_errors_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "the server closed the connection before answering"),
            (
                b"HTTP/1.1 200 OK\r\nContent-",
                "in the middle of the response head",
            ),
            (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "invalid HTTP response"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "conflicting Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nOK",
                "reading the body: the connection closed before the end of the body",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "reading the body: invalid chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nOK",
                "reading the body: the connection closed in the middle of a chunk",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOKxx",
                "reading the body: missing line end after a chunk",
            ),
        ];
        for (bytes, want) in cases {
            let err = every_step(bytes, false).unwrap_err();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut r = b"HTTP/1.1 200 OK\r\nX-Filler: ".to_vec();
        r.resize(MAX_HEAD + 100, b'a');
        let err = read(&r, 4096, false).unwrap_err();
        assert_eq!(err, "response head longer than 64 KiB");
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            r.extend_from_slice(b"X-A: b\r\n");
        }
        r.extend_from_slice(b"\r\n");
        let err = read(&r, 4096, false).unwrap_err();
        assert_eq!(err, "invalid HTTP response: too many headers");
    }
}
