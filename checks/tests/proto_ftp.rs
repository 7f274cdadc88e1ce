//! ftp negotiate checks against a real vsftpd (Debian `vsftpd`), anonymous, serving a
//! temp dir on a free loopback port.

mod proto_support;

use std::process::Command;
use std::sync::{Mutex, Weak};

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::Service;
use proto_support::*;

struct Vsftpd {
    _daemon: Daemon,
    port: u16,
}

static VSFTPD: Mutex<Weak<Vsftpd>> = Mutex::new(Weak::new());

fn vsftpd() -> std::sync::Arc<Vsftpd> {
    shared(&VSFTPD, || {
        let binary = require("/usr/sbin/vsftpd", "vsftpd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let root = d.join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("health.txt"), "status: all good\n").unwrap();
        // Larger than the check keeps (1 MiB): the marker is at the start.
        let mut big = b"BIG-START\n".to_vec();
        big.resize(3 * 1024 * 1024, b'x');
        std::fs::write(root.join("big.bin"), big).unwrap();
        std::fs::create_dir(d.join("empty")).unwrap();
        let port = free_port();
        let conf = format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=YES\nno_anon_password=YES\nanon_root={root}\nlocal_enable=NO\nwrite_enable=NO\n\
             pasv_enable=YES\npasv_address=127.0.0.1\nsecure_chroot_dir={empty}\nseccomp_sandbox=NO\n\
             xferlog_enable=NO\nvsftpd_log_file={d}/vsftpd.log\ndirmessage_enable=NO\nftp_username=ftp\n",
            root = root.display(),
            empty = d.join("empty").display(),
            d = d.display(),
        );
        let conf_path = d.join("vsftpd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new(binary);
        cmd.arg(&conf_path);
        let mut daemon = Daemon::spawn("vsftpd", dir, cmd);
        daemon.wait_tcp(port);
        Vsftpd {
            _daemon: daemon,
            port,
        }
    })
}

fn ftp(port: u16, request: &str, pattern: Option<&str>) -> CheckSpec {
    let mut spec = spec(Service::Ftp, port);
    // What the parser gives for an explicit `service=ftp`.
    spec.login = "anonymous".to_owned();
    spec.passwd = "ldirectord@lb1".to_owned();
    spec.request = request.to_owned();
    spec.receive = pattern.and_then(receive);
    spec
}

#[tokio::test]
async fn up_when_the_file_matches_receive() {
    let server = vsftpd();
    assert_up(&run(&ftp(server.port, "/health.txt", Some(r"all good$"))).await);
}

#[tokio::test]
async fn up_without_receive_when_the_download_succeeds() {
    let server = vsftpd();
    assert_up(&run(&ftp(server.port, "/health.txt", None)).await);
}

#[tokio::test]
async fn down_when_the_content_does_not_match() {
    let server = vsftpd();
    let outcome = run(&ftp(server.port, "/health.txt", Some("^broken"))).await;
    assert_down(&outcome, "receive mismatch: status: all good");
}

#[tokio::test]
async fn down_when_the_file_is_missing_even_without_receive() {
    let server = vsftpd();
    let outcome = run(&ftp(server.port, "/missing.txt", None)).await;
    assert_down(&outcome, "RETR /missing.txt: 550");
}

#[tokio::test]
async fn down_when_login_is_refused() {
    let server = vsftpd();
    let mut spec = ftp(server.port, "/health.txt", None);
    spec.login = "alice".to_owned();
    assert_down(&run(&spec).await, "login failed: 530");
}

#[tokio::test]
async fn large_files_are_matched_on_their_beginning() {
    let server = vsftpd();
    assert_up(&run(&ftp(server.port, "/big.bin", Some("^BIG-START"))).await);
    // The next check on the same server still works after the abandoned transfer.
    assert_up(&run(&ftp(server.port, "/health.txt", Some("good"))).await);
}

#[tokio::test]
async fn down_on_closed_port() {
    assert_down(
        &run(&ftp(free_port(), "/health.txt", None)).await,
        "Connection refused",
    );
}

#[tokio::test]
async fn down_within_timeout_when_server_hangs() {
    let hung = hung_tcp();
    assert_timed_out(&run(&short(ftp(hung.port, "/health.txt", None))).await);
}
