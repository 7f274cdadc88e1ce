//! `service=mysql` negotiate check (§3.4), with mysql_async.
//!
//! Exchange: connect over TCP to the real's check port as `login` with `passwd` (and
//! `database` when set), run the request without its leading `/` with the text protocol,
//! read at most the first row, disconnect. No TLS (DBD::mysql's default); the Unix socket
//! is never preferred even when the real is local.
//!
//! Up when the statement returns at least one row (a statement without a result set
//! counts its affected rows). Without `login` or request the check is down with stock's
//! message (`Error: Must specify a login and request string ...`).
//!
//! Timeout: stock's SQL checks have none and can freeze its daemon; ours is bounded as a
//! whole by `negotiatetimeout`.
//!
//! Through the forwarding path (`checkpath=forwarding`) the driver, which opens its own
//! socket, talks to a loopback relay whose upstream socket carries the mark (see `relay`).

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row};

use crate::check::{BoxFuture, BuildError, Checker, Failure, FailureClass, Outcome, bounded};
use crate::proto::{self, quote};
use crate::relay::{Relay, RelayError};
use crate::route;
use crate::spec::CheckSpec;

/// Stock's message for a SQL check without login or request.
pub const MISSING_LOGIN_OR_REQUEST: &str = "Error: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding RIP.";

/// Build the check for `spec`. A missing login or request is not a load error (stock
/// accepts the file): the check reports it on every run.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    Ok(Arc::new(MysqlCheck { spec: spec.clone() }))
}

#[derive(Debug)]
struct MysqlCheck {
    spec: CheckSpec,
}

impl Checker for MysqlCheck {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.spec.negotiatetimeout, self.run()))
    }
}

impl MysqlCheck {
    async fn run(&self) -> Result<String, Failure> {
        let query = self.spec.request_body();
        if self.spec.login.is_empty() || query.is_empty() {
            return Err(Failure::other(MISSING_LOGIN_OR_REQUEST));
        }
        let addr = proto::target(&self.spec)?;
        if route::current_real().is_some() {
            self.relayed(addr, query).await
        } else {
            self.session(addr, query).await
        }
    }

    /// Through the forwarding path: mysql_async opens its own socket, which cannot carry
    /// the mark, so it talks to a loopback [`Relay`] whose upstream socket does (see
    /// `relay` for why TCP and why only our own connection is served). Reasons name
    /// `addr`, never the relay's port.
    async fn relayed(&self, addr: SocketAddr, query: &str) -> Result<String, Failure> {
        let relay = Relay::open(addr).await.map_err(relay_failure)?;
        let at = relay
            .addr()
            .map_err(|e| relay_failure(RelayError::Local(e)))?;
        let out = relay
            .run(self.session(at, query))
            .await
            .map_err(relay_failure)?;
        out.map_err(|f| {
            Failure::new(
                f.class,
                f.reason.replace(&at.to_string(), &addr.to_string()),
            )
        })
    }

    /// One session with the server at `addr`: log in, run `query`, read one row.
    async fn session(&self, addr: SocketAddr, query: &str) -> Result<String, Failure> {
        let opts = OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .user(Some(self.spec.login.clone()))
            .pass(Some(self.spec.passwd.clone()))
            .db_name((!self.spec.database.is_empty()).then(|| self.spec.database.clone()))
            // mysql_async would otherwise switch a local TCP connection to the server's
            // Unix socket: the check must test the port the clients use. It also keeps
            // the relay of the forwarding path a TCP connection, on which the driver
            // never sends a password in clear.
            .prefer_socket(false)
            // One statement per connection: no point caching prepared statements.
            .stmt_cache_size(0)
            // If a check times out mid-result, mysql_async cleans the dropped connection up
            // in the background; keepalive makes sure a vanished server ends that too.
            .tcp_keepalive(Some(std::time::Duration::from_secs(30)));
        let mut conn = Conn::new(opts).await.map_err(|e| failure(&e))?;
        let rows = first_row_count(&mut conn, query)
            .await
            .map_err(|e| failure(&e));
        // Dropping the connection closes it too; an orderly COM_QUIT is nicer to the server.
        let _ = conn.disconnect().await;
        match rows? {
            0 => Err(Failure::mismatch("query returned no rows")),
            _ => Ok("-".to_owned()),
        }
    }
}

/// A relay's failure as a reason. A refused or unreachable upstream is worded as the
/// direct check words a connect failure; the relay's own failure is logged too, since
/// behind a failing forwarding path the reason shown is the direct path's.
fn relay_failure(e: RelayError) -> Failure {
    match e {
        RelayError::Upstream(e) => failure(&mysql_async::Error::Io(e.into())),
        local => {
            tracing::warn!("mysql check: {local}");
            Failure::other(local.to_string())
        }
    }
}

/// A driver error as a reason, classed: transport errors are `connect`, the server's
/// access-denied errors `auth`.
fn failure(e: &mysql_async::Error) -> Failure {
    // ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR.
    const ACCESS_DENIED: [u16; 3] = [1044, 1045, 1698];
    let class = match e {
        mysql_async::Error::Io(_) => FailureClass::Connect,
        mysql_async::Error::Server(s) if ACCESS_DENIED.contains(&s.code) => FailureClass::Auth,
        _ => FailureClass::Other,
    };
    Failure::new(class, quote(e.to_string().as_bytes()))
}

/// 1 if the first result set has a row, else the affected-rows count of a statement
/// without result set. Reads one row at most: a query returning a large table does not
/// make the check slow.
async fn first_row_count(conn: &mut Conn, query: &str) -> mysql_async::Result<u64> {
    let mut result = conn.query_iter(query).await?;
    let has_row = match result.stream::<Row>().await? {
        Some(mut rows) => rows.next().await.transpose()?.is_some(),
        None => false,
    };
    // The unread rest of the result is left to the server: disconnect sends COM_QUIT and
    // closes without draining it.
    Ok(if has_row { 1 } else { result.affected_rows() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::CheckSpec;
    use ldirectord_parsers::config::{CheckType, Service};

    /// A refused upstream is reported in the direct check's words, about the real's
    /// address, never about the relay's loopback port.
    #[tokio::test]
    async fn a_refused_upstream_reads_like_the_direct_check() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let spec = CheckSpec::new(CheckType::Negotiate, Service::Mysql, addr.ip(), addr.port());
        let check = MysqlCheck { spec };
        let direct = check.session(addr, "SELECT 1").await.unwrap_err();
        let relayed = check.relayed(addr, "SELECT 1").await.unwrap_err();
        assert_eq!(relayed.reason, direct.reason);
        assert_eq!(relayed.class, FailureClass::Connect);
        assert!(
            relayed.reason.contains("Connection refused"),
            "{}",
            relayed.reason
        );
    }
}
