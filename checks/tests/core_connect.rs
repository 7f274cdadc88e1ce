//! `checktype=connect` against real listeners on loopback, a closed port, a garbage
//! server, and an address in a private namespace that never answers.
mod core_support;

use std::time::Duration;

use core_support::*;
use ldirectord_checks::{build, connect};
use ldirectord_parsers::config::{CheckType, Service};

fn checker(ip: &str, port: u16) -> std::sync::Arc<dyn ldirectord_checks::Checker> {
    let mut s = spec(CheckType::Connect, Service::None, ip, port);
    s.checktimeout = Duration::from_secs(1);
    build(&s).unwrap().unwrap()
}

#[tokio::test]
async fn up_when_a_real_server_listens_v4_and_v6() {
    let nginx = Nginx::start();
    let out = checker("127.0.0.1", nginx.http).check().await;
    assert!(out.is_up(), "{out:?}");
    assert_eq!(out.reason, "-");
    let out = checker("::1", nginx.http).check().await;
    assert!(out.is_up(), "{out:?}");
}

#[tokio::test]
async fn down_on_a_closed_port() {
    let out = checker("127.0.0.1", closed_port()).check().await;
    assert!(!out.is_up());
    assert_eq!(out.reason, "Connection refused");
}

#[tokio::test]
async fn no_port_is_down() {
    let mut s = spec(CheckType::Connect, Service::None, "127.0.0.1", 0);
    s.port = None;
    let out = build(&s).unwrap().unwrap().check().await;
    assert!(!out.is_up());
    assert_eq!(out.reason, connect::NO_PORT);
}

#[tokio::test]
async fn a_garbage_speaking_server_is_still_up_for_a_connect() {
    // connect only opens the connection: what the server says does not matter.
    let out = checker("127.0.0.1", garbage_server()).check().await;
    assert!(out.is_up(), "{out:?}");
}

#[test]
fn times_out_when_nothing_answers_the_syn() {
    let out = in_netns(BLACKHOLE_NS, || block_on(checker("10.255.0.2", 80).check()));
    assert!(!out.is_up());
    assert_eq!(out.reason, "timed out after 1s");
}

#[test]
fn unreachable_route_is_down_at_once() {
    let out = in_netns(BLACKHOLE_NS, || block_on(checker("10.254.0.9", 80).check()));
    assert!(!out.is_up());
    assert_eq!(out.reason, "No route to host");
}

/// The director closes with a reset: its side keeps no TIME_WAIT socket per check.
#[tokio::test]
async fn leaves_no_time_wait_behind() {
    // A server that accepts and waits for the client to close, so the client closes first
    // (the case that would leave TIME_WAIT on the director).
    let port = tcp_server(|mut conn| {
        let mut buf = [0u8; 16];
        let _ = std::io::Read::read(&mut conn, &mut buf);
    });
    let c = checker("127.0.0.1", port);
    for _ in 0..20 {
        assert!(c.check().await.is_up());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let time_wait = sockets_of(port, |state| state == "06");
    assert!(
        time_wait.is_empty(),
        "sockets of port {port} left in TIME_WAIT: {time_wait:?}"
    );
}
