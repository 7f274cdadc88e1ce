//! `service=http`, `https` and `http_proxy` negotiate checks, as stock's libwww-perl
//! check does them (§3.4, §3.6):
//!
//! - one `GET` (or `HEAD`, `httpmethod=`) of the URL computed by [`CheckSpec::for_real`]
//!   (`http://RIP:PORT/request`), with `Host: <virtualhost or RIP>` (never a port);
//! - redirects are followed up to 7 times (LWP's limit); after a redirect the Host header
//!   comes from the new URL, as LWP does;
//! - up iff the final status is 2xx and, when `receive=` is set, it matches the body bytes
//!   (Perl semantics, [`Receive::is_match`]). The body is read up to [`MAX_BODY`] (1 MiB);
//!   `receive` is matched against that much. No content decoding: the raw body, as stock;
//! - the whole exchange (connect, TLS, every redirect, the body) is bounded by
//!   `negotiatetimeout` (30 s unless set, §2.8), as stock's one alarm around the LWP request
//!   bounds it (reference §3.4). keepalived's `HTTP_GET` bounds each step by
//!   `connect_timeout` instead, so a slow but progressing exchange on a busy host can fail
//!   here and pass there: that is stock's meaning, kept (issue 17);
//! - every check opens a fresh connection and sends `Connection: close`; proxies from the
//!   environment are never used (`HTTP_PROXY` must not reroute health checks);
//! - every hop, `http://` or `https://`, goes through one lean HTTP/1.1 exchange ([`h1`])
//!   on a socket opened by [`crate::route::tcp`] (so a check through the forwarding path
//!   carries its mark), TLS by rustls ([`crate::tls`]) for `https://`: one write, one
//!   buffer, and the connection closed with a reset once the answer is read (or the check
//!   gives up), so neither the director nor the real server keeps a TIME_WAIT socket per
//!   check. (reqwest did the `https://` hops before `checkpath=forwarding` needed them on a
//!   marked socket; one code path for both schemes is simpler than a custom connector.)
//!
//! `https`: certificates are **not** verified by default (ldirectord asks LWP for
//! `verify_hostname => 0`); no SNI is sent, as the URL host is an IP. Extensions:
//! `tls_verify` verifies the chain against the system roots (what stock does in practice on
//! Debian 12, still without a hostname check); with `tls_sni` as well the virtualhost is
//! sent as SNI *and* checked against the certificate. `tls_sni` alone sends the SNI only.
//!
//! `http_proxy`: the real server is an HTTP proxy at RIP:checkport and the request is the
//! absolute `http://` URL given in `request=`; no Host header is forced.
//!
//! The TLS configuration is built once per verification setting and shared by every check
//! that uses it.
//!
//! Reasons: the status line (`200 OK`) when up; the status line (`500 Internal Server
//! Error`), the start of the body (on a 2xx whose body does not match `receive`),
//! `Can't connect to 127.0.0.1:8080 (Connection refused)`, `Can't connect to …
//! (certificate verify failed: …)`, `bad response from …: …` or `timed out after 30s` when
//! down.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use ldirectord_parsers::config::{HttpMethod, Receive, Service, ip_text};
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::connect::NO_PORT;
use crate::proto::{io_failure, io_reason};
use crate::spec::CheckSpec;
use crate::tls::{self, Verify};

pub(crate) mod h1;

/// Most body bytes read and matched against `receive`.
pub const MAX_BODY: usize = 1024 * 1024;
/// Redirects followed, as LWP's default `max_redirect`.
pub const MAX_REDIRECTS: usize = 7;
/// Characters of the body shown in the reason when `receive` does not match.
const BODY_IN_REASON: usize = 200;
/// Sent as User-Agent. It keeps the `libwww-perl` word, because web servers are often
/// configured to recognise (and not log) ldirectord's checks by it.
const USER_AGENT: &str = concat!(
    "ldirectord-rs/",
    env!("CARGO_PKG_VERSION"),
    " (libwww-perl compatible)"
);

