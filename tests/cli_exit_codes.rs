//! Scenario 28 (reference §1.3, §8) through the real binary: what each action prints, on
//! which stream, and its exit code; one daemon per instance whatever the races; a config
//! error never orphans a running daemon (stock defect 21).

#[path = "fixtures/daemon/support.rs"]
mod support;

use support::{World, processes_with, wait_until};

const EMPTY: &str = "checkinterval=1\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn status_when_stopped_is_stdout_and_exit_3() {
    let w = World::new();
    let cfg = w.config("l.cf", EMPTY);
    let out = w.ld(&[cfg.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stdout),
        format!("ldirectord is stopped for {}\n", cfg.display())
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn stale_pid_file_is_exit_1_with_stale_line_on_stderr() {
    let w = World::new();
    let cfg = w.config("l.cf", EMPTY);
    // A pid that cannot exist (above pid_max's ceiling).
    std::fs::write(w.pid_file("l.cf"), "99999999\n").unwrap();
    let out = w.ld(&[cfg.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "ldirectord stale pid file {} for {}\n",
            w.pid_file("l.cf").display(),
            cfg.display()
        )
    );
    assert_eq!(
        text(&out.stdout),
        format!("ldirectord is stopped for {}\n", cfg.display())
    );
    // reload on a stale pid file: not running, exit 1; stop: exit 0.
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "reload"]).status.code(),
        Some(1)
    );
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "stop"]).status.code(),
        Some(0)
    );
}

