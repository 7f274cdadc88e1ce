//! `checktype=connect` on TCP and fwmark virtuals (and the connect rounds of
//! `checktype=N`): open a TCP connection to the real's check port within `checktimeout`,
//! then close it at once.
//!
//! The socket is closed with `SO_LINGER` 0, i.e. with a reset: a director that checks a
//! thousand reals every few seconds would otherwise keep thousands of its own sockets in
//! TIME_WAIT. A UDP virtual never gets here: the registry turns `connect` into a ping
//! there, as stock does.
//!
//! Defaults: timeout = the virtual's effective `checktimeout` (5 s unless set, §2.8).
//! Reasons: `-` when up; the socket error (`Connection refused`, `No route to host`) or
//! `timed out after 5s` when down; `no check port …` when nothing gives a port (§3.2).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::proto::io_failure;
use crate::spec::CheckSpec;

/// Reason given when neither `checkport`, the real's port nor the service gives a port.
pub const NO_PORT: &str = "no check port: set checkport= or give the real server a port";

/// A TCP connect check of one address.
#[derive(Debug, Clone)]
pub struct Connect {
    /// `None` when no port is known: every run is down with [`NO_PORT`].
    target: Option<SocketAddr>,
    timeout: Duration,
}

impl Connect {
    /// A connect check of `target` bounded by `timeout`.
    pub fn new(target: Option<SocketAddr>, timeout: Duration) -> Connect {
        Connect { target, timeout }
    }
}

/// The connect checker for `spec`: real's IP, check port, `checktimeout`.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    Ok(Arc::new(connect_for(spec)))
}

/// The connect check of a spec as a concrete type (the combined check embeds it).
pub fn connect_for(spec: &CheckSpec) -> Connect {
    let target = spec
        .port
        .filter(|&p| p != 0)
        .map(|p| SocketAddr::new(spec.ip, p));
    Connect::new(target, spec.checktimeout)
}

impl Checker for Connect {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let Some(addr) = self.target else {
                return Outcome::down(NO_PORT, Duration::ZERO);
            };
            bounded(self.timeout, async move {
                let stream = tcp(addr).await?;
                close_with_reset(stream);
                Ok::<_, Failure>("-".to_owned())
            })
            .await
        })
    }
}

/// Connect to `addr`, with the error as an operator-readable reason of class
/// [`Connect`](crate::FailureClass::Connect).
pub async fn tcp(addr: SocketAddr) -> Result<TcpStream, Failure> {
    crate::route::tcp(addr).await.map_err(io_failure)
}

/// Drop `stream` with `SO_LINGER` 0 so the close is a reset and leaves no TIME_WAIT
/// socket on the director. Best effort: if the option cannot be set the socket is simply
/// closed normally.
pub fn close_with_reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_port_is_down_with_a_clear_reason() {
        let c = Connect::new(None, Duration::from_secs(1));
        let out = c.check().await;
        assert!(!out.is_up());
        assert_eq!(out.reason, NO_PORT);
    }
}
