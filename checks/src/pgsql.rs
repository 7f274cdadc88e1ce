//! `service=pgsql`: stock ldirectord's SQL check, and the PostgreSQL role check for read
//! balancing over standbys.
//!
//! **Stock check** (reference §3.4): log in as `login`/`passwd` to `database` on the real's
//! address and check port, run `request` (its leading `/` removed) and be up iff it returns
//! at least one row. The statement goes through the simple query protocol, as DBI's
//! `execute` of unprepared text does, so several statements and `SHOW` work as before.
//! Differences from stock, deliberately: the whole check (connect, TLS, login, query) is
//! bounded by `negotiatetimeout` — stock has no timeout at all and one hung database stalls
//! the whole daemon — and the connection is closed after each check.
//!
//! **Role check** (extension, when `pgsqlrole=` is set; replaces the row count):
//! - `pgsqlrole=primary`: up iff `pg_is_in_recovery()` is false.
//! - `pgsqlrole=standby`: up iff in recovery, and
//!   - with `pgsqlsyncstate=`: the `sync_state` the *primary* reports for this standby in
//!     `pg_stat_replication` is one of the listed ones;
//!   - with `pgsqlmaxlag=`: its replication lag is below the limit.
//!
//!   The primary is found from the standby itself: `pg_stat_wal_receiver` gives the host and
//!   port it streams from and the `application_name` its walreceiver connected with
//!   (`application_name` in `primary_conninfo`, else `cluster_name`, else `walreceiver`).
//!   The checker logs in there with the same credentials and reads that walsender's row.
//!
//!   Lag is how stale the standby's data may be: **0 when it has replayed all WAL the primary
//!   has flushed** (so an idle primary never makes its standbys lag), otherwise the age of
//!   the last transaction it replayed (`clock_timestamp() - pg_last_xact_replay_timestamp()`
//!   on the standby). The primary's position is read before the standby's, so only WAL
//!   written in between the two reads (milliseconds) can make a caught-up standby look
//!   behind. Clocks of primary and standby must agree (NTP), as for any time-based lag.
//!
//! Both need a role that can read replication status: grant it `pg_monitor`.
//!
//! TLS is negotiated like libpq's default `sslmode=prefer`: used when the server offers it,
//! and, as libpq in that mode, without verifying the certificate (the check judges health,
//! not identity, and ldirectord's DBI check never verified either).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ldirectord_parsers::config::{PgRole, PgRoleCheck, SyncState};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::PgLsn;
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::check::{BoxFuture, BuildError, Checker, Failure, FailureClass, Outcome, bounded};
use crate::spec::CheckSpec;

/// Stock ldirectord's message for a SQL check without login or request.
pub const MISSING_LOGIN_OR_REQUEST: &str = "Error: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding RIP.";

/// The `application_name` the checker's own sessions announce (visible in
/// `pg_stat_activity` and the server log).
const APPLICATION_NAME: &str = "ldirectord";

/// Build the pgsql checker for `spec` (`checktype=negotiate`, `service=pgsql`). A missing
/// login (or, for the stock check, request) is not a build error: as in stock ldirectord the
/// real is reported down with stock's message, so existing configurations load unchanged.
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    let mode = match &spec.pgsql_role {
        Some(role) => Mode::Role(role.clone()),
        None => Mode::Rows(spec.request_body().to_owned()),
    };
    Ok(Arc::new(PgsqlCheck {
        ip: spec.ip,
        port: spec.port,
        credentials: Credentials {
            login: spec.login.clone(),
            passwd: spec.passwd.clone(),
            database: spec.database.clone(),
        },
        timeout: spec.negotiatetimeout,
        mode,
    }))
}

/// One pgsql check of one real server.
#[derive(Debug)]
pub struct PgsqlCheck {
    ip: IpAddr,
    port: Option<u16>,
    credentials: Credentials,
    /// Bounds the whole check (`negotiatetimeout`).
    timeout: Duration,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// Stock: the query must return at least one row.
    Rows(String),
    /// Extension: the server must have this role.
    Role(PgRoleCheck),
}

