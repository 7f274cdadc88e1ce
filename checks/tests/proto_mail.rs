//! pop/pops and imap/imaps negotiate checks against a real Dovecot (Debian
//! `dovecot-pop3d` + `dovecot-imapd`), started in the foreground from a config in a temp
//! dir: passwd-file users, a self-signed certificate for pops/imaps, plaintext logins
//! allowed on the loopback.

mod proto_support;

use std::process::Command;
use std::sync::{Mutex, Weak};

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::Service;
use proto_support::*;
use tokio::io::AsyncWriteExt;

struct Dovecot {
    _daemon: Daemon,
    pop3: u16,
    pop3s: u16,
    imap: u16,
    imaps: u16,
}

static DOVECOT: Mutex<Weak<Dovecot>> = Mutex::new(Weak::new());

fn dovecot() -> std::sync::Arc<Dovecot> {
    shared(&DOVECOT, start_dovecot)
}

fn start_dovecot() -> Dovecot {
    let binary = require("/usr/sbin/dovecot", "dovecot-core");
    require("/usr/lib/dovecot/pop3", "dovecot-pop3d");
    require("/usr/lib/dovecot/imap", "dovecot-imapd");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = self_signed_cert(d, "localhost");
    let mail = d.join("mail");
    std::fs::create_dir(&mail).unwrap();
    // Mail processes run as nobody (dovecot refuses uid 0) and need a writable home.
    Command::new("chmod")
        .arg("1777")
        .arg(&mail)
        .status()
        .unwrap();
    std::fs::write(d.join("users"), "alice:{PLAIN}wonderland::::::\n").unwrap();
    let [pop3, pop3s, imap, imaps] = [(); 4].map(|_| free_port());
    let conf = format!(
        r#"
base_dir = {d}/run
state_dir = {d}/state
instance_name = ldtest-{pop3}
protocols = pop3 imap
listen = 127.0.0.1
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Answer failed logins at once (the default delays them 2 s).
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={mail}/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = 1
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
pop3_uidl_format = %08Xu%08Xv
"#,
        d = d.display(),
        cert = cert.display(),
        key = key.display(),
        mail = mail.display(),
    );
    let conf_path = d.join("dovecot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(binary);
    cmd.arg("-F").arg("-c").arg(&conf_path);
    let mut daemon = Daemon::spawn("dovecot", dir, cmd);
    for port in [pop3, pop3s, imap, imaps] {
        daemon.wait_tcp(port);
    }
    Dovecot {
        _daemon: daemon,
        pop3,
        pop3s,
        imap,
        imaps,
    }
}

fn with_login(mut spec: CheckSpec, login: &str, passwd: &str) -> CheckSpec {
    spec.login = login.to_owned();
    spec.passwd = passwd.to_owned();
    spec
}

#[tokio::test]
async fn pop_up_without_and_with_login() {
    let server = dovecot();
    assert_up(&run(&spec(Service::Pop, server.pop3)).await);
    assert_up(
        &run(&with_login(
            spec(Service::Pop, server.pop3),
            "alice",
            "wonderland",
        ))
        .await,
    );
}

#[tokio::test]
async fn pops_up_over_tls_with_a_self_signed_certificate() {
    let server = dovecot();
    assert_up(&run(&spec(Service::Pops, server.pop3s)).await);
    assert_up(
        &run(&with_login(
            spec(Service::Pops, server.pop3s),
            "alice",
            "wonderland",
        ))
        .await,
    );
}

/// Failed logins make Dovecot's anvil delay later logins from the same address, so the
/// wrong-password cases get a server of their own and a longer timeout.
fn patient(mut spec: CheckSpec) -> CheckSpec {
    spec.negotiatetimeout = std::time::Duration::from_secs(30);
    spec
}

#[tokio::test]
async fn pop_down_on_wrong_password() {
    let server = start_dovecot();
    let outcome = run(&patient(with_login(
        spec(Service::Pop, server.pop3),
        "alice",
        "looking-glass",
    )))
    .await;
    assert_down(&outcome, "login failed: PASS: -ERR");
    let outcome = run(&patient(with_login(
        spec(Service::Pops, server.pop3s),
        "alice",
        "looking-glass",
    )))
    .await;
    assert_down(&outcome, "login failed: PASS: -ERR");
}

#[tokio::test]
async fn pops_down_when_the_server_speaks_plaintext() {
    // TLS client hello to a plaintext POP3 port: the handshake fails, it must not pass.
    let server = dovecot();
    assert_down(
        &run(&short(spec(Service::Pops, server.pop3))).await,
        "TLS handshake failed",
    );
}

#[tokio::test]
async fn pop_down_on_closed_port_even_without_login() {
    // Stock reports up here (its defect); we require a +OK greeting.
    let port = free_port();
    assert_down(&run(&spec(Service::Pop, port)).await, "Connection refused");
    assert_down(&run(&spec(Service::Pops, port)).await, "Connection refused");
}

#[tokio::test]
async fn pop_down_within_timeout_when_server_hangs() {
    let hung = hung_tcp();
    assert_timed_out(&run(&short(spec(Service::Pop, hung.port))).await);
    // pops: the TLS handshake itself hangs.
    assert_timed_out(&run(&short(spec(Service::Pops, hung.port))).await);
}

#[tokio::test]
async fn pop_down_on_negative_greeting() {
    let port = one_shot_server(b"-ERR [SYS/TEMP] too busy\r\n").await;
    assert_down(
        &run(&short(spec(Service::Pop, port))).await,
        "greeting: -ERR [SYS/TEMP] too busy",
    );
}

#[tokio::test]
async fn imap_up_without_and_with_login() {
    let server = dovecot();
    assert_up(&run(&spec(Service::Imap, server.imap)).await);
    assert_up(
        &run(&with_login(
            spec(Service::Imap, server.imap),
            "alice",
            "wonderland",
        ))
        .await,
    );
}

#[tokio::test]
async fn imaps_up_over_tls_with_a_self_signed_certificate() {
    let server = dovecot();
    assert_up(&run(&spec(Service::Imaps, server.imaps)).await);
    assert_up(
        &run(&with_login(
            spec(Service::Imaps, server.imaps),
            "alice",
            "wonderland",
        ))
        .await,
    );
}

#[tokio::test]
async fn imap_down_on_wrong_password() {
    let server = start_dovecot();
    let outcome = run(&patient(with_login(
        spec(Service::Imap, server.imap),
        "alice",
        "looking-glass",
    )))
    .await;
    assert_down(&outcome, "login failed: NO");
    let outcome = run(&patient(with_login(
        spec(Service::Imaps, server.imaps),
        "bob",
        "wonderland",
    )))
    .await;
    assert_down(&outcome, "login failed: NO");
}

#[tokio::test]
async fn imap_down_on_closed_port() {
    let port = free_port();
    assert_down(&run(&spec(Service::Imap, port)).await, "Connection refused");
    assert_down(
        &run(&spec(Service::Imaps, port)).await,
        "Connection refused",
    );
}

#[tokio::test]
async fn imap_down_within_timeout_when_server_hangs() {
    let hung = hung_tcp();
    assert_timed_out(&run(&short(spec(Service::Imap, hung.port))).await);
    assert_timed_out(&run(&short(spec(Service::Imaps, hung.port))).await);
}

#[tokio::test]
async fn imap_down_on_bye_or_pop_greeting() {
    let port = one_shot_server(b"* BYE too many connections\r\n").await;
    assert_down(
        &run(&short(spec(Service::Imap, port))).await,
        "greeting: * BYE too many connections",
    );
    // A POP3 server on the IMAP port is not an IMAP server.
    let server = dovecot();
    assert_down(
        &run(&spec(Service::Imap, server.pop3)).await,
        "greeting: +OK",
    );
}

/// A server that sends `greeting` to its first client and closes.
async fn one_shot_server(greeting: &'static [u8]) -> u16 {
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = s.write_all(greeting).await;
    });
    port
}
