//! mysql negotiate checks against a real MariaDB (Debian `mariadb-server`): a datadir
//! made by mariadb-install-db in a temp dir, a check user with a password created at
//! start-up (grant tables on: logins are really checked), TCP on a free loopback port
//! (`common::mariadb_command`).

mod proto_support;

use std::sync::{Mutex, Weak};

use ldirectord_checks::CheckSpec;
use ldirectord_checks::mysql::MISSING_LOGIN_OR_REQUEST;
use ldirectord_parsers::config::Service;
use proto_support::*;

struct Mariadb {
    _daemon: Daemon,
    port: u16,
}

static MARIADB: Mutex<Weak<Mariadb>> = Mutex::new(Weak::new());

/// The server shared by the loopback tests.
fn mariadb() -> std::sync::Arc<Mariadb> {
    shared(&MARIADB, || start_mariadb("127.0.0.1"))
}

/// A fresh server listening on `bind` (see `common::mariadb_command`).
fn start_mariadb(bind: &str) -> Mariadb {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cmd = mariadb_command(dir.path(), bind, port);
    let mut daemon = Daemon::spawn("mariadbd", dir, cmd);
    daemon.wait_tcp(port);
    Mariadb {
        _daemon: daemon,
        port,
    }
}

fn mysql(port: u16, login: &str, passwd: &str, request: &str) -> CheckSpec {
    let mut spec = spec(Service::Mysql, port);
    spec.login = login.to_owned();
    spec.passwd = passwd.to_owned();
    spec.database = "ldcheck".to_owned();
    spec.request = request.to_owned();
    // A cold server on a busy CI machine can be slow to answer the first login.
    spec.negotiatetimeout = std::time::Duration::from_secs(30);
    spec
}

#[tokio::test]
async fn up_when_the_query_returns_a_row() {
    let server = mariadb();
    assert_up(
        &run(&mysql(
            server.port,
            "monitor",
            "m0nitor",
            "/SELECT state FROM health WHERE state = 'ok'",
        ))
        .await,
    );
}

#[tokio::test]
async fn down_when_the_query_returns_no_rows() {
    let server = mariadb();
    let outcome = run(&mysql(
        server.port,
        "monitor",
        "m0nitor",
        "/SELECT state FROM empty",
    ))
    .await;
    assert_down(&outcome, "query returned no rows");
}

#[tokio::test]
async fn down_on_wrong_password() {
    let server = mariadb();
    let outcome = run(&mysql(server.port, "monitor", "wrong", "/SELECT 1")).await;
    assert_down(&outcome, "Access denied for user 'monitor'");
}

#[tokio::test]
async fn down_on_a_failing_query() {
    let server = mariadb();
    let outcome = run(&mysql(
        server.port,
        "monitor",
        "m0nitor",
        "/SELECT * FROM no_such_table",
    ))
    .await;
    assert_down(&outcome, "doesn't exist");
}

#[tokio::test]
async fn down_with_stocks_message_without_login_or_request() {
    let server = mariadb();
    let outcome = run(&mysql(server.port, "", "m0nitor", "/SELECT 1")).await;
    assert!(!outcome.is_up());
    assert_eq!(outcome.reason, MISSING_LOGIN_OR_REQUEST);
    let outcome = run(&mysql(server.port, "monitor", "m0nitor", "/")).await;
    assert_eq!(outcome.reason, MISSING_LOGIN_OR_REQUEST);
    assert_eq!(
        MISSING_LOGIN_OR_REQUEST,
        "Error: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding RIP."
    );
}

#[tokio::test]
async fn down_on_closed_port() {
    let outcome = run(&mysql(free_port(), "monitor", "m0nitor", "/SELECT 1")).await;
    assert_down(&outcome, "Connection refused");
}

#[tokio::test]
async fn down_within_timeout_when_server_hangs() {
    // Stock's SQL checks have no timeout at all; ours do.
    let hung = hung_tcp();
    assert_timed_out(&run(&short(mysql(hung.port, "monitor", "m0nitor", "/SELECT 1"))).await);
}

/// mysql through the forwarding path (`checkpath=forwarding`): mysql_async talks to a
/// loopback relay whose upstream socket carries the route's mark and the source towards
/// the real, or the namespace's rule refuses it (see `in_forwarding_netns`). The server
/// itself says where the session came from.
#[test]
fn a_forwarded_check_goes_through_the_forwarding_path() {
    use ldirectord_checks::route::DIRECT_ANSWERS;
    in_forwarding_netns(|| {
        let server = start_mariadb("0.0.0.0");
        block_on(async {
            let at = |ip, port, request: &str| CheckSpec {
                ip,
                ..mysql(port, "monitor", "m0nitor", request)
            };
            let mut refused = at(FWD_VIP, server.port, "/SELECT 1");
            refused.negotiatetimeout = std::time::Duration::from_secs(2);
            assert_down(&run(&refused).await, "Connection refused");
            let from_real = format!(
                "/SELECT 1 FROM information_schema.processlist WHERE id = CONNECTION_ID() AND host LIKE '{FWD_REAL}:%'"
            );
            let through = run(&forwarded(&at(FWD_REAL, server.port, &from_real), FWD_MARK)).await;
            assert_up(&through);
            let other = run(&forwarded(
                &at(FWD_REAL, server.port, "/SELECT 1"),
                FWD_MARK + 1,
            ))
            .await;
            assert_down(&other, DIRECT_ANSWERS);
            // Nothing listening: both paths refused, in the direct check's words, and no
            // reason names the relay's loopback port.
            let closed = free_port();
            let down = run(&forwarded(&at(FWD_REAL, closed, "/SELECT 1"), FWD_MARK)).await;
            assert_down(&down, "Connection refused");
            assert!(!down.reason.contains("127.0.0.1"), "{}", down.reason);
        });
    });
}
