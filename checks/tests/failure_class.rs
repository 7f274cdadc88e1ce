//! The class of a down outcome: what a metrics exporter counts results by. A refused
//! connect, a timeout, a receive mismatch and an external check's non-zero exit each get
//! their own, with the reason text unchanged.
mod core_support;

use std::io::{Read, Write};
use std::time::Duration;

use core_support::*;
use ldirectord_checks::{CheckSpec, FailureClass, Outcome, Verdict, build};
use ldirectord_parsers::config::{CheckType, Service};

async fn run(s: &CheckSpec) -> Outcome {
    build(s).unwrap().unwrap().check().await
}

fn assert_failed(out: &Outcome, class: FailureClass, reason: &str) {
    assert_eq!(out.verdict, Verdict::Down, "{out:?}");
    assert_eq!(out.class(), Some(class), "{out:?}");
    assert_eq!(out.reason, reason);
}

fn simpletcp(port: u16) -> CheckSpec {
    spec(CheckType::Negotiate, Service::Simpletcp, "127.0.0.1", port)
        .with_timeout(Duration::from_millis(300))
}

#[tokio::test]
async fn a_refused_connect_is_connect() {
    let s = spec(
        CheckType::Connect,
        Service::None,
        "127.0.0.1",
        closed_port(),
    );
    assert_failed(&run(&s).await, FailureClass::Connect, "Connection refused");
}

#[tokio::test]
async fn a_server_that_never_answers_is_timeout() {
    let out = run(&simpletcp(hung_server())).await;
    assert_failed(&out, FailureClass::Timeout, "timed out after 300ms");
}

#[tokio::test]
async fn an_answer_receive_does_not_match_is_mismatch() {
    // Reads the request to its end, answers a line that does not match, closes.
    let port = tcp_server(|mut conn| {
        let _ = conn.read_to_end(&mut Vec::new());
        let _ = conn.write_all(b"hello\n");
    });
    let s = simpletcp(port).with_receive(receive("bye").unwrap());
    assert_failed(
        &run(&s).await,
        FailureClass::Mismatch,
        "no line matched receive",
    );
}

#[tokio::test]
async fn an_external_check_exiting_non_zero_is_command() {
    let mut s = spec(CheckType::External, Service::None, "127.0.0.1", 80);
    s.checkcommand = "/bin/false".to_owned();
    assert_failed(&run(&s).await, FailureClass::Command, "exit status 1");
}

#[tokio::test]
async fn up_has_no_class() {
    let mut s = spec(CheckType::External, Service::None, "127.0.0.1", 80);
    s.checkcommand = "/bin/true".to_owned();
    let out = run(&s).await;
    assert!(out.is_up(), "{out:?}");
    assert_eq!(out.class(), None);
}