/// The HTTP-family checker for `spec`.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    let Some(port) = spec.port.filter(|&p| p != 0) else {
        return Ok(Arc::new(Http::broken(
            NO_PORT.to_owned(),
            spec.negotiatetimeout,
        )));
    };
    let real = SocketAddr::new(spec.ip, port);
    let proxy = spec.service == Service::HttpProxy;
    let url_text = spec.url.clone().unwrap_or_default();
    let mut url = match Url::parse(&url_text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(_) | Err(_) if proxy => {
            // Stock builds the same URL and its check then fails every time.
            return Ok(Arc::new(Http::broken(
                format!(
                    "service=http_proxy needs an absolute http:// URL in request= (got {url_text:?})"
                ),
                spec.negotiatetimeout,
            )));
        }
        _ => {
            return Ok(Arc::new(Http::broken(
                format!("invalid URL {url_text:?}"),
                spec.negotiatetimeout,
            )));
        }
    };
    let verify = match (spec.tls_verify, spec.tls_sni) {
        (false, _) => Verify::Off,
        (true, false) => Verify::Chain,
        (true, true) => Verify::Full,
    };
    let mut pin = None;
    if !proxy
        && spec.tls_sni
        && url.scheme() == "https"
        && let Some(vhost) = spec.virtualhost.as_deref()
        && url.host_str() == Some(ip_text(spec.ip).as_str())
        && url.set_host(Some(vhost)).is_ok()
        && let Some(Host::Domain(name)) = url.host()
    {
        // SNI follows the URL host: ask for the virtualhost and pin it to the real.
        pin = Some((name.to_owned(), spec.ip));
    }
    let tls = tls::verifying(verify).map_err(BuildError::Invalid)?;
    let host_header = if proxy {
        None
    } else {
        Some(spec.virtualhost.clone().unwrap_or_else(|| ip_text(spec.ip)))
    };
    if let Some(host) = &host_header
        && !h1::valid_header_value(host)
    {
        return Ok(Arc::new(Http::broken(
            format!("virtualhost {host:?} cannot be sent as a Host header"),
            spec.negotiatetimeout,
        )));
    }
    let mut target = Target {
        tls,
        first_request: Vec::new(),
        url,
        real,
        proxy,
        pin,
        method: spec.httpmethod,
        host_header,
        receive: spec.receive.clone(),
    };
    target.first_request = target.request(&target.url, 0);
    Ok(Arc::new(Http {
        target: Ok(target),
        timeout: spec.negotiatetimeout,
    }))
}

/// One HTTP check, or the reason it can never succeed.
#[derive(Debug)]
struct Http {
    target: Result<Target, String>,
    timeout: Duration,
}

#[derive(Debug)]
struct Target {
    /// For `https://` hops: how the certificate is checked (shared per setting).
    tls: Arc<ClientConfig>,
    /// The request bytes of the first hop (built once).
    first_request: Vec<u8>,
    url: Url,
    /// The real server (or proxy), for connect-error reasons.
    real: SocketAddr,
    /// http_proxy: every plain request goes to `real` with the absolute URL.
    proxy: bool,
    /// `tlssni`: the virtualhost put in the URL (so it is the SNI name) and the real's
    /// address it stands for.
    pin: Option<(String, IpAddr)>,
    method: HttpMethod,
    /// `None` for http_proxy: the Host comes from the absolute URL.
    host_header: Option<String>,
    receive: Option<Receive>,
}

/// What one hop answered.
struct Reply {
    status: StatusCode,
    /// Where a redirect points, when the status is 3xx and a Location came.
    location: Option<String>,
    /// Up to [`MAX_BODY`] bytes; empty for `HEAD` and for redirects that will be followed.
    body: Vec<u8>,
}

impl Http {
    fn broken(reason: String, timeout: Duration) -> Http {
        Http {
            target: Err(reason),
            timeout,
        }
    }
}

impl Checker for Http {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            match &self.target {
                Err(reason) => Outcome::down(reason.clone(), Duration::ZERO),
                Ok(t) => bounded(self.timeout, t.run()).await,
            }
        })
    }
}

impl Target {
    /// Whether a hop to `url` goes through the real as an HTTP proxy: http_proxy's plain
    /// hops (an `https://` redirect goes to its host directly).
    fn via_proxy(&self, url: &Url) -> bool {
        self.proxy && url.scheme() == "http"
    }

