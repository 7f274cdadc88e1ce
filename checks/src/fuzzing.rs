//! Entry points for the fuzz targets in `fuzz/`: every decoder of the bytes a real server
//! sends a check, driven by bytes alone (no socket). Not an API: the targets call these,
//! nothing else should.
//!
//! Each function runs the checks' own code on `data` as the server's side of the
//! conversation (the check's writes go nowhere) and asserts what must hold whatever the
//! server sends; a panic here is a finding. The streams hand the data over in pieces of a
//! size taken from the input, as a network does, so the readers' buffer handling is
//! exercised, not just one big read.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use ldirectord_parsers::config::{CheckType, Receive, Service};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::proto::{Dialogue, LineConn};
use crate::spec::CheckSpec;

/// The server's bytes, handed out at most `piece` bytes per read; writes are dropped.
struct Replay<'a> {
    data: &'a [u8],
    piece: usize,
}

impl<'a> Replay<'a> {
    /// The first byte of `data` says the piece size (1 to 256 bytes); the rest is the data.
    fn new(data: &'a [u8]) -> Replay<'a> {
        match data.split_first() {
            Some((&first, rest)) => Replay {
                data: rest,
                piece: usize::from(first) + 1,
            },
            None => Replay { data, piece: 1 },
        }
    }
}

impl AsyncRead for Replay<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.piece.min(self.data.len()).min(buf.remaining());
        let (now, later) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

thread_local! {
    /// One runtime per fuzzing thread (the line checks' goodbye uses a timer).
    static RUNTIME: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime"),
    );
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| rt.borrow().block_on(future))
}

fn spec(service: Service) -> CheckSpec {
    let mut spec = CheckSpec::new(
        CheckType::Negotiate,
        service,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        1,
    );
    spec.login = "fuzz".into();
    spec.passwd = "secret".into();
    spec
}

/// An HTTP/1.1 response (the `http://` check's own reader): head, then body. The
/// second byte says whether the request was `HEAD` (bit 0) and the body cap (the rest).
pub fn http_response(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let head_request = flags & 1 == 1;
    let cap = usize::from(flags >> 1) * 64;
    let mut stream = Replay::new(rest);
    block_on(async {
        let mut response = crate::http::h1::Response::new(&mut stream);
        if let Ok(head) = response.head(head_request).await
            && let Ok(body) = response.body(&head, cap).await
        {
            assert!(
                body.len() <= cap,
                "body of {} bytes over the cap {cap}",
                body.len()
            );
        }
    });
}

/// An FTP control connection: greeting, login, `CWD`, `TYPE`, then `PASV` (or `EPSV`
/// when bit 0 of the first byte is set) and its port.
pub fn ftp_control(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let spec = spec(Service::Ftp);
    block_on(async {
        let mut conn = LineConn::new(Replay::new(rest));
        if conn.greeting().await.is_ok()
            && let Ok(port) = crate::ftp::login_and_passive(&mut conn, &spec, flags & 1 == 1).await
        {
            // The check connects there: a port 0 must never come out (EPSV refuses it).
            assert!(flags & 1 == 0 || port != 0);
        }
    });
}

/// An SMTP server: greeting, then `EHLO` (and `HELO` when refused).
pub fn smtp(data: &[u8]) {
    block_on(async {
        let mut conn = LineConn::new(Replay::new(data));
        if conn.greeting().await.is_ok() {
            let _ = crate::smtp::hello(&mut conn).await;
        }
    });
}

/// A POP3 server (with a login when bit 0 of the first byte is set).
pub fn pop(data: &[u8]) {
    line_dialogue::<crate::pop::Pop>(Service::Pop, data);
}

/// An IMAP server (with a login when bit 0 of the first byte is set).
pub fn imap(data: &[u8]) {
    line_dialogue::<crate::imap::Imap>(Service::Imap, data);
}

fn line_dialogue<D: Dialogue>(service: Service, data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut spec = spec(service);
    if flags & 1 == 0 {
        spec.login.clear();
    }
    block_on(async {
        let _ = D::talk(&spec, LineConn::new(Replay::new(rest))).await;
    });
}

/// An NNTP greeting (the first 64 bytes, as the check reads them).
pub fn nntp(data: &[u8]) {
    let greeting = &data[..data.len().min(crate::nntp::GREETING_BYTES)];
    let _ = crate::nntp::greeting_result(greeting);
}

/// A SIP reply: as a UDP datagram and as the first line read over TCP.
pub fn sip(data: &[u8]) {
    let _ = crate::sip::verdict(crate::sip::first_line(data));
    block_on(async {
        if let Ok(line) = LineConn::new(Replay::new(data)).read_line().await {
            let _ = crate::sip::verdict(&line);
        }
    });
}

/// A DNS response: as a UDP datagram and length-prefixed over TCP. The query ID is taken
/// from the response so that every well-formed message reaches the verdict.
pub fn dns(data: &[u8]) {
    let receive = Receive::new("^(127\\.0\\.0\\.1|localhost)$").expect("a valid pattern");
    let id = |at: usize| {
        data.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    if let Some(id) = id(0)
        && let Some(message) = crate::dns::udp_answer(data, id)
    {
        let _ = crate::dns::judge(&message, &receive);
    }
    if let Some(id) = id(3) {
        block_on(async {
            if let Ok(message) = crate::dns::read_tcp_answer(&mut Replay::new(data), id).await {
                let _ = crate::dns::judge(&message, &receive);
            }
        });
    }
}

/// A RADIUS reply, as sent, and signed with the secret as a server would (so the fuzzer
/// gets past the Response Authenticator to the attributes and the code).
pub fn radius(data: &[u8]) {
    const AUTH: [u8; 16] = *b"fuzz-request-aut";
    const SECRET: &[u8] = b"testing123";
    let Some(&identifier) = data.get(1) else {
        return;
    };
    let _ = crate::radius::judge(data, identifier, &AUTH, SECRET);
    let Some(len) = data
        .get(2..4)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    else {
        return;
    };
    if (20..=crate::radius::MAX_PACKET).contains(&len) && len <= data.len() {
        let mut signed = data.to_vec();
        crate::radius::sign_reply(&mut signed[..len], &AUTH, SECRET);
        let verdict = crate::radius::judge(&signed, identifier, &AUTH, SECRET);
        // Our identifier, a sane length: it is an answer, whatever it says.
        assert!(
            verdict.is_some(),
            "a signed reply was not taken as an answer"
        );
    }
}
