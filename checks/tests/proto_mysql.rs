//! mysql negotiate checks against a real MariaDB (Debian `mariadb-server`): a datadir
//! made by mariadb-install-db in a temp dir, a check user with a password created at
//! start-up (grant tables on: logins are really checked), TCP on a free loopback port.

mod proto_support;

use std::process::Command;
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

const INIT: &str = "
CREATE DATABASE IF NOT EXISTS ldcheck;
CREATE TABLE IF NOT EXISTS ldcheck.health (state VARCHAR(10));
CREATE TABLE IF NOT EXISTS ldcheck.empty (state VARCHAR(10));
DELETE FROM ldcheck.health;
INSERT INTO ldcheck.health VALUES ('ok');
CREATE USER IF NOT EXISTS 'monitor'@'%' IDENTIFIED BY 'm0nitor';
GRANT SELECT ON ldcheck.* TO 'monitor'@'%';
";

fn mariadb() -> std::sync::Arc<Mariadb> {
    shared(&MARIADB, || {
        let server = require("/usr/sbin/mariadbd", "mariadb-server");
        let install = require("/usr/bin/mariadb-install-db", "mariadb-server");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let data = d.join("data");
        let out = Command::new(install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(d.join("init.sql"), INIT).unwrap();
        let port = free_tcp_port();
        let mut cmd = Command::new(server);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--init-file={}", d.join("init.sql").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
                "--skip-log-bin",
            ])
            .args(["--innodb-buffer-pool-size=16M", "--log-error="]);
        let mut daemon = Daemon::spawn("mariadbd", dir, cmd);
        daemon.wait_tcp(port);
        Mariadb {
            _daemon: daemon,
            port,
        }
    })
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
    let outcome = run(&mysql(free_tcp_port(), "monitor", "m0nitor", "/SELECT 1")).await;
    assert_down(&outcome, "Connection refused");
}

#[tokio::test]
async fn down_within_timeout_when_server_hangs() {
    // Stock's SQL checks have no timeout at all; ours do.
    let hung = hung_tcp();
    assert_timed_out(&run(&short(mysql(hung.port, "monitor", "m0nitor", "/SELECT 1"))).await);
}

/// mysql cannot go through the forwarding path (mysql_async opens its own sockets; see
/// `CheckSpec::forwardable`): a forwarded mysql check runs on the direct path, to the
/// real (the VIP here is nowhere), and says so when it fails.
#[tokio::test]
async fn a_forwarded_check_stays_on_the_direct_path() {
    use ldirectord_checks::route::DIRECT_ONLY;
    let server = mariadb();
    let s = mysql(server.port, "monitor", "m0nitor", "/SELECT 1");
    assert_up(&run(&forwarded(&s, FWD_MARK)).await);
    let s = mysql(free_tcp_port(), "monitor", "m0nitor", "/SELECT 1");
    let closed = run(&forwarded(&s, FWD_MARK)).await;
    assert_down(&closed, "Connection refused");
    assert!(closed.reason.ends_with(DIRECT_ONLY), "{}", closed.reason);
}
