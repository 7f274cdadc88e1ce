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
//! - plain `http://` hops go through a lean HTTP/1.1 exchange ([`h1`]): one write, one
//!   buffer, and the connection closed with a reset once the answer is read (or the check
//!   gives up), so neither the director nor the real server keeps a TIME_WAIT socket per
//!   check. `https://` hops go through a shared reqwest client (rustls).
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
//! Clients (connector, TLS configuration) are built once per distinct client-level setting
//! and shared by every check that uses it; per-check settings go on the request.
//!
//! Reasons: the status line (`200 OK`) when up; the status line (`500 Internal Server
//! Error`), the start of the body (on a 2xx whose body does not match `receive`),
//! `Can't connect to 127.0.0.1:8080 (Connection refused)`, `Can't connect to …
//! (certificate verify failed: …)`, `bad response from …: …` or `timed out after 30s` when
//! down.

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use ldirectord_parsers::config::{HttpMethod, Receive, Service, ip_text};
use reqwest::header::{CONNECTION, HOST, LOCATION};
use reqwest::{Client, Method, StatusCode, Url, redirect};
use rustls::CertificateError;
use tokio::io::AsyncWriteExt;
use url::{Host, Position};

use crate::check::{BoxFuture, BuildError, Checker, Failure, FailureClass, Outcome, bounded};
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
    let mut key = ClientKey {
        verify,
        proxy: None,
        resolve: None,
    };
    if proxy {
        key.proxy = Some(format!("http://{}:{port}", ip_text(spec.ip)));
    } else if spec.tls_sni
        && url.scheme() == "https"
        && let Some(vhost) = spec.virtualhost.as_deref()
        && url.host_str() == Some(ip_text(spec.ip).as_str())
    {
        // SNI follows the URL host: ask for the virtualhost and pin it to the real.
        if url.set_host(Some(vhost)).is_ok() {
            key.resolve = Some((
                vhost.to_owned(),
                SocketAddr::new(spec.ip, url.port_or_known_default().unwrap_or(port)),
            ));
        }
    }
    let client = shared_client(&key).map_err(BuildError::Invalid)?;
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
    let method = match spec.httpmethod {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
    };
    let mut target = Target {
        client,
        first_request: None,
        url,
        real,
        proxy,
        method,
        host_header,
        receive: spec.receive.clone(),
    };
    if target.url.scheme() == "http" {
        target.first_request = Some(target.plain_request(&target.url, 0));
    }
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
    /// For `https://` hops (and `https://` redirects of http_proxy checks).
    client: Client,
    /// The request bytes of the first hop when it is plain `http://` (built once).
    first_request: Option<Vec<u8>>,
    url: Url,
    /// The real server (or proxy), for connect-error reasons.
    real: SocketAddr,
    /// http_proxy: every plain request goes to `real` with the absolute URL.
    proxy: bool,
    method: Method,
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
    /// Who the connection goes to, for reasons: the proxy (the real) for http_proxy, else
    /// the URL's host and port (the real, unless a redirect or absolute URL points away).
    fn peer(&self, url: &Url) -> String {
        match (
            self.host_header.is_none(),
            url.host_str(),
            url.port_or_known_default(),
        ) {
            (false, Some(host), Some(port)) => format!("{host}:{port}"),
            _ => self.real.to_string(),
        }
    }

    async fn run(&self) -> Result<String, Failure> {
        // Borrowed until a redirect: most checks never copy the URL.
        let mut url = Cow::Borrowed(&self.url);
        let mut hops = 0;
        let reply = loop {
            let reply = if url.scheme() == "http" {
                self.fetch_plain(&url, hops).await?
            } else {
                // Boxed: reqwest's future is large and would make every plain check's
                // future as large.
                Box::pin(self.fetch_tls(&url, hops)).await?
            };
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

    /// The request bytes of a plain `http://` hop.
    fn plain_request(&self, url: &Url, hops: usize) -> Vec<u8> {
        let target = if self.proxy {
            &url[..Position::AfterQuery]
        } else {
            &url[Position::BeforePath..Position::AfterQuery]
        };
        h1::request(
            self.method.as_str(),
            target,
            &self.host_for(url, hops),
            USER_AGENT,
        )
    }

    /// Where a plain hop connects: the proxy, or the URL's host and port.
    async fn plain_address(&self, url: &Url) -> Result<SocketAddr, Failure> {
        if self.proxy {
            return Ok(self.real);
        }
        let port = url.port_or_known_default().unwrap_or(80);
        match url.host() {
            Some(Host::Ipv4(ip)) => Ok(SocketAddr::new(ip.into(), port)),
            Some(Host::Ipv6(ip)) => Ok(SocketAddr::new(ip.into(), port)),
            Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or_else(|| {
                    Failure::connect(format!(
                        "Can't connect to {name}:{port} (cannot resolve {name})"
                    ))
                }),
            None => Err(Failure::other(format!("invalid URL {}", url.as_str()))),
        }
    }

    /// One `http://` hop over a fresh connection, by the lean HTTP/1.1 client. The
    /// connection is closed with a reset (no TIME_WAIT on either side) whatever happens.
    async fn fetch_plain(&self, url: &Url, hops: usize) -> Result<Reply, Failure> {
        let peer = || self.peer(url);
        let addr = self.plain_address(url).await?;
        let mut stream = crate::route::tcp(addr).await.map_err(|e| {
            Failure::connect(format!("Can't connect to {} ({})", peer(), io_reason(&e)))
        })?;
        let _ = stream.set_zero_linger();
        let built;
        let request = match (&self.first_request, hops) {
            (Some(first), 0) => first.as_slice(),
            _ => {
                built = self.plain_request(url, hops);
                built.as_slice()
            }
        };
        stream
            .write_all(request)
            .await
            .map_err(|e| io_failure(e).context(&format!("bad response from {}: ", peer())))?;
        let head_request = self.method == Method::HEAD;
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

    /// One `https://` hop through the shared reqwest client.
    async fn fetch_tls(&self, url: &Url, hops: usize) -> Result<Reply, Failure> {
        let mut req = self
            .client
            .request(self.method.clone(), url.clone())
            .header(CONNECTION, "close");
        if hops == 0
            && let Some(host) = &self.host_header
        {
            req = req.header(HOST, host);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| send_failure(&e, &self.peer(url)))?;
        let status = resp.status();
        let location = status
            .is_redirection()
            .then(|| resp.headers().get(LOCATION))
            .flatten()
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = if self.method == Method::HEAD || location.is_some() {
            Vec::new()
        } else {
            read_body(&mut resp).await?
        };
        Ok(Reply {
            status,
            location,
            body,
        })
    }
}

/// Read the body up to [`MAX_BODY`] bytes; the rest is left unread (the connection is
/// dropped with the response).
async fn read_body(resp: &mut reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while body.len() < MAX_BODY {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(MAX_BODY - body.len());
                body.extend_from_slice(&chunk[..take]);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Failure::new(
                    transport_class(&e),
                    format!("reading the body: {}", innermost(&e)),
                ));
            }
        }
    }
    Ok(body)
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

