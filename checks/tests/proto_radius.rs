//! radius negotiate checks against a real FreeRADIUS (Debian `freeradius`), started in
//! the foreground (`-X`) from a minimal radiusd.conf in a temp dir: one client
//! (127.0.0.1, secret `testing123`), one user in a `files` users file, PAP.

mod proto_support;

use std::process::Command;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::{Protocol, Service};
use proto_support::*;

struct Freeradius {
    _daemon: Daemon,
    port: u16,
}

static FREERADIUS: Mutex<Weak<Freeradius>> = Mutex::new(Weak::new());

fn freeradius() -> std::sync::Arc<Freeradius> {
    shared(&FREERADIUS, || {
        let binary = require("/usr/sbin/freeradius", "freeradius");
        require("/usr/share/freeradius/dictionary", "freeradius-common");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = free_port();
        let conf = format!(
            r#"
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}
raddbdir = {d}
radacctdir = {d}
name = freeradius
confdir = {d}
modconfdir = /etc/freeradius/3.0/mods-config
run_dir = {d}
db_dir = {d}
libdir = /usr/lib/freeradius
pidfile = {d}/radiusd.pid
max_request_time = 5
cleanup_delay = 1
max_requests = 1024
log {{
  destination = stderr
}}
security {{
  allow_core_dumps = no
}}
client local {{
  ipaddr = 127.0.0.1
  secret = testing123
}}
modules {{
  files {{
    filename = {d}/users
  }}
  pap {{
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {port}
  }}
  authorize {{
    files
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
  }}
}}
"#
        );
        std::fs::write(dir.path().join("radiusd.conf"), conf).unwrap();
        std::fs::write(
            dir.path().join("users"),
            "alice Cleartext-Password := \"wonderland\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("dictionary"),
            "$INCLUDE /usr/share/freeradius/dictionary\n",
        )
        .unwrap();
        let mut cmd = Command::new(binary);
        cmd.arg("-X").arg("-d").arg(dir.path());
        let mut daemon = Daemon::spawn("freeradius", dir, cmd);
        let log = daemon.log.clone();
        daemon.wait_until("Ready to process requests", || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Ready to process requests")
        });
        Freeradius {
            _daemon: daemon,
            port,
        }
    })
}

fn radius(port: u16, login: &str, passwd: &str, secret: &str) -> CheckSpec {
    let mut spec = spec(Service::Radius, port);
    spec.protocol = Protocol::Udp;
    spec.login = login.to_owned();
    spec.passwd = passwd.to_owned();
    spec.secret = secret.to_owned();
    spec
}

#[tokio::test]
async fn up_on_access_accept() {
    let server = freeradius();
    let outcome = run(&radius(server.port, "alice", "wonderland", "testing123")).await;
    assert_up(&outcome);
    assert_eq!(outcome.reason, "Access-Accept");
}

#[tokio::test]
async fn down_on_access_reject() {
    let server = freeradius();
    // FreeRADIUS delays rejects by 1 s (reject_delay); the check waits for it.
    let outcome = run(&radius(server.port, "alice", "looking-glass", "testing123")).await;
    assert_down(&outcome, "Access-Reject");
    let outcome = run(&radius(server.port, "mallory", "wonderland", "testing123")).await;
    assert_down(&outcome, "Access-Reject");
}

#[tokio::test]
async fn down_on_wrong_secret() {
    // The server drops a request whose Message-Authenticator does not verify: no answer.
    let server = freeradius();
    let outcome = run(&short(radius(
        server.port,
        "alice",
        "wonderland",
        "not-the-secret",
    )))
    .await;
    assert_timed_out(&outcome);
}

#[tokio::test]
async fn down_on_closed_port() {
    let outcome = run(&radius(free_port(), "alice", "wonderland", "testing123")).await;
    assert_down(&outcome, "Connection refused");
}

#[tokio::test]
async fn down_within_timeout_when_server_hangs() {
    let hung = hung_udp();
    assert_timed_out(
        &run(&short(radius(
            hung.port,
            "alice",
            "wonderland",
            "testing123",
        )))
        .await,
    );
}

#[tokio::test]
async fn the_smaller_of_checktimeout_and_negotiatetimeout_bounds_the_check() {
    let hung = hung_udp();
    let mut spec = radius(hung.port, "alice", "wonderland", "testing123");
    spec.checktimeout = Duration::from_secs(30);
    spec.negotiatetimeout = Duration::from_secs(1);
    assert_timed_out(&run(&spec).await);
}

#[tokio::test]
async fn garbage_and_forged_replies_do_not_pass() {
    // A stand-in that answers with junk, then with an Access-Accept of the right ID but a
    // Response Authenticator made without the secret.
    let socket = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let forger = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let (_, from) = socket.recv_from(&mut buf).await.unwrap();
        socket.send_to(b"junk", from).await.unwrap();
        let mut accept = vec![2u8, buf[1], 0, 20];
        accept.extend_from_slice(&[0u8; 16]);
        socket.send_to(&accept, from).await.unwrap();
    });
    let outcome = run(&short(radius(port, "alice", "wonderland", "testing123"))).await;
    assert_down(&outcome, "invalid Response Authenticator");
    forger.await.unwrap();
}
