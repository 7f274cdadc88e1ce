//! `ipvsadm` failing under the running daemon (issue 14): the real binary with the ipvsadm
//! engine pointed at a wrapper around the recording stand-in that, while the file `fault`
//! says so, exits non-zero, is killed by SIGKILL, prints garbage, or hangs. Real HTTP
//! backends on loopback, checks every second. For each fault: the log says what went
//! wrong, the daemon retries, and once the fault ends the table converges on what the
//! checks say. A hung ipvsadm is killed after the engine's bound (15 s) and, while it
//! hangs, `status --json` answers and the checks go on (the backend counts them).

#[path = "fixtures/daemon/support.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::{Backend, Mode, World, processes_with, wait_until};

/// The wrapper: a fault from the file `fault`, else the stand-in.
fn wrap(world: &World) {
    std::fs::rename(world.path("ipvsadm"), world.path("ipvsadm-standin")).unwrap();
    let script = format!(
        r#"#!/bin/sh
case "$(cat '{dir}/fault' 2>/dev/null)" in
fail) echo "Memory allocation problem" >&2; exit 2 ;;
killed) kill -9 $$ ;;
garbage)
    case "$1" in
    -L) printf 'IP Virtual Server version ?\nTCP  not-an-address wrr\n  -> \001\002 junk\n'; exit 0 ;;
    *) printf '\377\376 garbage\n' >&2; exit 1 ;;
    esac ;;
hang) exec sleep 299.7 ;;
esac
exec '{dir}/ipvsadm-standin' "$@"
"#,
        dir = world.dir.path().display()
    );
    world.script("ipvsadm", &script);
}

#[test]
fn the_daemon_reports_retries_and_converges_through_ipvsadm_faults() {
    let world = World::new();
    wrap(&world);
    let a = Backend::start("127.0.0.1", Mode::Healthy);
    let b = Backend::start("127.0.0.1", Mode::Healthy);
    let config = world.config(
        "faults.cf",
        &format!(
            "checkinterval=1\nchecktimeout=2\nnegotiatetimeout=2\nquiescent=no\n\
             virtual=127.0.0.100:80\n\treal={} masq\n\treal={} masq\n\tservice=http\n\
             \trequest=\"/\"\n\treceive=\"OK\"\n\tchecktype=negotiate\n",
            a.addr, b.addr
        ),
    );
    let config = config.to_str().unwrap();
    let service = "TCP 127.0.0.100:80";
    let (ra, rb) = (a.addr.to_string(), b.addr.to_string());
    let both = support::sorted(vec![(ra.clone(), 1), (rb.clone(), 1)]);
    world.start(config);
    wait_until(60, "both reals in the table", || {
        world.reals(service) == both
    });
    let count = |needle: &str| world.log().lines().filter(|l| l.contains(needle)).count();
    let status_answers = || {
        let out = world.ld(&[config, "status", "--json"]);
        out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .is_ok_and(|v| v["virtuals"].is_array())
    };

    let rounds = [
        ("fail", "Memory allocation problem"),
        ("killed", "signal: 9"),
        ("garbage", "garbage"),
        ("hang", "no answer within 15s, killed"),
    ];
    let mut b_up = true;
    for (fault, logged) in rounds {
        let before = count(logged);
        std::fs::write(world.path("fault"), fault).unwrap();
        b.set(if b_up { Mode::Failing } else { Mode::Healthy });
        b_up = !b_up;
        wait_until(60, &format!("{fault}: logged {logged:?}"), || {
            count(logged) > before
        });
        // The fault goes on for 8 s: the loop must keep answering and checking.
        let hits = a.hits.load(Ordering::SeqCst);
        let start = Instant::now();
        let (mut answered, mut slowest) = (0, Duration::ZERO);
        while start.elapsed() < Duration::from_secs(8) {
            let asked = Instant::now();
            assert!(status_answers(), "{fault}: status --json failed");
            answered += 1;
            slowest = slowest.max(asked.elapsed());
            std::thread::sleep(Duration::from_millis(500));
        }
        let hits = a.hits.load(Ordering::SeqCst) - hits;
        println!(
            "{fault}: 8 s: {hits} checks of a, {answered} status answers (slowest {slowest:.2?})"
        );
        // A check every second: 8 expected, half is plenty on a loaded machine.
        assert!(hits >= 4, "{fault}: only {hits} checks of a in 8 s");
        std::fs::remove_file(world.path("fault")).unwrap();
        let want = if b_up {
            both.clone()
        } else {
            Some(vec![(ra.clone(), 1)])
        };
        wait_until(90, &format!("{fault}: converged"), || {
            world.reals(service) == want
        });
        println!("{fault}: logged, converged");
    }
    // A hung ipvsadm is killed, not left behind.
    wait_until(10, "no hung ipvsadm left", || {
        processes_with("sleep 299.7").is_empty()
    });
    assert!(
        count("ipvsadm listing:") >= 1,
        "garbage listing not reported"
    );
}
