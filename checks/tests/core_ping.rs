//! ICMP ping (and `connect` on UDP virtuals) against loopback v4/v6, and inside a private
//! network namespace: an address nobody answers, an unreachable route, no network at all.
mod core_support;

use std::time::Duration;

use core_support::*;
use ldirectord_checks::{CheckSpec, build};
use ldirectord_parsers::config::{CheckType, Protocol, Service};

fn ping(ip: &str) -> CheckSpec {
    let mut s = spec(CheckType::Ping, Service::None, ip, 0);
    s.port = None;
    s.checktimeout = Duration::from_secs(1);
    s
}

async fn run(s: &CheckSpec) -> ldirectord_checks::Outcome {
    build(s).unwrap().unwrap().check().await
}

#[tokio::test]
async fn loopback_v4_and_v6_answer() {
    let out = run(&ping("127.0.0.1")).await;
    assert!(out.is_up(), "{out:?}");
    assert_eq!(out.reason, "-");
    let out = run(&ping("::1")).await;
    assert!(out.is_up(), "{out:?}");
}

#[tokio::test]
async fn connect_on_a_udp_virtual_is_a_ping() {
    // No UDP listener anywhere: a ping still answers, a UDP "connect" could not.
    let mut s = spec(
        CheckType::Connect,
        Service::None,
        "127.0.0.1",
        closed_port(),
    );
    s.protocol = Protocol::Udp;
    let out = run(&s).await;
    assert!(out.is_up(), "{out:?}");
}

#[tokio::test]
async fn concurrent_pings_of_one_address_do_not_collide() {
    let checks: Vec<_> = (0..20)
        .map(|_| build(&ping("127.0.0.1")).unwrap().unwrap())
        .collect();
    let outs = futures::future::join_all(checks.iter().map(|c| c.check())).await;
    assert!(outs.iter().all(|o| o.is_up()), "{outs:?}");
}

#[test]
fn silent_address_times_out_after_every_attempt() {
    let mut s = ping("10.255.0.2");
    s.checkcount = 2;
    let out = in_netns(BLACKHOLE_NS, move || block_on(run(&s)));
    assert!(!out.is_up());
    assert_eq!(out.reason, "timed out after 1s (2 attempts)");
    let s6 = ping("2001:db8:ff::2");
    let out = in_netns(BLACKHOLE_NS, move || block_on(run(&s6)));
    assert!(!out.is_up());
    assert_eq!(out.reason, "timed out after 1s");
}

#[test]
fn own_address_in_the_namespace_answers() {
    let s = ping("10.255.0.1");
    let out = in_netns(BLACKHOLE_NS, move || block_on(run(&s)));
    assert!(out.is_up(), "{out:?}");
}

#[test]
fn unreachable_route_and_no_network_are_down() {
    let s = ping("10.254.0.9");
    let out = in_netns(BLACKHOLE_NS, move || block_on(run(&s)));
    assert!(!out.is_up());
    assert_eq!(out.reason, "No route to host");
    // A namespace with nothing configured, not even lo.
    let s = ping("127.0.0.1");
    let out = in_netns(&[], move || block_on(run(&s)));
    assert!(!out.is_up());
    assert_eq!(out.reason, "Network is unreachable");
}
