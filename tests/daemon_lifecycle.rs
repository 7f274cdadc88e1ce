//! The daemon's life through the real binary, with the ipvsadm engine pointed at the
//! recording stand-in (`tests/fixtures/ipvsadm-standin.py`) and real HTTP backends on
//! loopback: start-up programming (§8-1), failure and recovery, quiescent, fallback and
//! fallbackcommand, reload by SIGHUP (one `-e`), a reload with a syntax error (§8-14),
//! autoreload and callback (§8-15), stop with cleanstop, a hung backend that does not delay
//! the others, engine errors that converge, e-mail alerts over SMTP, and children (check,
//! fallbackcommand, ipvsadm) that never see the daemon's private variable, and a detached
//! daemon that keeps no descriptor it inherited.

#[path = "fixtures/daemon/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};

use support::{Backend, Mode, World, sorted, wait_until};

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// A config with one HTTP virtual on 127.0.0.100:80 (rr) and the given extra lines.
fn http_virtual(reals: &[(&Backend, u32)], extra_block: &str) -> String {
    let mut block = String::from(
        "virtual=127.0.0.100:80\n\tservice=http\n\trequest=\"/health\"\n\treceive=\"OK\"\n\tscheduler=rr\n",
    );
    for (b, weight) in reals {
        block.push_str(&format!("\treal={} masq {weight}\n", b.addr));
    }
    block.push_str(extra_block);
    block
}

const V: &str = "TCP 127.0.0.100:80";

