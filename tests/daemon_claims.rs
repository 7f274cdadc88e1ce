//! One director per table (issue 14), through the real binary with the ipvsadm stand-in
//! as the shared kernel: the same file under two instance names, two files that share a
//! virtual service, a reload that would take another instance's service, a daemon killed
//! with SIGKILL whose claims do not block the next start, and `--test` left alone.

#[path = "fixtures/daemon/support.rs"]
mod support;

use std::path::Path;

use nix::sys::signal::Signal;
use support::{Backend, Mode, World, sorted, wait_until};

const V: &str = "TCP 127.0.0.100:80";
const V2: &str = "TCP 127.0.0.101:80";

fn signal(pid: i32, sig: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// HTTP virtuals at `vips` (port 80), each with `real` at weight `weight`.
fn body(vips: &[&str], real: &Backend, weight: u32) -> String {
    let mut text = String::from("checkinterval=1\nchecktimeout=1\n");
    for vip in vips {
        text.push_str(&format!(
            "virtual={vip}:80\n\tservice=http\n\trequest=\"/health\"\n\treceive=\"OK\"\n\
             \treal={} masq {weight}\n",
            real.addr
        ));
    }
    text
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The live claims of the world's run dir: `(instance, services)`.
fn claims(w: &World) -> Vec<(String, Vec<String>)> {
    let mut all: Vec<_> = ldirectord::instance::claims::live(&w.path("run"))
        .into_iter()
        .map(|c| (c.instance, c.services))
        .collect();
    all.sort();
    all
}

#[test]
fn the_same_file_under_two_names_runs_once() {
    let w = World::new();
    let r = Backend::start("127.0.0.1", Mode::Healthy);
    // /etc/ha.d/ldirectord.cf: `ldirectord start` is instance `ldirectord`,
    // `ldirectord ldirectord.cf start` (an OCF primitive's configfile) `ldirectord.cf`.
    let cf = w.path("ha.d/ldirectord.cf");
    let log = w.path("ld.log");
    let text = format!(
        "logfile=\"{}\"\n{}",
        log.display(),
        body(&["127.0.0.100"], &r, 1)
    );
    std::fs::write(&cf, text).unwrap();
    let first = w.ld(&["start"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let pid = w.pid("ldirectord").expect("pid file");
    let second = w.ld(&["ldirectord.cf", "start"]);
    assert_eq!(
        second.status.code(),
        Some(1),
        "refused: {}",
        stderr(&second)
    );
    let canonical = std::fs::canonicalize(&cf).unwrap();
    let want = format!(
        "{} is already managed by instance ldirectord (pid {pid})",
        canonical.display()
    );
    assert!(stderr(&second).contains(&want), "{}", stderr(&second));
    assert_eq!(
        w.pid("ldirectord.cf"),
        None,
        "no pid file left by the refused start"
    );
    assert_eq!(
        claims(&w),
        [("ldirectord".into(), vec!["-t 127.0.0.100:80".into()])]
    );
    // A symlink to the file is the same file too.
    let link = w.path("link.cf");
    std::os::unix::fs::symlink(&cf, &link).unwrap();
    let third = w.ld(&[link.to_str().unwrap(), "start"]);
    assert_eq!(third.status.code(), Some(1), "{}", stderr(&third));
    assert!(stderr(&third).contains(&want), "{}", stderr(&third));
    // --test reads the file, claims nothing and is not refused.
    let test = w.ld(&["--test", "ldirectord.cf"]);
    assert_eq!(test.status.code(), Some(0), "{}", stderr(&test));
    assert_eq!(w.ld(&["stop"]).status.code(), Some(0));
    assert!(claims(&w).is_empty(), "released at stop");
    let again = w.ld(&["ldirectord.cf", "start"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(w.ld(&["ldirectord.cf", "stop"]).status.code(), Some(0));
}

#[test]
fn two_files_sharing_a_virtual_and_a_reload_that_would_collide() {
    let w = World::new();
    let r = Backend::start("127.0.0.1", Mode::Healthy);
    let a = w.config("a.cf", &body(&["127.0.0.100"], &r, 1));
    let b = w.config("b.cf", &body(&["127.0.0.101", "127.0.0.100"], &r, 7));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let pid_a = w.start(a);
    let ra = r.addr.to_string();
    wait_until(30, "a's real up", || {
        w.reals(V) == sorted(vec![(ra.clone(), 1)])
    });
    let refused = w.ld(&[b, "start"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let want = format!(
        "virtual service -t 127.0.0.100:80 is already managed by instance a.cf (pid {pid_a}, \
         config {a})"
    );
    assert!(stderr(&refused).contains(&want), "{}", stderr(&refused));
    assert_eq!(w.reals(V2), None, "the refused instance programmed nothing");
    assert_eq!(
        w.ld(&["--test", b]).status.code(),
        Some(0),
        "--test unaffected"
    );

    // b without the shared virtual starts; a reload that adds it back is refused and
    // keeps b's old configuration (and a's table).
    w.config("b.cf", &body(&["127.0.0.101"], &r, 7));
    let pid_b = w.start(b);
    wait_until(30, "b's real up", || {
        w.reals(V2) == sorted(vec![(ra.clone(), 7)])
    });
    w.config("b.cf", &body(&["127.0.0.101", "127.0.0.100"], &r, 9));
    let changes = w.changes().len();
    signal(pid_b, Signal::SIGHUP);
    let want = format!(
        "virtual service -t 127.0.0.100:80 is already managed by instance a.cf (pid {pid_a}, \
         config {a}); one director per virtual service: the configuration is not reloaded"
    );
    wait_until(30, "the colliding reload refused", || {
        w.log().contains(&want)
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        w.changes().len(),
        changes,
        "no table change: {:?}",
        w.changes()
    );
    assert_eq!(
        w.reals(V2),
        sorted(vec![(ra.clone(), 7)]),
        "old weight kept"
    );
    assert_eq!(
        claims(&w),
        [
            ("a.cf".into(), vec!["-t 127.0.0.100:80".into()]),
            ("b.cf".into(), vec!["-t 127.0.0.101:80".into()])
        ]
    );

    // a killed with SIGKILL: its pid file and claims are left behind, and block nothing.
    signal(pid_a, Signal::SIGKILL);
    wait_until(30, "a gone", || !ldirectord::instance::alive(pid_a));
    assert!(
        Path::new(&w.pid_file("a.cf")).exists(),
        "stale pid file left"
    );
    signal(pid_b, Signal::SIGHUP);
    wait_until(30, "b took the service over", || {
        w.reals(V) == sorted(vec![(ra.clone(), 9)])
    });
    assert_eq!(
        claims(&w),
        [(
            "b.cf".into(),
            vec!["-t 127.0.0.100:80".into(), "-t 127.0.0.101:80".into()]
        )]
    );
    // And now a is the one refused.
    let refused = w.ld(&[a, "start"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("instance b.cf"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(w.ld(&[b, "stop"]).status.code(), Some(0));
    w.start(a);
    assert_eq!(w.ld(&[a, "stop"]).status.code(), Some(0));
    assert!(claims(&w).is_empty());
}

#[test]
fn a_daemon_killed_with_sigkill_leaves_no_claim_that_blocks() {
    let w = World::new();
    let r = Backend::start("127.0.0.1", Mode::Healthy);
    let a = w.config("a.cf", &body(&["127.0.0.100"], &r, 1));
    let a = a.to_str().unwrap();
    for _ in 0..3 {
        let pid = w.start(a);
        signal(pid, Signal::SIGKILL);
        wait_until(30, "killed", || !ldirectord::instance::alive(pid));
        assert_eq!(
            ldirectord::instance::claims::live(&w.path("run")),
            [],
            "a dead daemon's claim is not live"
        );
    }
    let pid = w.start(a);
    assert_eq!(
        claims(&w),
        [("a.cf".into(), vec!["-t 127.0.0.100:80".into()])]
    );
    assert_eq!(w.ld(&[a, "stop"]).status.code(), Some(0));
    assert!(!ldirectord::instance::alive(pid));
}