#[derive(Clone)]
struct Credentials {
    login: String,
    passwd: String,
    database: String,
}

impl fmt::Debug for Credentials {
    // The password stays out of logs and debug dumps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Checker for PgsqlCheck {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            if let Some(message) = self.misconfiguration() {
                return Outcome::down(message, Duration::ZERO);
            }
            let Some(port) = self.port else {
                // Stock connects to port 0 here and fails the same way.
                return Outcome::down("no check port", Duration::ZERO);
            };
            let real = SocketAddr::new(self.ip, port);
            bounded(self.timeout, async {
                match &self.mode {
                    Mode::Rows(query) => self.rows(real, query).await,
                    Mode::Role(role) => self.role(real, role).await,
                }
            })
            .await
        })
    }
}

impl PgsqlCheck {
    fn misconfiguration(&self) -> Option<&'static str> {
        match &self.mode {
            Mode::Rows(query) if self.credentials.login.is_empty() || query.is_empty() => {
                Some(MISSING_LOGIN_OR_REQUEST)
            }
            Mode::Role(_) if self.credentials.login.is_empty() => {
                Some("pgsqlrole needs login= (a role granted pg_monitor)")
            }
            _ => None,
        }
    }

    /// Stock: up iff `query` returns at least one row.
    async fn rows(&self, real: SocketAddr, query: &str) -> Result<String, Failure> {
        let session = Session::open_real(real, &self.credentials).await?;
        let messages = session
            .client
            .simple_query(query)
            .await
            .map_err(|e| pg_failure(&e))?;
        session.close().await;
        match messages
            .iter()
            .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
            .count()
        {
            0 => Err(Failure::mismatch("query returned no rows")),
            1 => Ok("1 row".to_owned()),
            n => Ok(format!("{n} rows")),
        }
    }

    /// Extension: the role check (see the module documentation).
    async fn role(&self, real: SocketAddr, want: &PgRoleCheck) -> Result<String, Failure> {
        let session = Session::open_real(real, &self.credentials).await?;
        let node = query_node(&session.client).await?;
        let verdict = match (want.role, node.in_recovery) {
            (PgRole::Primary, false) => Ok("primary (not in recovery)".to_owned()),
            (PgRole::Primary, true) => {
                Err(Failure::mismatch("standby (in recovery), wanted primary"))
            }
            (PgRole::Standby, false) => Err(Failure::mismatch(
                "primary (not in recovery), wanted standby",
            )),
            (PgRole::Standby, true) if want.max_lag.is_none() && want.sync_states.is_empty() => {
                Ok(match &node.receiver {
                    Some(r) if r.status.is_some() => {
                        format!(
                            "standby (in recovery, WAL receiver {})",
                            r.status.as_deref().unwrap_or("?")
                        )
                    }
                    _ => "standby (in recovery)".to_owned(),
                })
            }
            (PgRole::Standby, true) => self.standby(&session.client, &node, want).await,
        };
        session.close().await;
        verdict
    }

    /// The standby's sync state and lag as its primary sees them.
    async fn standby(
        &self,
        standby: &Client,
        node: &Node,
        want: &PgRoleCheck,
    ) -> Result<String, Failure> {
        let receiver = node.receiver.as_ref().ok_or_else(|| {
            Failure::mismatch(
                "standby is not streaming (no WAL receiver), so it has no sync state or lag",
            )
        })?;
        let status = receiver.status.as_deref().ok_or_else(|| {
            Failure::auth(format!(
                "cannot read pg_stat_wal_receiver: grant pg_monitor to {}",
                self.credentials.login
            ))
        })?;
        let upstream_host = receiver
            .sender_host
            .as_deref()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Failure::mismatch(format!(
                    "standby's WAL receiver is {status} with no primary connection"
                ))
            })?;
        if upstream_host.starts_with('/') {
            return Err(Failure::other(format!(
                "standby streams over the unix socket {upstream_host}; its primary must be reachable over TCP \
                 for pgsqlsyncstate/pgsqlmaxlag"
            )));
        }
        let upstream_port = receiver
            .sender_port
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| Failure::other("standby's WAL receiver reports no primary port"))?;
        let upstream = display_host_port(upstream_host, upstream_port);
        let app = receiver.application_name();

        let primary = Session::open(upstream_host, upstream_port, &self.credentials)
            .await
            .map_err(|e| e.context(&format!("primary {upstream}: ")))?;
        // Through the forwarding path `self.ip` is the VIP; the walsender sees the real.
        let standby_ip = crate::route::current_real().unwrap_or(self.ip);
        let seen = query_walsender(&primary.client, &app, standby_ip)
            .await
            .map_err(|e| e.context(&format!("primary {upstream}: ")));
        primary.close().await;
        let seen = seen?;
        let Some(walsender) = seen.walsender else {
            return Err(Failure::mismatch(format!(
                "primary {upstream} lists no walsender with application_name '{app}'"
            )));
        };

        let mut reason = String::from("standby");
        // The standby's position is read after the primary's: see the module documentation.
        let lag = query_lag(standby, seen.position).await?;
        reason.push_str(&format!(", lag {}", lag.describe()));
        let sync_state = walsender.sync_state.as_deref().unwrap_or("unknown");
        reason.push_str(&format!(", sync_state={sync_state}"));
        if let Some(state) = walsender.state.as_deref().filter(|s| *s != "streaming") {
            reason.push_str(&format!(", state={state}"));
        }
        if seen.upstream_in_recovery {
            reason.push_str(&format!(" (upstream {upstream} is itself a standby)"));
        }

        if !want.sync_states.is_empty()
            && !want.sync_states.iter().any(|s| s.as_str() == sync_state)
        {
            let wanted: Vec<&str> = want
                .sync_states
                .iter()
                .map(|s| SyncState::as_str(*s))
                .collect();
            return Err(Failure::mismatch(format!(
                "sync_state={sync_state} not in pgsqlsyncstate={} ({reason})",
                wanted.join(",")
            )));
        }
        if let Some(max) = want.max_lag {
            match lag {
                Lag::Seconds(secs) if secs < max.as_secs_f64() => {}
                Lag::Seconds(secs) => {
                    return Err(Failure::mismatch(format!(
                        "lag {} exceeds pgsqlmaxlag {} ({reason})",
                        seconds(secs),
                        seconds(max.as_secs_f64())
                    )));
                }
                Lag::Unknown { .. } => {
                    return Err(Failure::mismatch(format!(
                        "lag unknown, so not below pgsqlmaxlag {} ({reason})",
                        seconds(max.as_secs_f64())
                    )));
                }
            }
        }
        Ok(reason)
    }
}