    /// Who the connection goes to, for reasons: the proxy (the real) for http_proxy, else
    /// the URL's host and port (the real, unless a redirect or absolute URL points away).
    fn peer(&self, url: &Url) -> String {
        match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) if !self.via_proxy(url) => format!("{host}:{port}"),
            _ => self.real.to_string(),
        }
    }

    async fn run(&self) -> Result<String, Failure> {
        // Borrowed until a redirect: most checks never copy the URL.
        let mut url = Cow::Borrowed(&self.url);
        let mut hops = 0;
        let reply = loop {
            let reply = self.fetch(&url, hops).await?;
            let next = reply.location.as_deref().and_then(|l| url.join(l).ok());
            match next {
                Some(next) if hops < MAX_REDIRECTS && matches!(next.scheme(), "http" | "https") => {
                    hops += 1;
                    url = Cow::Owned(next);
                }
                _ => break reply,
            }
        };
        let line = status_line(reply.status);
        if !reply.status.is_success() {
            return Err(Failure::protocol(line));
        }
        match &self.receive {
            Some(r) if !r.is_match(&reply.body) => {
                Err(Failure::mismatch(body_excerpt(&reply.body)))
            }
            _ => Ok(line),
        }
    }

    /// The Host header of hop `hops`: the virtualhost or real on the first (never with a
    /// port), after a redirect the new URL's host (with its port when not the default), as
    /// LWP does.
    fn host_for(&self, url: &Url, hops: usize) -> String {
        match (&self.host_header, hops) {
            (Some(host), 0) => host.clone(),
            _ => {
                let host = url.host_str().unwrap_or_default();
                match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                }
            }
        }
    }

    /// The request bytes of a hop.
    fn request(&self, url: &Url, hops: usize) -> Vec<u8> {
        let target = if self.via_proxy(url) {
            &url[..Position::AfterQuery]
        } else {
            &url[Position::BeforePath..Position::AfterQuery]
        };
        let method = match self.method {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        };
        h1::request(method, target, &self.host_for(url, hops), USER_AGENT)
    }

    /// Where a hop connects: the proxy, the real for the pinned virtualhost, or the URL's
    /// host and port.
    async fn address(&self, url: &Url) -> Result<SocketAddr, Failure> {
        if self.via_proxy(url) {
            return Ok(self.real);
        }
        let port = url.port_or_known_default().unwrap_or(80);
        match url.host() {
            Some(Host::Ipv4(ip)) => Ok(SocketAddr::new(ip.into(), port)),
            Some(Host::Ipv6(ip)) => Ok(SocketAddr::new(ip.into(), port)),
            Some(Host::Domain(name)) => match &self.pin {
                Some((pinned, ip)) if pinned == name => Ok(SocketAddr::new(*ip, port)),
                _ => tokio::net::lookup_host((name, port))
                    .await
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .ok_or_else(|| {
                        Failure::connect(format!(
                            "Can't connect to {name}:{port} (cannot resolve {name})"
                        ))
                    }),
            },
            None => Err(Failure::other(format!("invalid URL {}", url.as_str()))),
        }
    }

    /// One hop over a fresh connection (through [`crate::route::tcp`], so a check through
    /// the forwarding path carries its mark), TLS for `https://`, then the HTTP/1.1
    /// exchange. The connection is closed with a reset (no TIME_WAIT on either side)
    /// whatever happens.
    async fn fetch(&self, url: &Url, hops: usize) -> Result<Reply, Failure> {
        let addr = self.address(url).await?;
        let stream = crate::route::tcp(addr).await.map_err(|e| {
            Failure::connect(format!(
                "Can't connect to {} ({})",
                self.peer(url),
                io_reason(&e)
            ))
        })?;
        let _ = stream.set_zero_linger();
        let built;
        let request = if hops == 0 {
            self.first_request.as_slice()
        } else {
            built = self.request(url, hops);
            built.as_slice()
        };
        if url.scheme() == "https" {
            // Boxed: the TLS state is large and would make every plain check's future as
            // large.
            Box::pin(async {
                let tls = self.handshake(stream, url).await?;
                self.exchange(LenientEof(tls), url, request).await
            })
            .await
        } else {
            self.exchange(stream, url, request).await
        }
    }

    /// The TLS handshake of an `https://` hop. The server name is the URL's host: an
    /// address (no SNI, as LWP sends none for one) or a name (sent as SNI; the
    /// virtualhost with `tlssni`).
    async fn handshake(
        &self,
        stream: TcpStream,
        url: &Url,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
        let name = match url.host() {
            Some(Host::Ipv4(ip)) => ServerName::IpAddress(IpAddr::V4(ip).into()),
            Some(Host::Ipv6(ip)) => ServerName::IpAddress(IpAddr::V6(ip).into()),
            Some(Host::Domain(name)) => ServerName::try_from(name.to_owned()).map_err(|_| {
                Failure::other(format!("{name:?} cannot be sent as a TLS server name"))
            })?,
            None => return Err(Failure::other(format!("invalid URL {}", url.as_str()))),
        };
        TlsConnector::from(self.tls.clone())
            .connect(name, stream)
            .await
            .map_err(|e| handshake_failure(&e, &self.peer(url)))
    }

    /// Write `request` on `stream` and read the answer.
    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        url: &Url,
        request: &[u8],
    ) -> Result<Reply, Failure> {
        let peer = || self.peer(url);
        stream
            .write_all(request)
            .await
            .map_err(|e| io_failure(e).context(&format!("bad response from {}: ", peer())))?;
        let head_request = self.method == HttpMethod::Head;
        let mut response = h1::Response::new(&mut stream);
        let head = response
            .head(head_request)
            .await
            .map_err(|e| e.context(&format!("bad response from {}: ", peer())))?;
        let status = StatusCode::from_u16(head.status).map_err(|_| {
            Failure::protocol(format!("bad response from {}: invalid status code", peer()))
        })?;
        let location = head.location.clone().filter(|_| status.is_redirection());
        let body = if head_request || location.is_some() {
            Vec::new()
        } else {
            response.body(&head, MAX_BODY).await?
        };
        Ok(Reply {
            status,
            location,
            body,
        })
    }
}

