//! The shipped systemd units (`compat/units/`), checked by systemd itself:
//! `systemd-analyze verify` on both (with `ExecStart=` pointed at this build's binary, so
//! the check does not depend on what /usr/sbin holds), and the notify unit's promises:
//! readiness protocol, restart, watchdog, and a sandbox `systemd-analyze security` rates
//! better than "exposed" (the forking unit, stock's, has none).

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ldirectord");

fn unit(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("compat/units")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// `unit`'s text with the binary replaced, written under a temporary directory.
fn staged(dir: &Path, name: &str) -> std::path::PathBuf {
    let text = unit(name).replace("/usr/sbin/ldirectord", BIN);
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn analyze(args: &[&str], path: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
    (out.status.success(), text)
}

#[test]
fn both_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["ldirectord.service", "ldirectord-notify.service"] {
        let path = staged(dir.path(), name);
        // --man=no: the test host need not have this package's man pages installed.
        let (ok, text) = analyze(&["verify", "--man=no"], &path);
        // Other units on the host may draw warnings; none may name ours.
        let ours: Vec<_> = text.lines().filter(|l| l.contains(name)).collect();
        assert!(
            ok && ours.is_empty(),
            "systemd-analyze verify {name}:\n{text}"
        );
    }
}

#[test]
fn the_notify_unit_restarts_a_wedged_daemon_and_is_sandboxed() {
    let text = unit("ldirectord-notify.service");
    let has = |line: &str| text.lines().any(|l| l == line);
    for line in [
        "Type=notify",
        "NotifyAccess=all",
        "Restart=on-failure",
        "WatchdogSec=30s",
        "ExecStart=/usr/sbin/ldirectord start",
        "Conflicts=ldirectord.service",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=full",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
    ] {
        assert!(has(line), "{line} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = staged(dir.path(), "ldirectord-notify.service");
    let (_, report) = analyze(&["security", "--offline=true", "--no-pager"], &path);
    let level = report
        .lines()
        .find_map(|l| l.split("ldirectord-notify.service: ").nth(1))
        .unwrap_or_else(|| panic!("no overall exposure level:\n{report}"));
    let score: f64 = level.split_whitespace().next().unwrap().parse().unwrap();
    // systemd's scale: below 5 is "OK", 5 to 7 "MEDIUM", above "EXPOSED"/"UNSAFE".
    assert!(score < 5.0, "exposure {level}");
    println!("systemd-analyze security: ldirectord-notify.service {level}");
}
