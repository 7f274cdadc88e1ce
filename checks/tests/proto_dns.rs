//! dns negotiate checks against a real dnsmasq (Debian `dnsmasq-base`), authoritative for
//! `example.test` from its command line, on a free loopback port over UDP and TCP.

mod proto_support;

use std::process::Command;
use std::sync::{Mutex, Weak};

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::{Protocol, Service};
use proto_support::*;

struct Dnsmasq {
    _daemon: Daemon,
    port: u16,
}

static DNSMASQ: Mutex<Weak<Dnsmasq>> = Mutex::new(Weak::new());

fn dnsmasq() -> std::sync::Arc<Dnsmasq> {
    shared(&DNSMASQ, || {
        let binary = require("/usr/sbin/dnsmasq", "dnsmasq-base");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new(binary);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
        ])
        .args([
            "--listen-address=127.0.0.1",
            "--pid-file",
            "--user=root",
            "--log-facility=-",
        ])
        .arg(format!("--port={port}"))
        // Names under example.test that are not listed are NXDOMAIN, not forwarded.
        .arg("--local=/example.test/")
        // A and PTR for www; a bare single-label name to show no search list applies.
        .arg("--host-record=www.example.test,192.0.2.10")
        .arg("--host-record=intranet,192.0.2.20");
        let mut daemon = Daemon::spawn("dnsmasq", dir, cmd);
        daemon.wait_tcp(port);
        Dnsmasq {
            _daemon: daemon,
            port,
        }
    })
}

fn dns(port: u16, protocol: Protocol, request: &str, pattern: Option<&str>) -> CheckSpec {
    let mut spec = spec(Service::Dns, port);
    spec.protocol = protocol;
    spec.request = request.to_owned();
    spec.receive = pattern.and_then(receive);
    spec
}

#[tokio::test]
async fn a_record_matches_over_udp_and_tcp() {
    let server = dnsmasq();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let outcome = run(&dns(
            server.port,
            protocol,
            "/www.example.test",
            Some(r"^192\.0\.2\.10$"),
        ))
        .await;
        assert_up(&outcome);
        assert_eq!(outcome.reason, "Success");
    }
}

#[tokio::test]
async fn an_address_request_is_a_ptr_query() {
    let server = dnsmasq();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        // Net::DNS prints PTR names without the trailing dot; so do we.
        assert_up(
            &run(&dns(
                server.port,
                protocol,
                "/192.0.2.10",
                Some(r"^www\.example\.test$"),
            ))
            .await,
        );
    }
}

#[tokio::test]
async fn single_label_names_are_asked_as_written() {
    let server = dnsmasq();
    assert_up(
        &run(&dns(
            server.port,
            Protocol::Udp,
            "/intranet",
            Some(r"192\.0\.2\.20"),
        ))
        .await,
    );
}

#[tokio::test]
async fn down_when_the_answer_does_not_match() {
    let server = dnsmasq();
    let outcome = run(&dns(
        server.port,
        Protocol::Udp,
        "/www.example.test",
        Some(r"^10\.0\.0\.1$"),
    ))
    .await;
    assert_down(&outcome, "Response mismatch: 192.0.2.10");
}

#[tokio::test]
async fn down_on_nxdomain() {
    let server = dnsmasq();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let outcome = run(&dns(server.port, protocol, "/nope.example.test", Some("."))).await;
        assert_down(&outcome, "No answer received: NXDOMAIN");
    }
}

#[tokio::test]
async fn down_without_receive_as_stock() {
    let server = dnsmasq();
    assert_down(
        &run(&dns(server.port, Protocol::Udp, "/www.example.test", None)).await,
        "Response mismatch",
    );
}

#[tokio::test]
async fn down_on_closed_port() {
    let port = free_port();
    // UDP: the ICMP port unreachable is reported, no need to wait for the timeout.
    assert_down(
        &run(&dns(port, Protocol::Udp, "/www.example.test", Some("."))).await,
        "Connection refused",
    );
    assert_down(
        &run(&dns(port, Protocol::Tcp, "/www.example.test", Some("."))).await,
        "Connection refused",
    );
}

#[tokio::test]
async fn down_within_timeout_when_server_hangs() {
    let udp = hung_udp();
    assert_timed_out(
        &run(&short(dns(
            udp.port,
            Protocol::Udp,
            "/www.example.test",
            Some("."),
        )))
        .await,
    );
    let tcp = hung_tcp();
    assert_timed_out(
        &run(&short(dns(
            tcp.port,
            Protocol::Tcp,
            "/www.example.test",
            Some("."),
        )))
        .await,
    );
}

#[tokio::test]
async fn garbage_datagrams_are_ignored_until_the_timeout() {
    let socket = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let garbage = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        let (_, from) = socket.recv_from(&mut buf).await.unwrap();
        for junk in [&b"\x00"[..], b"garbage that is not DNS", &[0xffu8; 600]] {
            socket.send_to(junk, from).await.unwrap();
        }
    });
    assert_timed_out(
        &run(&short(dns(
            port,
            Protocol::Udp,
            "/www.example.test",
            Some("."),
        )))
        .await,
    );
    garbage.await.unwrap();
}