/// A TLS stream whose peer may close the connection without `close_notify`: that is the
/// end of the data, as for LWP, instead of an error (a body framed by the close would
/// otherwise never end well; a body cut short is still caught by its framing).
struct LenientEof<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for LenientEof<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LenientEof<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `200 OK`, `500 Internal Server Error`, or just the code when it has no standard phrase.
fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(phrase) => format!("{} {phrase}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The start of a body, on one line, for a receive mismatch.
fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = text.chars().take(BODY_IN_REASON).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    if out.is_empty() {
        "receive did not match the (empty) body".to_owned()
    } else {
        out
    }
}

/// A failed handshake as LWP words it: `Can't connect to HOST:PORT (why)`, the
/// certificate's fault spelled out.
fn handshake_failure(e: &io::Error, peer: &str) -> Failure {
    match find_tls_error(e) {
        Some(tls) => {
            let what = match &tls {
                rustls::Error::InvalidCertificate(c) => {
                    format!("certificate verify failed: {}", cert_error(c))
                }
                other => format!("TLS: {other}"),
            };
            Failure::tls(format!("Can't connect to {peer} ({what})"))
        }
        None => Failure::connect(format!("Can't connect to {peer} ({})", io_reason(e))),
    }
}

fn cert_error(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "unknown issuer".to_owned(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired".to_owned(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "not valid for the name".to_owned()
        }
        other => {
            let text = format!("{other:?}");
            // `Other(OtherError(CaUsedAsEndEntity))` reads better as `CaUsedAsEndEntity`.
            match text
                .strip_prefix("Other(OtherError(")
                .and_then(|t| t.strip_suffix("))"))
            {
                Some(inner) => inner.to_owned(),
                None => text,
            }
        }
    }
}

/// The rustls error somewhere in `e`'s chain. tokio-rustls and the connector wrap it in
/// (possibly nested) io::Errors, whose `source()` skips the wrapped error, hence `get_ref`.
fn find_tls_error(e: &(dyn StdError + 'static)) -> Option<rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t.clone());
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && let Some(t) = find_tls_error(inner)
    {
        return Some(t);
    }
    e.source().and_then(find_tls_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_line(StatusCode::OK), "200 OK");
        assert_eq!(
            status_line(StatusCode::INTERNAL_SERVER_ERROR),
            "500 Internal Server Error"
        );
        assert_eq!(status_line(StatusCode::from_u16(599).unwrap()), "599");
    }

    #[test]
    fn body_excerpts_are_one_short_line() {
        assert_eq!(body_excerpt(b"ERROR\n"), "ERROR");
        assert_eq!(body_excerpt(b"a\r\nb"), "a b");
        let long = vec![b'x'; 1000];
        let e = body_excerpt(&long);
        assert_eq!(e.chars().count(), BODY_IN_REASON + 1);
        assert!(e.ends_with('…'));
        assert_eq!(body_excerpt(b""), "receive did not match the (empty) body");
    }

    /// A TLS peer that closes without `close_notify` ends the data; other errors stay.
    #[tokio::test]
    async fn a_close_without_close_notify_is_the_end_of_the_data() {
        use tokio::io::AsyncReadExt;
        struct Failing(io::ErrorKind);
        impl AsyncRead for Failing {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(Err(self.0.into()))
            }
        }
        let mut buf = [0u8; 8];
        let eof = LenientEof(Failing(io::ErrorKind::UnexpectedEof));
        assert_eq!(Box::pin(eof).read(&mut buf).await.unwrap(), 0);
        let reset = LenientEof(Failing(io::ErrorKind::ConnectionReset));
        assert!(Box::pin(reset).read(&mut buf).await.is_err());
    }

    /// Every in-flight check holds its future: at 10,000 reals a few thousand are in flight
    /// at once, so its size is memory per real (issue 17; 7,448 bytes while the header
    /// array lived in it, 1,432 since).
    #[tokio::test]
    async fn an_in_flight_check_is_small() {
        use ldirectord_parsers::config::CheckType;
        let ip = "127.0.0.1".parse().unwrap();
        let spec = crate::CheckSpec::new(CheckType::Negotiate, Service::Http, ip, 9);
        let checker = build(&spec).unwrap();
        let future = checker.check();
        let size = std::mem::size_of_val(&*future);
        assert!(size <= 2048, "an HTTP check's future is {size} bytes");
    }
}