/// A reqwest error as LWP would word it: `Can't connect to HOST:PORT (why)` for connect
/// and TLS failures, `bad response from HOST:PORT: why` for the rest.
fn send_failure(e: &reqwest::Error, peer: &str) -> Failure {
    if let Some(tls) = find_tls_error(e) {
        let what = match &tls {
            rustls::Error::InvalidCertificate(c) => {
                format!("certificate verify failed: {}", cert_error(c))
            }
            other => format!("TLS: {other}"),
        };
        return Failure::tls(format!("Can't connect to {peer} ({what})"));
    }
    if e.is_connect() {
        return Failure::connect(format!("Can't connect to {peer} ({})", innermost(e)));
    }
    Failure::new(
        transport_class(e),
        format!("bad response from {peer}: {}", innermost(e)),
    )
}

/// `connect` when an I/O error ends `e`'s chain (reset, closed), else `protocol`.
fn transport_class(e: &(dyn StdError + 'static)) -> FailureClass {
    if last_cause(e).is::<std::io::Error>() {
        FailureClass::Connect
    } else {
        FailureClass::Protocol
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

/// The most specific message in an error chain, io errors without `(os error N)`.
fn innermost(e: &(dyn StdError + 'static)) -> String {
    let last = last_cause(e);
    match last.downcast_ref::<std::io::Error>() {
        Some(io) => io_reason(io),
        None => last.to_string(),
    }
}

/// The end of `e`'s source chain.
fn last_cause<'a>(e: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last
}

// --- clients -----------------------------------------------------------------------

/// Everything that has to be fixed when a reqwest client is built.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    verify: Verify,
    /// http_proxy: the real server as proxy.
    proxy: Option<String>,
    /// tls_sni: the virtualhost pinned to the real's address.
    resolve: Option<(String, SocketAddr)>,
}

/// Every client built, by setting. Never pruned: there is one entry per distinct setting
/// of the configuration(s) loaded, a handful in practice.
static CLIENTS: LazyLock<Mutex<HashMap<ClientKey, Client>>> = LazyLock::new(Default::default);

/// The client for `key`, built on first use and shared afterwards.
fn shared_client(key: &ClientKey) -> Result<Client, String> {
    let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(key) {
        return Ok(c.clone());
    }
    let client = build_client(key)?;
    clients.insert(key.clone(), client.clone());
    Ok(client)
}

fn build_client(key: &ClientKey) -> Result<Client, String> {
    let mut b = Client::builder()
        .user_agent(USER_AGENT)
        .http1_only()
        // A fresh connection per check: an idle pooled one would hide a dead listener.
        .pool_max_idle_per_host(0)
        // Followed by hand, so the Host header can change like LWP's.
        .redirect(redirect::Policy::none())
        .tls_backend_preconfigured(tls::verifying(key.verify)?);
    b = match &key.proxy {
        Some(p) => b.proxy(reqwest::Proxy::http(p).map_err(|e| format!("invalid proxy {p}: {e}"))?),
        None => b.no_proxy(),
    };
    if let Some((name, addr)) = &key.resolve {
        b = b.resolve(name, *addr);
    }
    b.build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", innermost(&e)))
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

    #[test]
    fn clients_are_built_once_per_setting() {
        // Keys no other test uses, so the parallel test threads cannot interfere.
        let a = ClientKey {
            verify: Verify::Off,
            proxy: Some("http://127.0.0.251:3128".into()),
            resolve: None,
        };
        let b = ClientKey {
            verify: Verify::Chain,
            proxy: Some("http://127.0.0.251:3128".into()),
            resolve: None,
        };
        let cached = |k: &ClientKey| CLIENTS.lock().unwrap().contains_key(k);
        assert!(!cached(&a) && !cached(&b));
        shared_client(&a).unwrap();
        assert!(cached(&a) && !cached(&b));
        shared_client(&a).unwrap();
        shared_client(&b).unwrap();
        assert!(cached(&b));
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