#[test]
fn start_failure_fallback_recovery_and_stop() {
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let r2 = Backend::start("127.0.0.1", Mode::Healthy);
    let dead_addr = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
    let fb_log = w.path("fb.log");
    let fb = w.script(
        "fb",
        &format!("#!/bin/sh\necho \"$@\" >> '{}'\n", fb_log.display()),
    );
    let body = format!(
        "checkinterval=1\nchecktimeout=1\nfallbackcommand={}\n{}\treal={dead_addr} masq 1\n\tfallback=127.0.0.1:9 masq\n",
        fb.display(),
        http_virtual(&[(&r1, 3), (&r2, 2)], "")
    );
    let cfg = w.config("l.cf", &body);
    let c = cfg.to_str().unwrap();
    let pid = w.start(c);
    // start returned: the virtual service is already in the table.
    assert!(
        w.reals(V).is_some(),
        "virtual programmed before start returned"
    );
    let (a1, a2) = (r1.addr.to_string(), r2.addr.to_string());
    wait_until(
        30,
        "both healthy reals up, no fallback, no dead real",
        || w.reals(V) == sorted(vec![(a1.clone(), 3), (a2.clone(), 2)]),
    );
    let changes = w.changes();
    assert_eq!(changes[0], "-A -t 127.0.0.100:80 -s rr");
    assert!(changes.contains(&format!("-a -t 127.0.0.100:80 -x 0 -y 0 -r {a1} -m -w 3")));
    assert!(
        !changes.iter().any(|l| l.contains(&dead_addr.to_string())),
        "the dead real never flaps into the table: {changes:?}"
    );
    let log = w.log();
    assert!(
        log.contains("Added virtual server: 127.0.0.100:80"),
        "{log}"
    );
    wait_until(30, "addition logged", || {
        w.log().contains(&format!(
            "Added real server: {a1} (127.0.0.100:80) (Weight set to 3)"
        ))
    });

    // One backend dies: removed; the other serves.
    r1.kill();
    wait_until(30, "dead real removed", || {
        w.reals(V) == sorted(vec![(a2.clone(), 2)])
    });
    assert!(
        w.changes()
            .contains(&format!("-d -t 127.0.0.100:80 -r {a1}"))
    );
    wait_until(30, "deletion logged", || {
        w.log()
            .contains(&format!("Deleted real server: {a1} (127.0.0.100:80)"))
    });
    // At start-up no real was up yet: like stock, the fallback command ran `start`, then
    // `stop` once the first real came up.
    let fb_text = |n: usize| {
        std::fs::read_to_string(&fb_log)
            .unwrap_or_default()
            .lines()
            .skip(n)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        fb_text(0),
        "start 127.0.0.100:80 tcp\nstop 127.0.0.100:80 tcp"
    );

    // The last one answers 500: fallback in, fallbackcommand start.
    r2.set(Mode::Failing);
    wait_until(30, "fallback added when all reals are down", || {
        w.reals(V) == sorted(vec![("127.0.0.1:9".into(), 1)])
    });
    wait_until(30, "fallbackcommand start", || {
        fb_text(2) == "start 127.0.0.100:80 tcp"
    });
    // One returns: fallback out, fallbackcommand stop.
    r2.set(Mode::Healthy);
    wait_until(30, "fallback removed when a real returns", || {
        w.reals(V) == sorted(vec![(a2.clone(), 2)])
    });
    wait_until(30, "fallbackcommand stop, no repeated start", || {
        fb_text(2) == "start 127.0.0.100:80 tcp\nstop 127.0.0.100:80 tcp"
    });

    // stop returns only after cleanstop ran and the daemon exited.
    let out = w.ld(&[c, "stop"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(w.reals(V).is_none(), "virtual deleted when stop returns");
    assert!(!ldirectord::instance::alive(pid));
    assert!(!w.pid_file("l.cf").exists());
    let changes = w.changes();
    assert_eq!(
        &changes[changes.len() - 2..],
        [
            format!("-d -t 127.0.0.100:80 -r {a2}"),
            "-D -t 127.0.0.100:80".to_owned()
        ]
    );
    let log = w.log();
    assert!(log.contains("Purged virtual server (stop): 127.0.0.100:80"));
    assert!(log.contains("Linux Director Daemon terminated on signal: TERM"));
}

#[test]
fn quiescent_keeps_the_entry_at_weight_0_and_cleanstop_no_leaves_it() {
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let r2 = Backend::start("127.0.0.1", Mode::Healthy);
    let body = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent=yes\ncleanstop=no\n{}",
        http_virtual(&[(&r1, 4), (&r2, 1)], "")
    );
    let cfg = w.config("q.cf", &body);
    let c = cfg.to_str().unwrap();
    w.start(c);
    let (a1, a2) = (r1.addr.to_string(), r2.addr.to_string());
    wait_until(30, "up", || {
        w.reals(V) == sorted(vec![(a1.clone(), 4), (a2.clone(), 1)])
    });
    r1.set(Mode::Failing);
    wait_until(30, "quiesced", || {
        w.reals(V) == sorted(vec![(a1.clone(), 0), (a2.clone(), 1)])
    });
    assert!(
        w.changes()
            .contains(&format!("-e -t 127.0.0.100:80 -r {a1} -m -w 0"))
    );
    wait_until(30, "quiesce logged", || {
        w.log().contains(&format!(
            "Quiescent real server: {a1} (127.0.0.100:80) (Weight set to 0)"
        ))
    });
    r1.set(Mode::Healthy);
    wait_until(30, "restored", || {
        w.reals(V) == sorted(vec![(a1.clone(), 4), (a2.clone(), 1)])
    });
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
    assert_eq!(
        w.reals(V),
        sorted(vec![(a1.clone(), 4), (a2.clone(), 1)]),
        "cleanstop=no leaves the table serving"
    );
}

#[test]
fn sighup_reload_is_one_edit_and_a_broken_reload_changes_nothing() {
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let r2 = Backend::start("127.0.0.1", Mode::Healthy);
    let body = |weight: u32| {
        format!(
            "checkinterval=1\nchecktimeout=1\n{}",
            http_virtual(&[(&r1, 2), (&r2, weight)], "")
        )
    };
    let cfg = w.config("r.cf", &body(1));
    let c = cfg.to_str().unwrap();
    let pid = w.start(c);
    let (a1, a2) = (r1.addr.to_string(), r2.addr.to_string());
    wait_until(30, "up", || {
        w.reals(V) == sorted(vec![(a1.clone(), 2), (a2.clone(), 1)])
    });
    let before = w.changes().len();
    w.config("r.cf", &body(5));
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    wait_until(30, "new weight", || {
        w.reals(V) == sorted(vec![(a1.clone(), 2), (a2.clone(), 5)])
    });
    // Let a couple of check rounds pass: nothing else may change.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        w.changes()[before..],
        [format!("-e -t 127.0.0.100:80 -x 0 -y 0 -r {a2} -m -w 5")]
    );
    assert!(
        w.log()
            .contains("Reloading Linux Director Daemon config on signal")
    );

    // Scenario 14: a syntax error → logged in stock's form, everything kept.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{good}checktimeout=0\n")).unwrap();
    let before = w.changes().len();
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    let line = good.lines().count() + 1;
    let want = format!(
        "Error [{pid}] reading file {} at line {line}: invalid check timeout value",
        cfg.display()
    );
    wait_until(30, "reload error logged", || w.log().contains(&want));
    assert_eq!(w.changes().len(), before, "table unchanged");
    // Checks continue under the old configuration (checktimeout=1 still in force).
    r2.kill();
    wait_until(30, "checks continue after a failed reload", || {
        w.reals(V) == sorted(vec![(a1.clone(), 2)])
    });
    std::fs::write(&cfg, good).unwrap();
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

#[test]
fn autoreload_and_callback() {
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let cb_log = w.path("cb.log");
    let cb = w.script(
        "cb",
        &format!("#!/bin/sh\necho \"$@\" >> '{}'\n", cb_log.display()),
    );
    let body = |autoreload: &str, weight: u32| {
        format!(
            "checkinterval=1\nchecktimeout=1\nautoreload={autoreload}\ncallback=\"{}\"\n{}",
            cb.display(),
            http_virtual(&[(&r1, weight)], "")
        )
    };
    let cfg = w.config("a.cf", &body("yes", 1));
    let c = cfg.to_str().unwrap();
    w.start(c);
    let a1 = r1.addr.to_string();
    wait_until(30, "up", || w.reals(V) == sorted(vec![(a1.clone(), 1)]));
    let changed = format!("Configuration file '{}' has changed on disk", cfg.display());

    // A touch (new mtime, same content) is nothing.
    let f = std::fs::File::options().write(true).open(&cfg).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!w.log().contains(&changed), "touch alone reported a change");
    assert!(!cb_log.exists(), "touch alone ran the callback");

    // A content change: reread, applied, callback run with the config path.
    w.config("a.cf", &body("yes", 7));
    wait_until(30, "autoreloaded", || {
        w.reals(V) == sorted(vec![(a1.clone(), 7)])
    });
    let log = w.log();
    assert!(log.contains(&format!("{changed}\n")), "{log}");
    assert!(log.contains("]  - reread new configuration\n"), "{log}");
    wait_until(30, "callback ran", || {
        std::fs::read_to_string(&cb_log).is_ok_and(|t| t == format!("{}\n", cfg.display()))
    });

    // autoreload=no (this change itself is read: autoreload was yes): then the next
    // change is ignored, but the callback still runs.
    w.config("a.cf", &body("no", 7));
    wait_until(30, "second callback", || {
        std::fs::read_to_string(&cb_log).is_ok_and(|t| t.lines().count() == 2)
    });
    w.config("a.cf", &body("no", 9));
    wait_until(30, "third callback", || {
        std::fs::read_to_string(&cb_log).is_ok_and(|t| t.lines().count() == 3)
    });
    assert!(w.log().contains("]  - ignore new configuration\n"));
    assert_eq!(
        w.reals(V),
        sorted(vec![(a1.clone(), 7)]),
        "ignored change not applied"
    );
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

#[test]
fn a_hung_backend_does_not_delay_detection_of_a_dead_one() {
    let w = World::new();
    let hung = Backend::start("127.0.0.1", Mode::Hung);
    let victim = Backend::start("127.0.0.1", Mode::Healthy);
    let other = Backend::start("127.0.0.1", Mode::Healthy);
    // The hung real's checks take 20 s each; stock checks one after another, so every
    // round (and the detection of the dead real) would wait for them.
    let body = format!(
        "checkinterval=1\n\
         virtual=127.0.0.200:80\n\tservice=http\n\treceive=\"OK\"\n\tnegotiatetimeout=20\n\treal={} masq\n\
         {}",
        hung.addr,
        http_virtual(&[(&victim, 1), (&other, 1)], "\tchecktimeout=1\n")
    );
    let cfg = w.config("h.cf", &body);
    let c = cfg.to_str().unwrap();
    w.start(c);
    let (av, ao) = (victim.addr.to_string(), other.addr.to_string());
    wait_until(15, "up", || {
        w.reals(V) == sorted(vec![(av.clone(), 1), (ao.clone(), 1)])
    });
    victim.kill();
    // Well under the hung check's 20 s.
    wait_until(15, "dead real removed while a check hangs", || {
        w.reals(V) == sorted(vec![(ao.clone(), 1)])
    });
    drop(hung);
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

/// A started daemon (instance `name`) directing two healthy HTTP backends, both up.
struct TwoUp {
    w: World,
    r1: Backend,
    /// Held so that it keeps serving.
    _r2: Backend,
    /// Their addresses, as `reals()` lists them.
    a1: String,
    a2: String,
    cfg: String,
    pid: i32,
}

fn two_up(name: &str, weights: (u32, u32)) -> TwoUp {
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let r2 = Backend::start("127.0.0.1", Mode::Healthy);
    let body = format!(
        "checkinterval=1\nchecktimeout=1\n{}",
        http_virtual(&[(&r1, weights.0), (&r2, weights.1)], "")
    );
    let cfg = w.config(name, &body).to_str().unwrap().to_owned();
    let pid = w.start(&cfg);
    let (a1, a2) = (r1.addr.to_string(), r2.addr.to_string());
    let both = sorted(vec![
        (a1.clone(), weights.0.into()),
        (a2.clone(), weights.1.into()),
    ]);
    wait_until(30, "both reals up", || w.reals(V) == both);
    TwoUp {
        w,
        r1,
        _r2: r2,
        a1,
        a2,
        cfg,
        pid,
    }
}

#[test]
fn engine_errors_are_logged_and_the_table_converges() {
    let t = two_up("e.cf", (1, 1));
    let (w, cfg, a1, a2, pid) = (&t.w, &t.cfg, &t.a1, &t.a2, t.pid);
    // Someone clears the table behind the daemon's back; then a real dies, so the
    // daemon's `-d` fails: it logs stock's system() line and rebuilds from a fresh dump.
    // Unless its read-back (every 10 s) came first: then it reports the change and
    // restores the table before the `-d`, which succeeds. Either way it is logged.
    w.ipvsadm(&["-C"]);
    t.r1.kill();
    let failed = format!("-d -t 127.0.0.100:80 -r {a1}) failed: ");
    let restored = "IPVS table changed outside ldirectord: virtual server 127.0.0.100:80 removed";
    wait_until(30, "engine error or outside change logged", || {
        let log = w.log();
        log.contains(&failed) || log.contains(restored)
    });
    if w.log().contains(&failed) {
        assert!(
            w.log()
                .contains(&format!("system({}", w.path("ipvsadm").display()))
        );
    }
    wait_until(30, "table rebuilt", || {
        w.reals(V) == sorted(vec![(a2.clone(), 1)])
    });
    assert!(
        ldirectord::instance::alive(pid),
        "the daemon survived engine errors"
    );
    assert_eq!(w.ld(&[cfg, "stop"]).status.code(), Some(0));
}

/// The host's kill -9 (the VM's scenario 41 does it at random moments with real IPVS): the
/// pid file and the lock of a SIGKILLed daemon do not keep the next `start` from working,
/// and the new daemon adopts the table: its only change is the one a check asks for.
#[test]
fn after_sigkill_the_next_start_works_and_adopts_the_table() {
    let t = two_up("k.cf", (1, 2));
    let (w, cfg, a1, a2, old) = (&t.w, &t.cfg, &t.a1, &t.a2, t.pid);
    ldirectord::instance::signal(old, nix::sys::signal::Signal::SIGKILL);
    assert!(ldirectord::instance::wait_gone(
        old,
        std::time::Duration::from_secs(10)
    ));
    assert!(w.pid_file("k.cf").exists(), "SIGKILL leaves the pid file");
    assert_eq!(w.ld(&[cfg, "status"]).status.code(), Some(1), "stale");
    let before = w.changes().len();
    let new = w.start(cfg);
    assert_ne!(new, old);
    assert_eq!(w.ld(&[cfg, "status"]).status.code(), Some(0));
    t.r1.kill();
    wait_until(30, "r1 removed by the new daemon", || {
        w.reals(V) == sorted(vec![(a2.clone(), 2)])
    });
    assert_eq!(
        w.changes()[before..],
        [format!("-d -t 127.0.0.100:80 -r {a1}")],
        "the restarted daemon changed more than the dead real"
    );
    assert_eq!(w.ld(&[cfg, "stop"]).status.code(), Some(0));
}

#[test]
fn a_table_cleared_behind_the_daemons_back_is_reported_and_restored() {
    let t = two_up("v.cf", (1, 2));
    let whole = sorted(vec![(t.a1.clone(), 1), (t.a2.clone(), 2)]);
    // No real changes state: only the read-back (every 10 s) can find it.
    t.w.ipvsadm(&["-C"]);
    wait_until(30, "table restored", || t.w.reals(V) == whole);
    assert!(
        t.w.log().contains(
            "IPVS table changed outside ldirectord: virtual server 127.0.0.100:80 removed; \
             restoring"
        ),
        "{}",
        t.w.log()
    );
    assert_eq!(t.w.ld(&[&t.cfg, "stop"]).status.code(), Some(0));
}

#[test]
fn alerts_go_out_over_smtp_one_rcpt_per_recipient() {
    // smtp= takes a host only (port 25): a listener on a loopback address of its own.
    let Ok(listener) = TcpListener::bind("127.0.0.77:25") else {
        panic!("cannot bind 127.0.0.77:25 (this test runs as root on a loopback /8)");
    };
    let (tx, rx) = std::sync::mpsc::channel::<Vec<String>>();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut out = conn.try_clone().unwrap();
            let mut lines = Vec::new();
            let mut read = BufReader::new(conn);
            let _ = out.write_all(b"220 test ESMTP\r\n");
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if read.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_owned();
                lines.push(line.clone());
                let reply: &[u8] = if in_data {
                    if line == "." {
                        in_data = false;
                        b"250 queued\r\n"
                    } else {
                        continue;
                    }
                } else if line == "DATA" {
                    in_data = true;
                    b"354 go ahead\r\n"
                } else if line == "QUIT" {
                    let _ = out.write_all(b"221 bye\r\n");
                    break;
                } else {
                    b"250 ok\r\n"
                };
                let _ = out.write_all(reply);
            }
            let _ = tx.send(lines);
        }
    });
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let r2 = Backend::start("127.0.0.1", Mode::Healthy);
    let body = format!(
        "checkinterval=1\nchecktimeout=1\nemailalert=\"ops@example.com, oncall@example.com\"\nsmtp=127.0.0.77\nemailalertfrom=lb@example.com\n{}",
        http_virtual(&[(&r1, 1), (&r2, 1)], "")
    );
    let cfg = w.config("m.cf", &body);
    let c = cfg.to_str().unwrap();
    w.start(c);
    let (a1, a2) = (r1.addr.to_string(), r2.addr.to_string());
    wait_until(30, "up", || {
        w.reals(V) == sorted(vec![(a1.clone(), 1), (a2.clone(), 1)])
    });
    r1.kill();
    let subject = format!("Subject: Deleted real server: {a1} (127.0.0.100:80)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let session = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let lines = rx.recv_timeout(left).expect("an alert mail within 30 s");
        if lines.contains(&subject) {
            break lines;
        }
    };
    assert!(session.iter().any(|l| l.starts_with("EHLO ")));
    assert!(session.iter().any(|l| l.starts_with("MAIL FROM:<")));
    assert!(session.contains(&"RCPT TO:<ops@example.com>".to_owned()));
    assert!(session.contains(&"RCPT TO:<oncall@example.com>".to_owned()));
    assert!(session.contains(&"From: lb@example.com".to_owned()));
    assert!(session.contains(&"Daemon-Status: running".to_owned()));
    assert!(w.log().contains(&format!(
        "emailalert: Deleted real server: {a1} (127.0.0.100:80)"
    )));
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