#[test]
fn running_status_reload_and_stop() {
    let w = World::new();
    let cfg = w.config("l.cf", EMPTY);
    let c = cfg.to_str().unwrap();
    let out = w.ld(&[c, "reload"]);
    assert_eq!(out.status.code(), Some(1), "reload when not running");
    assert_eq!(
        text(&out.stderr),
        format!("ldirectord is stopped for {}\n", cfg.display())
    );
    let pid = w.start(c);
    let out = w.ld(&[c, "status"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "ldirectord for {} is running with pid: {pid}\n",
            cfg.display()
        )
    );
    let out = w.ld(&[c, "reload"]);
    assert_eq!(out.status.code(), Some(0));
    wait_until(30, "reload logged", || {
        w.log()
            .contains("Reloading Linux Director Daemon config on signal")
    });
    let out = w.ld(&[c, "stop"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    // stop returns once the daemon is gone and its pid file removed.
    assert!(!ldirectord::instance::alive(pid));
    assert!(!w.pid_file("l.cf").exists());
    assert!(
        w.log()
            .contains("Linux Director Daemon terminated on signal: TERM")
    );
    let out = w.ld(&[c, "status"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn start_twice_and_racing_starts_give_one_daemon() {
    let w = World::new();
    let cfg = w.config("race.cf", EMPTY);
    let c = cfg.to_str().unwrap();
    let pid = w.start(c);
    let out = w.ld(&[c, "start"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(w.pid("race.cf"), Some(pid));
    assert_eq!(processes_with(c), vec![pid]);
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));

    // Eight starts at once, none of which sees a pid file yet: the lock lets one win.
    let children: Vec<_> = (0..8)
        .map(|_| w.command(&[c, "start"]).spawn().unwrap())
        .collect();
    for mut child in children {
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
    let pid = w.pid("race.cf").expect("a daemon runs");
    assert_eq!(processes_with(c), vec![pid], "exactly one daemon");
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
    assert!(processes_with(c).is_empty());
}

#[test]
fn config_error_exits_2_for_every_action_and_keeps_the_pid_file() {
    let w = World::new();
    let cfg = w.config("l.cf", EMPTY);
    let c = cfg.to_str().unwrap();
    let pid = w.start(c);
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{good}quiescent=maybe\n")).unwrap();
    for action in [
        "status",
        "reload",
        "force-reload",
        "start",
        "restart",
        "try-restart",
        "stop",
    ] {
        let out = w.ld(&[c, action]);
        assert_eq!(out.status.code(), Some(2), "{action}");
        let err = text(&out.stderr);
        assert!(
            err.contains("quiescent must be 'yes' or 'no'"),
            "{action}: {err}"
        );
        assert_eq!(w.pid("l.cf"), Some(pid), "{action} kept the pid file");
        assert!(
            ldirectord::instance::alive(pid),
            "{action} left the daemon running"
        );
    }
    // Stock's one-line form on request.
    let out = w.ld(&["--error-format=stock", c, "status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!(
        "reading file {} at line 3: quiescent must be 'yes' or 'no'",
        cfg.display()
    )));
    std::fs::write(&cfg, good).unwrap();
    assert_eq!(w.ld(&[c, "status"]).status.code(), Some(0));
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));
}

#[test]
fn usage_errors_exit_255_with_usage_on_stdout() {
    let w = World::new();
    let cfg = w.config("l.cf", EMPTY);
    for args in [
        vec![cfg.to_str().unwrap(), "bogus"],
        vec![],
        vec!["-x", "status"],
        vec!["--engine", "kernel-magic", "status"],
    ] {
        let out = w.ld(&args);
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(
            text(&out.stdout).starts_with("Usage: ldirectord"),
            "{args:?}"
        );
    }
}

#[test]
fn missing_config_is_exit_1() {
    let w = World::new();
    let out = w.ld(&["nothere.cf", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "Config file nothere.cf not found\n");
}

#[test]
fn test_mode_ok_and_bad() {
    let w = World::new();
    let cfg = w.config(
        "ok.cf",
        "virtual=127.0.0.100:80\n\treal=127.0.0.1:80 masq\n",
    );
    let out = w.ld(&["--test", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("OK: 1 virtual service, 1 real server"));
    let bad = w.config(
        "bad.cf",
        "virtual=127.0.0.100:80\n\tscheduler=rr\n\tweight=3\n",
    );
    let out = w.ld(&["-t", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:4:", bad.display())), "{err}");
}

#[test]
fn test_mode_warns_about_a_secret_everyone_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let w = World::new();
    let cfg = w.config(
        "secret.cf",
        "virtual=127.0.0.100:21\n\treal=127.0.0.1:21 masq\n\tservice=ftp\n\tlogin=\"anonymous\"\n\tpasswd=\"hunter2\"\n",
    );
    let c = cfg.to_str().unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = w.ld(&["--test", c]);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{c} is readable by every user and holds a secret (passwd= at line 6)"
        )) && err.contains(&format!("chmod o-r {c}")),
        "{err}"
    );
    assert!(
        !err.contains("hunter2"),
        "the warning shows the secret: {err}"
    );
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = w.ld(&["--test", c]);
    assert!(!text(&out.stderr).contains("readable by every user"));
}

#[test]
fn userspace_engine_starts_and_stops_without_root() {
    // The userspace engine needs neither IPVS nor privileges (tests/userspace_*.rs cover
    // its forwarding); here only that start detaches and stop ends it.
    let w = World::new();
    let cfg = w.config("l.cf", EMPTY);
    let ld = |action: &str| {
        std::process::Command::new(support::BIN)
            .args(["--run-dir"])
            .arg(w.path("run"))
            .args(["--engine", "userspace", cfg.to_str().unwrap(), action])
            .env("LDIRECTORD_HA_DIR", w.path("ha.d"))
            .output()
            .unwrap()
    };
    let out = ld("start");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(w.pid_file("l.cf").exists());
    assert_eq!(ld("stop").status.code(), Some(0));
    assert!(!w.pid_file("l.cf").exists());
}

#[test]
fn netlink_without_ipvs_fails_start_with_the_reason() {
    // This machine's kernel has no IPVS: start must say so and leave nothing behind.
    let w = World::new();
    let cfg = w.config("l.cf", EMPTY);
    let out = std::process::Command::new(support::BIN)
        .arg("--run-dir")
        .arg(w.path("run"))
        .args([cfg.to_str().unwrap(), "start"])
        .env("LDIRECTORD_HA_DIR", w.path("ha.d"))
        .output()
        .unwrap();
    if out.status.code() == Some(0) {
        // A kernel with IPVS and the rights to use it: then the daemon runs; stop it.
        let stop = std::process::Command::new(support::BIN)
            .arg("--run-dir")
            .arg(w.path("run"))
            .args([cfg.to_str().unwrap(), "stop"])
            .env("LDIRECTORD_HA_DIR", w.path("ha.d"))
            .output()
            .unwrap();
        assert_eq!(stop.status.code(), Some(0));
        return;
    }
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("IPVS"), "{}", text(&out.stderr));
    wait_until(30, "pid file released", || {
        !ldirectord::instance::pidfile::PidLock::is_held(&w.pid_file("l.cf"))
    });
}

#[test]
fn debug_mode_stays_in_the_foreground_logs_to_stderr_and_writes_no_pid_file() {
    let w = World::new();
    let cfg = w.config("l.cf", EMPTY);
    let child = w
        .command(&["-d", cfg.to_str().unwrap(), "start"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    wait_until(30, "the foreground daemon programs its table", || {
        std::fs::read_to_string(w.path("log")).is_ok_and(|l| l.contains("-L -n --thresholds"))
    });
    assert!(!w.pid_file("l.cf").exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("Starting Linux Director v1.186-ha with pid: "),
        "{err}"
    );
    assert!(
        err.contains("Linux Director Daemon terminated on signal: TERM\n"),
        "{err}"
    );
    assert!(err.contains("Exiting with exit_status 0: "), "{err}");
}

#[test]
fn engine_directive_and_the_command_line_that_wins() {
    let w = World::new();
    let cfg = w.config("e.cf", "engine=userspace\ncheckinterval=1\n");
    let c = cfg.to_str().unwrap();
    // No --engine: the file's engine= decides.
    let ld = |action: &str| {
        std::process::Command::new(support::BIN)
            .arg("--run-dir")
            .arg(w.path("run"))
            .args([c, action])
            .env("LDIRECTORD_HA_DIR", w.path("ha.d"))
            .output()
            .unwrap()
    };
    let out = ld("start");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    wait_until(30, "engine logged", || {
        w.log().contains("using the userspace engine")
    });
    // The daemon's command line is the invoking one's PROGRAM CONFIG start, which is
    // what stock's OCF agent looks for with pgrep -f.
    let pid = w.pid("e.cf").expect("a daemon runs");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(text(&cmdline), format!("{}\0{c}\0start\0", support::BIN));
    let found = std::process::Command::new("pgrep")
        .args(["-f", &format!("{} {c} start", support::BIN)])
        .output()
        .unwrap();
    assert_eq!(text(&found.stdout).trim(), pid.to_string());
    assert_eq!(ld("stop").status.code(), Some(0));

    // --engine (here implied by the world's --ipvsadm) wins over the file.
    w.start(c);
    wait_until(30, "engine logged", || {
        w.log().contains("using the ipvsadm engine")
    });
    assert_eq!(w.ld(&[c, "stop"]).status.code(), Some(0));

    // A bad value is a configuration error at its line and column.
    let bad = w.config("bad.cf", "engine=kernel\n");
    let out = w.ld(&["--test", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:2:8", bad.display())), "{err}");
    assert!(err.contains("unknown engine"), "{err}");
}

/// `ldirectord sync-backup` through the ipvsadm engine (the recording stand-in): the
/// LSB-style exit codes, idempotent start and stop, a different backup named and left
/// alone, bad input refused before anything runs.
#[test]
fn sync_backup_exit_codes() {
    let w = World::new();
    let sb = |args: &[&str]| {
        let mut all = vec!["sync-backup"];
        all.extend_from_slice(args);
        w.ld(&all)
    };
    let daemons = || w.ipvsadm(&["-L", "--daemon"]);
    let out = sb(&["status", "lo"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "backup sync daemon on lo (syncid 0) is stopped\n"
    );
    for _ in 0..2 {
        let out = sb(&["start", "lo"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    assert_eq!(
        daemons(),
        "backup sync daemon (mcast=lo, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    let out = sb(&["status", "lo"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(0), "backup sync daemon on lo (syncid 0) is running\n")
    );
    assert_eq!(sb(&["status", "lo", "5"]).status.code(), Some(3));
    let out = sb(&["start", "lo", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "a different backup sync daemon already runs: backup sync daemon (mcast=lo, syncid=0"
        ),
        "{}",
        text(&out.stderr)
    );
    // Stopping another id leaves the running one alone.
    assert_eq!(sb(&["stop", "lo", "5"]).status.code(), Some(0));
    assert_eq!(sb(&["status", "lo"]).status.code(), Some(0));
    assert_eq!(sb(&["stop", "lo"]).status.code(), Some(0));
    assert_eq!(sb(&["stop", "lo"]).status.code(), Some(0));
    assert_eq!(daemons(), "");
    let out = sb(&["start", "nosuch0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no network interface \"nosuch0\" here"));
    for bad in [
        &["start", "lo", "256"][..],
        &["start"],
        &["begin", "lo"],
        &["start", "eth 0"],
    ] {
        assert_eq!(sb(bad).status.code(), Some(255), "{bad:?}");
    }
    let out = std::process::Command::new(support::BIN)
        .args(["--engine", "userspace", "sync-backup", "start", "lo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(text(&out.stderr).contains("no connection synchronisation"));
    assert_eq!(daemons(), "");
    let log = w.ipvsadm_log();
    assert!(
        log.contains("--start-daemon backup --mcast-interface lo --syncid 0\n"),
        "{log}"
    );
}

/// `syncdaemon=`: the master runs while the director does (started with it, stopped at
/// stop); next to a different master the director does not start and programs nothing.
#[test]
fn the_director_runs_its_master_sync_daemon() {
    let w = World::new();
    let body = "syncdaemon=lo 3\nsyncport=8850\nvirtual=127.0.0.100:80\n\treal=127.0.0.1:80 masq\n\tchecktype=on\n";
    let cfg = w.config("s.cf", body);
    let out = w.ld(&["--test", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = w.ld(&[cfg.to_str().unwrap(), "start"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        w.ipvsadm(&["-L", "--daemon"]),
        "master sync daemon (mcast=lo, syncid=3, maxlen=1472, group=224.0.0.81, port=8850, ttl=1)\n"
    );
    // A reload that leaves syncdaemon= alone leaves the daemon alone; a changed one is
    // restarted with the new settings (reloads are handled in order: once the second is
    // done, so is the first).
    w.config("s.cf", &format!("checkinterval=2\n{body}"));
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "reload"]).status.code(),
        Some(0)
    );
    w.config("s.cf", &body.replace("lo 3", "lo 4"));
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "reload"]).status.code(),
        Some(0)
    );
    wait_until(30, "the master restarted with id 4", || {
        w.ipvsadm(&["-L", "--daemon"]).contains("syncid=4,")
    });
    let log = w.ipvsadm_log();
    assert_eq!(log.matches("--start-daemon").count(), 2, "{log}");
    assert_eq!(log.matches("--stop-daemon master").count(), 1, "{log}");
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "stop"]).status.code(),
        Some(0)
    );
    assert_eq!(w.ipvsadm(&["-L", "--daemon"]), "");

    w.ipvsadm(&[
        "--start-daemon",
        "master",
        "--mcast-interface",
        "lo",
        "--syncid",
        "9",
    ]);
    let out = w.ld(&[cfg.to_str().unwrap(), "start"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "a different master sync daemon already runs: master sync daemon (mcast=lo, syncid=9"
        ),
        "{err}"
    );
    assert!(
        !w.ipvsadm(&["-L", "-n"]).contains("127.0.0.100"),
        "half-started"
    );
    wait_until(30, "pid file released", || {
        !ldirectord::instance::pidfile::PidLock::is_held(&w.pid_file("s.cf"))
    });

    let bad = w.config("bad.cf", "syncdaemon=lo 300\n");
    let out = w.ld(&["-t", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:2:15", bad.display())), "{err}");
    assert!(err.contains("sync id out of range"), "{err}");
}
