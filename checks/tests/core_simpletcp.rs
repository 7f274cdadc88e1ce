//! `service=simpletcp` over TCP (against a real nginx: an HTTP exchange is a line
//! protocol) and over UDP (a small in-test responder: no Debian server speaks a generic
//! line protocol over UDP), plus closed, hung, resetting and garbage servers.
mod core_support;

use std::net::UdpSocket;
use std::time::Duration;

use core_support::*;
use ldirectord_checks::{CheckSpec, build};
use ldirectord_parsers::config::{CheckType, Protocol, Service};

fn simpletcp(port: u16, request: &str, recv: Option<&str>) -> CheckSpec {
    let mut s = spec(CheckType::Negotiate, Service::Simpletcp, "127.0.0.1", port);
    s.request = format!("/{request}");
    s.receive = recv.and_then(receive);
    s.negotiatetimeout = Duration::from_secs(1);
    s
}

async fn run(s: &CheckSpec) -> ldirectord_checks::Outcome {
    tokio::time::timeout(Duration::from_secs(30), build(s).unwrap().unwrap().check())
        .await
        .expect("check must end")
}

#[tokio::test]
async fn tcp_request_with_escaped_newlines_and_a_matching_line() {
    let nginx = Nginx::start();
    // `\n` in the config is the two characters backslash and n.
    let s = simpletcp(nginx.http, r"GET /ok HTTP/1.0\nHost: x\n\n", Some(r"^OK$"));
    let out = run(&s).await;
    assert!(out.is_up(), "{out:?}");
    assert_eq!(out.reason, "OK");
    let s = simpletcp(nginx.http, r"GET /ok HTTP/1.0\n\n", Some(r"HTTP/1\.1 200"));
    assert_eq!(run(&s).await.reason, "HTTP/1.1 200 OK");
    // No receive: the first line is enough.
    assert!(
        run(&simpletcp(nginx.http, r"GET /ok HTTP/1.0\n\n", None))
            .await
            .is_up()
    );
}

#[tokio::test]
async fn tcp_wrong_answer_is_down() {
    let nginx = Nginx::start();
    let out = run(&simpletcp(
        nginx.http,
        r"GET /error HTTP/1.0\n\n",
        Some(r"^OK$"),
    ))
    .await;
    assert!(!out.is_up());
    assert_eq!(out.reason, "no line matched receive");
}

#[tokio::test]
async fn tcp_closed_hung_reset_and_garbage_are_down() {
    let out = run(&simpletcp(closed_port(), "PING", Some("PONG"))).await;
    assert_eq!(
        (out.is_up(), out.reason.as_str()),
        (false, "Connection refused")
    );
    let out = run(&simpletcp(hung_server(), "PING", Some("PONG"))).await;
    assert_eq!(
        (out.is_up(), out.reason.as_str()),
        (false, "timed out after 1s")
    );
    let out = run(&simpletcp(resetting_server(), "PING", Some("PONG"))).await;
    assert!(!out.is_up(), "{out:?}");
    let out = run(&simpletcp(garbage_server(), "PING", Some("^PONG$"))).await;
    assert!(!out.is_up(), "{out:?}");
}

/// A UDP responder answering each datagram with `reply`.
fn udp_responder(reply: &'static [u8]) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            if &buf[..n] == b"PING\n" {
                let _ = sock.send_to(reply, peer);
            }
        }
    });
    port
}

#[tokio::test]
async fn udp_lines() {
    let mut s = simpletcp(udp_responder(b"hello\nPONG ok\n"), r"PING\n", Some("^PONG"));
    s.protocol = Protocol::Udp;
    let out = run(&s).await;
    assert!(out.is_up(), "{out:?}");
    assert_eq!(out.reason, "PONG ok");

    let mut s = simpletcp(udp_responder(b"NOPE\n"), r"PING\n", Some("^PONG"));
    s.protocol = Protocol::Udp;
    let out = run(&s).await;
    assert_eq!(
        (out.is_up(), out.reason.as_str()),
        (false, "timed out after 1s")
    );

    // Nothing listening: the ICMP port unreachable comes back as a refusal.
    let mut s = simpletcp(closed_port(), r"PING\n", Some("^PONG"));
    s.protocol = Protocol::Udp;
    let out = run(&s).await;
    assert_eq!(
        (out.is_up(), out.reason.as_str()),
        (false, "Connection refused")
    );
}