#[test]
fn maintenance_file_takes_a_real_out_and_back() {
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let r2 = Backend::start("127.0.0.1", Mode::Healthy);
    let mdir = w.path("maint");
    std::fs::create_dir_all(&mdir).unwrap();
    let monitor = w.path("monitor.log");
    let body = format!(
        "checkinterval=1\nchecktimeout=1\nmaintenancedir={}\n{}",
        mdir.display(),
        http_virtual(
            &[(&r1, 1), (&r2, 1)],
            &format!("\tmonitorfile=\"{}\"\n", monitor.display())
        )
    );
    let cfg = w.config("mt.cf", &body);
    let c = cfg.to_str().unwrap();
    w.start(c);
    let (a1, a2) = (r1.addr.to_string(), r2.addr.to_string());
    wait_until(30, "up", || {
        w.reals(V) == sorted(vec![(a1.clone(), 1), (a2.clone(), 1)])
    });
    std::fs::write(mdir.join(&a1), "").unwrap();
    wait_until(30, "in maintenance", || {
        w.reals(V) == sorted(vec![(a2.clone(), 1)])
    });
    let monitor_text = std::fs::read_to_string(&monitor).unwrap();
    assert!(
        monitor_text.contains("[down] Server in maintenance"),
        "{monitor_text}"
    );
    assert!(monitor_text.starts_with('['), "{monitor_text}");
    std::fs::remove_file(mdir.join(&a1)).unwrap();
    wait_until(30, "back", || {
        w.reals(V) == sorted(vec![(a1.clone(), 1), (a2.clone(), 1)])
    });
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

#[test]
fn children_never_see_the_daemons_private_variable() {
    // The daemon child gets its options in LDIRECTORD_RS_DAEMON_CHILD; a program it runs
    // that inherited it would take it too (an `ldirectord … start` from a fallbackcommand
    // would believe it is a daemon child). Each child here records its environment.
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let recorder = |name: &str, then: &str| {
        let record = w.path(&format!("{name}.env"));
        w.script(
            name,
            &format!("#!/bin/sh\nenv > '{}'\n{then}\n", record.display()),
        );
        record
    };
    let standin = std::fs::read_to_string(w.path("ipvsadm")).unwrap();
    let standin_body = standin.strip_prefix("#!/bin/sh\n").unwrap();
    let records = [
        recorder("check", "exit 0"),
        recorder("fb", "exit 0"),
        recorder("ipvsadm", standin_body),
    ];
    let body = format!(
        "checkinterval=1\nchecktimeout=2\nfallbackcommand={}\nvirtual=127.0.0.100:80\n\treal={} masq 1\n\tchecktype=external\n\tcheckcommand=\"{}\"\n\tscheduler=rr\n",
        w.path("fb").display(),
        r1.addr,
        w.path("check").display()
    );
    let cfg = w.config("env.cf", &body);
    let c = cfg.to_str().unwrap();
    w.start(c);
    let a1 = r1.addr.to_string();
    wait_until(30, "the external check brought the real up", || {
        w.reals(V) == sorted(vec![(a1.clone(), 1)])
    });
    for record in &records {
        let text = std::fs::read_to_string(record)
            .unwrap_or_else(|e| panic!("{} was never written: {e}", record.display()));
        assert!(text.contains("PATH="), "{}: {text}", record.display());
        assert!(
            !text.contains("LDIRECTORD_RS_DAEMON_CHILD"),
            "{} inherited the daemon's options: {text}",
            record.display()
        );
    }
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

#[test]
fn the_detached_daemon_keeps_no_inherited_descriptor() {
    // Under heartbeat the daemon kept heartbeat's sockets and log files: whatever the
    // invoking process had open without close-on-exec. Here `start` runs with fd 7 open on
    // a marker file (a shell's `exec 7<` leaves it inheritable); the daemon must not hold it.
    let w = World::new();
    let r1 = Backend::start("127.0.0.1", Mode::Healthy);
    let cfg = w.config("fd.cf", &http_virtual(&[(&r1, 1)], ""));
    let c = cfg.to_str().unwrap();
    let marker = w.path("inherited-marker");
    std::fs::write(&marker, "held by whoever started ldirectord\n").unwrap();
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", "exec 7<\"$1\"; shift; exec \"$@\"", "sh"])
        .arg(&marker)
        .arg(support::BIN)
        .arg("--run-dir")
        .arg(w.path("run"))
        .arg("--ipvsadm")
        .arg(w.path("ipvsadm"))
        .args([c, "start"])
        .current_dir(w.dir.path())
        .env("LDIRECTORD_HA_DIR", w.path("ha.d"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let pid = w.pid("fd.cf").expect("pid file after start");
    let a1 = r1.addr.to_string();
    wait_until(30, "the real is up", || {
        w.reals(V) == sorted(vec![(a1.clone(), 1)])
    });
    let fds: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), target))
        })
        .collect();
    assert!(
        fds.iter().all(|(_, target)| *target != marker),
        "the daemon holds the inherited descriptor: {fds:?}"
    );
    for std_fd in ["0", "1", "2"] {
        let target = fds.iter().find(|(fd, _)| fd == std_fd).map(|(_, t)| t);
        assert_eq!(
            target.map(|t| t.as_path()),
            Some(std::path::Path::new("/dev/null")),
            "fd {std_fd}: {fds:?}"
        );
    }
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}
