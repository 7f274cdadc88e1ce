//! The vocabulary every check speaks: the [`Checker`] trait, the [`Outcome`] of one run with
//! its [`Verdict`], the [`Failure`] of a down run with its [`FailureClass`], [`bounded`] (a
//! check's timeout over the whole exchange) and [`BuildError`] (a configuration that cannot
//! be checked).

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

/// What kind of failure took a check down: the groups an operator reads a failing farm by,
/// and the label a metrics exporter counts results by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The check's timeout expired before the exchange finished.
    Timeout,
    /// The network said no: refused, unreachable, reset, closed under a read or write.
    Connect,
    /// The TLS handshake or its certificate failed.
    Tls,
    /// The server answered, but not in the protocol's terms: a bad status or reply code, bad
    /// framing, an answer that is not one.
    Protocol,
    /// The answer was well formed but not what `receive=` (or the check's own expectation,
    /// such as a database role) asked for.
    Mismatch,
    /// The server refused `login=`/`passwd=` (or the RADIUS secret).
    Auth,
    /// An external `checkcommand` failed: non-zero exit, signal, or it could not be run.
    Command,
    /// Anything else, including reasons not yet classified.
    Other,
}

impl FailureClass {
    /// The class as a lowercase word (`timeout`, `connect`, ...), e.g. for a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Timeout => "timeout",
            FailureClass::Connect => "connect",
            FailureClass::Tls => "tls",
            FailureClass::Protocol => "protocol",
            FailureClass::Mismatch => "mismatch",
            FailureClass::Auth => "auth",
            FailureClass::Command => "command",
            FailureClass::Other => "other",
        }
    }
}

/// Why one check run failed: the class to group by and the reason as the monitorfile
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    pub reason: String,
}

impl Failure {
    pub fn new(class: FailureClass, reason: impl Into<String>) -> Failure {
        Failure {
            class,
            reason: reason.into(),
        }
    }

    /// The same class with `prefix` before the reason (`download: ` + the I/O reason).
    pub(crate) fn context(self, prefix: &str) -> Failure {
        Failure::new(self.class, format!("{prefix}{}", self.reason))
    }
}

/// One constructor per class: `Failure::connect(reason)` is
/// `Failure::new(FailureClass::Connect, reason)`.
macro_rules! class_constructors {
    ($($name:ident => $class:ident),* $(,)?) => {
        impl Failure {
            $(
                #[doc = concat!("A failure of class [`FailureClass::", stringify!($class), "`].")]
                pub fn $name(reason: impl Into<String>) -> Failure {
                    Failure::new(FailureClass::$class, reason)
                }
            )*
        }
    };
}

class_constructors! {
    connect => Connect,
    tls => Tls,
    protocol => Protocol,
    mismatch => Mismatch,
    auth => Auth,
    command => Command,
    other => Other,
}

/// A reason whose class is not known: [`FailureClass::Other`].
impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure::other(reason)
    }
}

/// A reason whose class is not known: [`FailureClass::Other`].
impl From<&str> for Failure {
    fn from(reason: &str) -> Failure {
        Failure::other(reason)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
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
    /// The class of a down verdict; `None` otherwise.
    class: Option<FailureClass>,
}

impl Outcome {
    pub fn up(reason: impl Into<String>, latency: Duration) -> Outcome {
        Outcome::new(Verdict::Up, reason, latency, None)
    }

    /// Down for a reason of unknown class ([`FailureClass::Other`]).
    pub fn down(reason: impl Into<String>, latency: Duration) -> Outcome {
        Outcome::failed(Failure::other(reason), latency)
    }

    /// Down for `failure`, keeping its class.
    pub fn failed(failure: Failure, latency: Duration) -> Outcome {
        Outcome::new(Verdict::Down, failure.reason, latency, Some(failure.class))
    }

    /// The real is in maintenance: no check ran, so no time passed.
    pub fn maintenance(reason: impl Into<String>) -> Outcome {
        Outcome::new(Verdict::Maintenance, reason, Duration::ZERO, None)
    }

    fn new(
        verdict: Verdict,
        reason: impl Into<String>,
        latency: Duration,
        class: Option<FailureClass>,
    ) -> Outcome {
        Outcome {
            verdict,
            reason: reason.into(),
            latency,
            class,
        }
    }

    /// Whether the verdict is [`Verdict::Up`].
    pub fn is_up(&self) -> bool {
        self.verdict == Verdict::Up
    }

    /// The failure class of a [`Verdict::Down`]; `None` for up and maintenance.
    pub fn class(&self) -> Option<FailureClass> {
        self.class
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
/// sockets) and the outcome is down with `timed out after …`, class
/// [`FailureClass::Timeout`]. A plain `String` error is a failure of class
/// [`FailureClass::Other`].
pub async fn bounded<F, E>(timeout: Duration, fut: F) -> Outcome
where
    F: Future<Output = Result<String, E>>,
    E: Into<Failure>,
{
    let start = tokio::time::Instant::now();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(reason)) => Outcome::up(reason, start.elapsed()),
        Ok(Err(failure)) => Outcome::failed(failure.into(), start.elapsed()),
        Err(_) => Outcome::failed(
            Failure::new(
                FailureClass::Timeout,
                format!("timed out after {}", humanize(timeout)),
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bounded_classes_a_timeout_and_an_unclassed_string() {
        let pending = std::future::pending::<Result<String, String>>();
        let out = bounded(Duration::from_millis(1500), pending).await;
        assert_eq!(out.verdict, Verdict::Down);
        assert_eq!(out.class(), Some(FailureClass::Timeout));
        assert_eq!(out.reason, "timed out after 1500ms");

        let out = bounded(Duration::from_secs(1), async { Err("why".to_owned()) }).await;
        assert_eq!(out.class(), Some(FailureClass::Other));
        assert_eq!(out.reason, "why");

        let failed = async { Err::<String, _>(Failure::auth("login failed")) };
        let out = bounded(Duration::from_secs(1), failed).await;
        assert_eq!(out.class(), Some(FailureClass::Auth));
        assert_eq!(out.reason, "login failed");
    }

    #[test]
    fn only_a_down_outcome_has_a_class() {
        assert_eq!(Outcome::up("-", Duration::ZERO).class(), None);
        assert_eq!(Outcome::maintenance("m").class(), None);
        assert_eq!(
            Outcome::down("x", Duration::ZERO).class(),
            Some(FailureClass::Other)
        );
    }
}
