//! Health checks for ldirectord-rs: pluggable async checkers that decide whether a real
//! server is up.
//!
//! - [`Checker`] is the one small trait: run once, answer up or down with a reason and the
//!   latency. A checker is built for one [`CheckSpec`] and may keep state between runs
//!   (the combined `checktype=N` does).
//! - [`CheckSpec`] is a check's identity as a value (kind, address, port, parameters):
//!   identical checks of the same real in several virtual services compare equal and run
//!   once. [`CheckSpec::for_real`] applies ldirectord's rules (§3 of the reference).
//! - [`build`] is the one place that maps `checktype=`/`service=` to a checker.
//! - One file per check kind. Every check is bounded as a whole by its timeout.
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ldirectord_parsers::config::{CheckType, Service};

mod spec;
pub use spec::CheckSpec;

pub mod combined;
pub mod connect;
pub mod dns;
pub mod external;
pub mod ftp;
pub mod http;
pub mod imap;
pub mod ldap;
pub mod mysql;
pub mod nntp;
pub mod pgsql;
pub mod ping;
pub mod pop;
pub mod radius;
pub mod scheduler;
pub mod simpletcp;
pub mod sip;
pub mod smtp;
mod tls;

/// A boxed future, so checkers can live behind `dyn Checker`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of one check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub up: bool,
    /// Why: `-` style detail as ldirectord's monitorfile gives it (HTTP status line, the
    /// body on a receive mismatch, `Connection refused`, `timed out after 5s`, ...).
    pub reason: String,
    /// Wall time of the run.
    pub latency: Duration,
}

impl Outcome {
    pub fn up(reason: impl Into<String>, latency: Duration) -> Outcome {
        Outcome {
            up: true,
            reason: reason.into(),
            latency,
        }
    }
    pub fn down(reason: impl Into<String>, latency: Duration) -> Outcome {
        Outcome {
            up: false,
            reason: reason.into(),
            latency,
        }
    }
}

/// A health check bound to one target and its parameters.
pub trait Checker: Send + Sync + std::fmt::Debug {
    /// Run the check once. Must finish within the check's timeout (as a whole: connect,
    /// TLS, request, body, login, query) and must never panic on anything the server sends.
    fn check(&self) -> BoxFuture<'_, Outcome>;
}

/// Why a checker could not be built from a spec: a configuration problem the operator
/// must fix, reported at load time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// `service=oracle`: no pure-Rust Oracle client exists.
    #[error(
        "service=oracle is not supported by ldirectord-rs (no Oracle client is built in); \
         use checktype=external with a checkcommand that runs your own Oracle probe"
    )]
    OracleUnsupported,
    /// Any other invalid combination, with a message for the operator.
    #[error("{0}")]
    Invalid(String),
}

/// Build the checker for `spec`: the one place that maps `checktype=`/`service=` to a
/// checker. `Ok(None)` for `checktype=off`, which checks nothing and changes nothing.
pub fn build(spec: &CheckSpec) -> Result<Option<Arc<dyn Checker>>, BuildError> {
    use ldirectord_parsers::config::Protocol;
    let checker: Arc<dyn Checker> = match spec.checktype {
        CheckType::Off => return Ok(None),
        CheckType::On => Arc::new(AlwaysUp),
        // Stock: `connect` on a UDP virtual is an ICMP ping.
        CheckType::Connect if spec.protocol == Protocol::Udp => ping::build(spec)?,
        CheckType::Connect => connect::build(spec)?,
        CheckType::Ping => ping::build(spec)?,
        CheckType::External | CheckType::ExternalPerl => external::build(spec)?,
        CheckType::Negotiate => negotiate(spec)?,
        CheckType::Combined(n) => combined::build(spec, n, negotiate(spec)?)?,
    };
    Ok(Some(checker))
}

/// The negotiate checker for the spec's service.
fn negotiate(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    Ok(match spec.service {
        Service::None => Arc::new(AlwaysUp),
        Service::Http | Service::Https | Service::HttpProxy => http::build(spec)?,
        Service::Ftp => ftp::build(spec)?,
        Service::Smtp | Service::Submission => smtp::build(spec)?,
        Service::Pop | Service::Pops => pop::build(spec)?,
        Service::Imap | Service::Imaps => imap::build(spec)?,
        Service::Ldap | Service::Ldaps => ldap::build(spec)?,
        Service::Dns => dns::build(spec)?,
        Service::Mysql => mysql::build(spec)?,
        Service::Pgsql => pgsql::build(spec)?,
        Service::Oracle => return Err(BuildError::OracleUnsupported),
        Service::Radius => radius::build(spec)?,
        Service::Sip => sip::build(spec)?,
        Service::Simpletcp => simpletcp::build(spec)?,
        Service::Nntp => nntp::build(spec)?,
    })
}

/// `checktype=on` and `service=none`: always up, nothing sent.
#[derive(Debug)]
struct AlwaysUp;

impl Checker for AlwaysUp {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async { Outcome::up("-", Duration::ZERO) })
    }
}

/// Run `fut` bounded by `timeout` as a whole; on expiry the future is dropped (closing its
/// sockets) and the outcome is down with `timed out after …`.
pub async fn bounded<F>(timeout: Duration, fut: F) -> Outcome
where
    F: Future<Output = Result<String, String>>,
{
    let start = tokio::time::Instant::now();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(reason)) => Outcome::up(reason, start.elapsed()),
        Ok(Err(reason)) => Outcome::down(reason, start.elapsed()),
        Err(_) => Outcome::down(
            format!("timed out after {}", humanize(timeout)),
            start.elapsed(),
        ),
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The address to connect to for a real server, as a socket address.
pub fn socket_addr(ip: IpAddr, port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::new(ip, port)
}
