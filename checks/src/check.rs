//! The vocabulary every check speaks: the [`Checker`] trait, the [`Outcome`] of one run with
//! its [`Verdict`], [`bounded`] (a check's timeout over the whole exchange) and
//! [`BuildError`] (a configuration that cannot be checked).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so checkers can live behind `dyn Checker`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one check run decided about the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The service answered as expected.
    Up,
    /// The check failed; the outcome's reason says why.
    Down,
    /// The check was not run: a `maintenancedir` file names the real, which is forced
    /// down whatever `failurecount` says (§3.8). No checker of this crate answers it; the
    /// daemon's maintenance wrapper does.
    Maintenance,
}

/// The result of one check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Why: `-` style detail as ldirectord's monitorfile gives it (HTTP status line, the
    /// body on a receive mismatch, `Connection refused`, `timed out after 5s`, ...).
    pub reason: String,
    /// Wall time of the run.
    pub latency: Duration,
}

impl Outcome {
    pub fn up(reason: impl Into<String>, latency: Duration) -> Outcome {
        Outcome::new(Verdict::Up, reason, latency)
    }

    pub fn down(reason: impl Into<String>, latency: Duration) -> Outcome {
        Outcome::new(Verdict::Down, reason, latency)
    }

    /// The real is in maintenance: no check ran, so no time passed.
    pub fn maintenance(reason: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Maintenance, reason, Duration::ZERO)
    }

    fn new(verdict: Verdict, reason: impl Into<String>, latency: Duration) -> Outcome {
        Outcome {
            verdict,
            reason: reason.into(),
            latency,
        }
    }

    /// Whether the verdict is [`Verdict::Up`].
    pub fn is_up(&self) -> bool {
        self.verdict == Verdict::Up
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
