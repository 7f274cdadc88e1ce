//! smtp/submission negotiate checks against aiosmtpd (Debian `python3-aiosmtpd`), a real
//! SMTP server, run with a tiny handler that can refuse EHLO (to exercise the HELO
//! fallback) or both greetings.

mod proto_support;

use std::process::Command;

use ldirectord_parsers::config::Service;
use proto_support::*;
use tokio::io::AsyncWriteExt;

const SERVER: &str = r#"
import asyncio, sys
from aiosmtpd.smtp import SMTP

class Handler:
    def __init__(self, mode):
        self.mode = mode
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        print("EHLO", hostname, flush=True)
        if self.mode in ("helo-only", "refuse"):
            return ["502 5.5.1 EHLO not implemented"]
        session.host_name = hostname
        return responses
    async def handle_HELO(self, server, session, envelope, hostname):
        print("HELO", hostname, flush=True)
        if self.mode == "refuse":
            return "550 5.7.1 not welcome"
        session.host_name = hostname
        return "250 " + server.hostname

async def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(Handler(mode), hostname="mx.test"), "127.0.0.1", port)
    await srv.serve_forever()

asyncio.run(main())
"#;

fn aiosmtpd(mode: &str) -> (Daemon, u16) {
    let python = require("/usr/bin/python3", "python3-aiosmtpd");
    let ok = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .status()
        .unwrap()
        .success();
    assert!(
        ok,
        "python module aiosmtpd is missing: install the Debian package `python3-aiosmtpd`"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("smtpd.py");
    std::fs::write(&script, SERVER).unwrap();
    let port = free_port();
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(port.to_string()).arg(mode);
    let mut daemon = Daemon::spawn("aiosmtpd", dir, cmd);
    daemon.wait_tcp(port);
    (daemon, port)
}

#[tokio::test]
async fn up_with_ehlo() {
    let (server, port) = aiosmtpd("ok");
    let outcome = run(&spec(Service::Smtp, port)).await;
    assert_up(&outcome);
    assert!(
        server.output().contains("EHLO localhost.localdomain"),
        "{}",
        server.output()
    );
    assert!(
        !server.output().contains("HELO"),
        "no HELO needed: {}",
        server.output()
    );
}

#[tokio::test]
async fn submission_uses_the_spec_port() {
    let (_server, port) = aiosmtpd("ok");
    assert_up(&run(&spec(Service::Submission, port)).await);
}

#[tokio::test]
async fn falls_back_to_helo_when_ehlo_is_refused() {
    let (server, port) = aiosmtpd("helo-only");
    assert_up(&run(&spec(Service::Smtp, port)).await);
    assert!(
        server.output().contains("HELO localhost.localdomain"),
        "{}",
        server.output()
    );
}

#[tokio::test]
async fn down_when_ehlo_and_helo_are_refused() {
    let (_server, port) = aiosmtpd("refuse");
    let outcome = run(&spec(Service::Smtp, port)).await;
    assert_down(&outcome, "HELO rejected: 550 5.7.1 not welcome");
}

#[tokio::test]
async fn down_on_closed_port() {
    let outcome = run(&spec(Service::Smtp, free_port())).await;
    assert_down(&outcome, "Connection refused");
}

#[tokio::test]
async fn down_within_timeout_when_server_hangs() {
    let hung = hung_tcp();
    assert_timed_out(&run(&short(spec(Service::Smtp, hung.port))).await);
}

#[tokio::test]
async fn down_on_garbage_and_5xx_greetings() {
    for greeting in [
        &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
        b"554 5.3.2 no service here\r\n",
        b"\xff\xfe\x00garbage",
    ] {
        let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(greeting).await.unwrap();
            // Then close: the check must not wait for more.
        });
        let outcome = run(&short(spec(Service::Smtp, port))).await;
        assert!(!outcome.is_up(), "{greeting:?} gave up");
        assert!(
            !outcome.reason.contains("timed out"),
            "{greeting:?}: {}",
            outcome.reason
        );
        server.await.unwrap();
    }
}