/// What a server says about itself.
#[derive(Debug)]
struct Node {
    in_recovery: bool,
    /// `pg_stat_wal_receiver`'s row, if there is one.
    receiver: Option<WalReceiver>,
}

/// The standby's WAL receiver. Without `pg_read_all_stats` only `pid` is visible.
#[derive(Debug)]
struct WalReceiver {
    status: Option<String>,
    sender_host: Option<String>,
    sender_port: Option<i32>,
    conninfo: Option<String>,
}

impl WalReceiver {
    /// The `application_name` the primary lists this standby under.
    fn application_name(&self) -> String {
        let info = conninfo_pairs(self.conninfo.as_deref().unwrap_or(""));
        let find = |key: &str| {
            info.iter()
                .find(|(k, v)| k == key && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        // The walreceiver passes cluster_name (or "walreceiver") as the fallback, so it
        // shows up in the connection's conninfo when primary_conninfo sets no name.
        find("application_name")
            .or_else(|| find("fallback_application_name"))
            .unwrap_or_else(|| "walreceiver".into())
    }
}

async fn query_node(client: &Client) -> Result<Node, Failure> {
    // The LEFT JOIN keeps one row on servers without a WAL receiver (primaries).
    let row = client
        .query_one(
            "SELECT pg_is_in_recovery(), r.pid, r.status, r.sender_host, r.sender_port, r.conninfo \
             FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true",
            &[],
        )
        .await
        .map_err(|e| pg_failure(&e))?;
    let pid: Option<i32> = row.get(1);
    Ok(Node {
        in_recovery: row.get(0),
        receiver: pid.map(|_| WalReceiver {
            status: row.get(2),
            sender_host: row.get(3),
            sender_port: row.get(4),
            conninfo: row.get(5),
        }),
    })
}

/// The upstream's view: its WAL position and the walsender serving our standby.
struct Upstream {
    upstream_in_recovery: bool,
    /// How far the upstream's WAL goes (flushed on a primary; replayed on a cascading
    /// standby, which is what it can pass on).
    position: PgLsn,
    walsender: Option<Walsender>,
}

struct Walsender {
    state: Option<String>,
    sync_state: Option<String>,
}

async fn query_walsender(
    client: &Client,
    application_name: &str,
    standby_ip: IpAddr,
) -> Result<Upstream, Failure> {
    let head = client
        .query_one(
            "SELECT pg_is_in_recovery(), \
             CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END",
            &[],
        )
        .await
        .map_err(|e| pg_failure(&e))?;
    let rows = client
        .query(
            "SELECT host(client_addr), state, sync_state FROM pg_stat_replication WHERE application_name = $1",
            &[&application_name],
        )
        .await
        .map_err(|e| pg_failure(&e))?;
    let mut candidates: Vec<(Option<String>, Walsender)> = rows
        .iter()
        .map(|row| {
            (
                row.get(0),
                Walsender {
                    state: row.get(1),
                    sync_state: row.get(2),
                },
            )
        })
        .collect();
    // Two standbys sharing one application_name: prefer the one connecting from the real's
    // own address; if that does not single one out the answer would be a guess.
    if candidates.len() > 1 {
        let ip = standby_ip.to_string();
        candidates.retain(|(addr, _)| addr.as_deref() == Some(ip.as_str()));
        if candidates.len() != 1 {
            return Err(Failure::other(format!(
                "{} walsenders share application_name '{application_name}'; give each standby its own \
                 (primary_conninfo application_name or cluster_name)",
                rows.len()
            )));
        }
    }
    if candidates.iter().any(|(_, w)| w.state.is_none()) {
        return Err(Failure::auth(
            "cannot read pg_stat_replication: grant pg_monitor to the check's login",
        ));
    }
    Ok(Upstream {
        upstream_in_recovery: head.get(0),
        position: head
            .get::<_, Option<PgLsn>>(1)
            .ok_or_else(|| Failure::protocol("primary reports no WAL position"))?,
        walsender: candidates.pop().map(|(_, w)| w),
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Lag {
    Seconds(f64),
    /// Behind, but no transaction was replayed yet, so there is no age to give.
    Unknown {
        bytes: u64,
    },
}

impl Lag {
    fn describe(&self) -> String {
        match self {
            Lag::Seconds(s) => seconds(*s),
            Lag::Unknown { bytes } => {
                format!("unknown ({bytes} bytes behind, no transaction replayed yet)")
            }
        }
    }
}

async fn query_lag(standby: &Client, upstream: PgLsn) -> Result<Lag, Failure> {
    let row = standby
        .query_one(
            "SELECT pg_last_wal_replay_lsn(), \
             EXTRACT(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8",
            &[],
        )
        .await
        .map_err(|e| pg_failure(&e))?;
    let replayed: Option<PgLsn> = row.get(0);
    let age: Option<f64> = row.get(1);
    Ok(lag_from(upstream.into(), replayed.map(u64::from), age))
}

/// The lag rule: caught up means 0, else the age of the last replayed transaction.
fn lag_from(upstream: u64, replayed: Option<u64>, age: Option<f64>) -> Lag {
    let replayed = replayed.unwrap_or(0);
    if replayed >= upstream {
        return Lag::Seconds(0.0);
    }
    match age {
        // A standby clock slightly ahead of the primary's gives a small negative age.
        Some(age) => Lag::Seconds(age.max(0.0)),
        None => Lag::Unknown {
            bytes: upstream - replayed,
        },
    }
}

/// `0s`, `0.2s`, `12s`, `12.3s`, `40ms` (under a tenth of a second).
fn seconds(s: f64) -> String {
    if s > 0.0 && s < 0.05 {
        return format!("{}ms", (s * 1000.0).round().max(1.0));
    }
    let tenths = (s * 10.0).round();
    if tenths % 10.0 == 0.0 {
        format!("{}s", tenths / 10.0)
    } else {
        format!("{:.1}s", tenths / 10.0)
    }
}

fn display_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `key=value` pairs of a libpq connection string (values may be single-quoted, with `\`
/// escapes).
fn conninfo_pairs(s: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
    pairs
}

/// An open connection. The socket is driven by its own task, aborted when the session is
/// dropped, so a check cut off by its timeout leaves nothing behind.
struct Session {
    client: Client,
    connection: AbortOnDrop,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Session {
    /// A session with the real server being checked, on a socket opened by
    /// [`crate::route::tcp`]: through the forwarding path it carries the check's mark.
    async fn open_real(real: SocketAddr, credentials: &Credentials) -> Result<Session, Failure> {
        let stream = crate::route::tcp(real).await.map_err(|e| {
            Failure::connect(format!(
                "error connecting to server: {}",
                crate::proto::io_reason(&e)
            ))
        })?;
        // What tokio-postgres sets on the sockets it opens itself.
        let _ = stream.set_nodelay(true);
        let host = real.ip().to_string();
        let tls = MakeTlsConnect::<TcpStream>::make_tls_connect(&mut tls(), &host)
            .unwrap_or_else(|never| match never {});
        let (client, connection) = Session::config(credentials)
            .connect_raw(stream, tls)
            .await
            .map_err(|e| pg_failure(&e))?;
        Ok(Session::drive(client, connection))
    }

    /// A session with another server (a standby's primary, by the name the standby
    /// streams from): never through the forwarding path, so the library opens the socket.
    async fn open(host: &str, port: u16, credentials: &Credentials) -> Result<Session, Failure> {
        let mut config = Session::config(credentials);
        config
            .host(host)
            .port(port)
            // One short-lived session per check: keepalive probes would never fire.
            .keepalives(false);
        let (client, connection) = config.connect(tls()).await.map_err(|e| pg_failure(&e))?;
        Ok(Session::drive(client, connection))
    }

    /// Login settings shared by both kinds of session.
    fn config(credentials: &Credentials) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .user(&credentials.login)
            .password(credentials.passwd.as_bytes())
            .application_name(APPLICATION_NAME)
            .ssl_mode(SslMode::Prefer);
        // libpq's default: the database named like the user.
        if !credentials.database.is_empty() {
            config.dbname(&credentials.database);
        }
        config
    }

    /// The session of `client`, its connection driven by a task of its own.
    fn drive<S, T>(client: Client, connection: tokio_postgres::Connection<S, T>) -> Session
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let connection = AbortOnDrop(tokio::spawn(async move {
            // Errors surface to the client's pending query as well; nothing to add here.
            let _ = connection.await;
        }));
        Session { client, connection }
    }

    /// Log out politely: dropping the client sends Terminate and the connection task ends
    /// once the server closes. Bounded by the caller's timeout like everything else.
    async fn close(self) {
        let Session {
            client,
            mut connection,
        } = self;
        drop(client);
        let _ = (&mut connection.0).await;
    }
}

/// The error as an operator wants it: the server's own message for database errors
/// (`FATAL: password authentication failed for user "x"`), else the error with its causes.
fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// [`error_text`] classed: the server's authorization errors (SQLSTATE class 28) are
/// `auth`, transport errors `connect`.
fn pg_failure(e: &tokio_postgres::Error) -> Failure {
    let class = if let Some(db) = e.as_db_error() {
        if db.code().code().starts_with("28") {
            FailureClass::Auth
        } else {
            FailureClass::Other
        }
    } else if std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
        FailureClass::Connect
    } else {
        FailureClass::Other
    };
    Failure::new(class, error_text(e))
}

/// TLS as libpq's `sslmode=prefer`: encryption when offered, certificate not verified.
fn tls() -> MakeRustlsConnect {
    static TLS: OnceLock<MakeRustlsConnect> = OnceLock::new();
    TLS.get_or_init(|| MakeRustlsConnect::new((*crate::tls::accept_any()).clone()))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_is_parsed_like_libpq() {
        let info = conninfo_pairs(
            "user=repl password=******** channel_binding=prefer dbname=replication host=10.0.0.1 port=5432 \
             application_name='node 2' fallback_application_name=standby1 sslmode=prefer key=a\\ b",
        );
        let get = |k: &str| {
            info.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("host"), Some("10.0.0.1"));
        assert_eq!(get("application_name"), Some("node 2"));
        assert_eq!(get("fallback_application_name"), Some("standby1"));
        assert_eq!(get("key"), Some("a b"));
        assert_eq!(conninfo_pairs("a = 1"), vec![("a".into(), "1".into())]);
        assert_eq!(
            conninfo_pairs("b='x\\'y' c=1"),
            vec![("b".into(), "x'y".into()), ("c".into(), "1".into())]
        );
        assert!(conninfo_pairs("").is_empty());
    }

    #[test]
    fn application_name_follows_the_walreceivers_rules() {
        let receiver = |conninfo: &str| WalReceiver {
            status: Some("streaming".into()),
            sender_host: None,
            sender_port: None,
            conninfo: Some(conninfo.into()),
        };
        assert_eq!(
            receiver("application_name=a fallback_application_name=b").application_name(),
            "a"
        );
        assert_eq!(
            receiver("host=x fallback_application_name=b").application_name(),
            "b"
        );
        assert_eq!(
            receiver("application_name='' fallback_application_name=b").application_name(),
            "b"
        );
        assert_eq!(receiver("host=x").application_name(), "walreceiver");
    }

    #[test]
    fn lag_is_zero_when_caught_up_else_the_replay_age() {
        // Caught up (an idle primary): 0 however old the last replayed transaction is.
        assert_eq!(lag_from(100, Some(100), Some(3600.0)), Lag::Seconds(0.0));
        assert_eq!(lag_from(100, Some(120), None), Lag::Seconds(0.0));
        // Behind: the age of what it has.
        assert_eq!(lag_from(200, Some(100), Some(12.5)), Lag::Seconds(12.5));
        assert_eq!(lag_from(200, Some(100), Some(-0.3)), Lag::Seconds(0.0));
        assert_eq!(lag_from(200, Some(100), None), Lag::Unknown { bytes: 100 });
        assert_eq!(lag_from(200, None, None), Lag::Unknown { bytes: 200 });
    }

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(seconds(0.0), "0s");
        assert_eq!(seconds(0.2), "0.2s");
        assert_eq!(seconds(0.04), "40ms");
        assert_eq!(seconds(12.0), "12s");
        assert_eq!(seconds(12.34), "12.3s");
        assert_eq!(seconds(9.96), "10s");
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let c = Credentials {
            login: "u".into(),
            passwd: "s3cret".into(),
            database: "d".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
