//! `service=nntp`: the greeting's first byte decides. In-test servers stand in for a news
//! server (no light Debian NNTP server exists; inn2 is a whole news system).
mod core_support;

use std::time::Duration;

use core_support::*;
use ldirectord_checks::{CheckSpec, build};
use ldirectord_parsers::config::{CheckType, Service};

fn nntp(port: u16) -> CheckSpec {
    let mut s = spec(CheckType::Negotiate, Service::Nntp, "127.0.0.1", port);
    s.negotiatetimeout = Duration::from_secs(1);
    s
}

async fn run(port: u16) -> ldirectord_checks::Outcome {
    tokio::time::timeout(
        Duration::from_secs(30),
        build(&nntp(port)).unwrap().unwrap().check(),
    )
    .await
    .expect("check must end")
}

#[tokio::test]
async fn posting_and_no_posting_greetings_are_up() {
    let out = run(banner_server(
        b"200 news.example.com InterNetNews server ready\r\n",
    ))
    .await;
    assert!(out.is_up(), "{out:?}");
    assert_eq!(out.reason, "200 news.example.com InterNetNews server ready");
    assert!(run(banner_server(b"201 no posting\r\n")).await.is_up());
}

#[tokio::test]
async fn error_greeting_is_down() {
    let out = run(banner_server(b"502 access denied\r\n")).await;
    assert_eq!(
        (out.is_up(), out.reason.as_str()),
        (false, "502 access denied")
    );
}

#[tokio::test]
async fn closed_hung_reset_and_garbage_are_down() {
    let out = run(closed_port()).await;
    assert_eq!(
        (out.is_up(), out.reason.as_str()),
        (false, "Connection refused")
    );
    let out = run(hung_server()).await;
    assert_eq!(
        (out.is_up(), out.reason.as_str()),
        (false, "timed out after 1s")
    );
    let out = run(tcp_server(drop)).await;
    assert_eq!(
        (out.is_up(), out.reason.as_str()),
        (false, "connection closed without a greeting")
    );
    // Garbage: down unless its first byte happens to be '2' (it is not for this seed).
    let out = run(garbage_server()).await;
    assert!(!out.is_up(), "{out:?}");
}
