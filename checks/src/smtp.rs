//! `service=smtp` / `service=submission` negotiate check (§3.4).
//!
//! Exchange: TCP connect to the real's check port, read the greeting, `EHLO`, and when the
//! server refuses EHLO (any non-2xx, e.g. `502` from an RFC 821 server) `HELO`, then
//! `QUIT`. Up when the greeting is 2xx and EHLO or HELO is accepted with 2xx; the QUIT
//! answer does not matter (it is awaited only briefly). Like Net::SMTP, the client greets
//! as `localhost.localdomain`. The whole exchange is bounded by `negotiatetimeout`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::spec::CheckSpec;

use crate::proto::{self, LineConn};

/// The name sent with EHLO/HELO (Net::SMTP's default `Hello`).
const CLIENT_NAME: &str = "localhost.localdomain";

/// Build the check for `spec` (smtp or submission: the port comes from the spec).
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    Ok(Arc::new(SmtpCheck {
        spec: spec.clone(),
        timeout: spec.negotiatetimeout,
    }))
}

#[derive(Debug)]
struct SmtpCheck {
    spec: CheckSpec,
    timeout: Duration,
}

impl Checker for SmtpCheck {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.timeout, self.run()))
    }
}

impl SmtpCheck {
    async fn run(&self) -> Result<String, Failure> {
        let addr = proto::target(&self.spec)?;
        let mut conn = LineConn::greeted(addr).await?;
        hello(&mut conn).await?;
        conn.goodbye("QUIT").await;
        Ok("-".to_owned())
    }
}

/// `EHLO`, or `HELO` when EHLO is refused: one of them must be accepted.
pub(crate) async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut LineConn<S>,
) -> Result<(), Failure> {
    conn.send(&format!("EHLO {CLIENT_NAME}")).await?;
    let ehlo = conn.read_reply().await?;
    if !ehlo.is_ok() {
        conn.send(&format!("HELO {CLIENT_NAME}")).await?;
        let helo = conn.read_reply().await?;
        if !helo.is_ok() {
            return Err(Failure::protocol(format!(
                "HELO rejected: {} (EHLO: {})",
                helo.line, ehlo.line
            )));
        }
    }
    Ok(())
}
