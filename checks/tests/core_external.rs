//! `checktype=external` and `external-perl`: real scripts in a temp dir run with stock's
//! arguments; exit codes, exec failures, and a hung script whose whole process group must
//! be killed and reaped on timeout.
mod core_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use core_support::*;
use ldirectord_checks::{CheckSpec, build};
use ldirectord_parsers::config::{CheckType, Service, VirtualAddress};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn external(cmd: &Path, checktype: CheckType) -> CheckSpec {
    let mut s = spec(checktype, Service::None, "127.0.0.2", 9001);
    s.virtual_address = VirtualAddress::Inet {
        ip: "127.0.0.1".parse().unwrap(),
        port: 9000,
    };
    s.checkcommand = cmd.display().to_string();
    s.checktimeout = Duration::from_secs(1);
    s
}

async fn run(s: &CheckSpec) -> ldirectord_checks::Outcome {
    build(s).unwrap().unwrap().check().await
}

#[tokio::test]
async fn exit_zero_is_up_with_stock_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("args");
    let cmd = script(
        dir.path(),
        "ok.sh",
        &format!("#!/bin/sh\necho \"$@\" > {}\nexit 0\n", out_file.display()),
    );
    let out = run(&external(&cmd, CheckType::External)).await;
    assert!(out.is_up(), "{out:?}");
    assert_eq!(out.reason, "-");
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "127.0.0.1 9000 127.0.0.2 9001\n"
    );

    // fwmark virtual, real without port, IPv6 real.
    let mut s = external(&cmd, CheckType::External);
    s.virtual_address = fwmark(33);
    s.real_port = 0;
    assert!(run(&s).await.is_up());
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "33 0 127.0.0.2 0\n"
    );
    let mut s = external(&cmd, CheckType::External);
    s.virtual_address = VirtualAddress::Inet {
        ip: "::1".parse().unwrap(),
        port: 9000,
    };
    s.ip = "::1".parse().unwrap();
    assert!(run(&s).await.is_up());
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "[::1] 9000 [::1] 9001\n"
    );
}

#[tokio::test]
async fn non_zero_exit_is_down_with_the_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = script(
        dir.path(),
        "three.sh",
        "#!/bin/sh\necho 'backend says no' >&2\nexit 3\n",
    );
    let out = run(&external(&cmd, CheckType::External)).await;
    assert!(!out.is_up());
    assert_eq!(out.reason, "exit status 3: backend says no");
    let cmd = script(dir.path(), "quiet.sh", "#!/bin/sh\nexit 1\n");
    assert_eq!(
        run(&external(&cmd, CheckType::External)).await.reason,
        "exit status 1"
    );
}

#[tokio::test]
async fn exec_failures_are_down() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = run(&external(&missing, CheckType::External)).await;
    assert!(!out.is_up());
    assert_eq!(
        out.reason,
        format!(
            "cannot run {}: No such file or directory",
            missing.display()
        )
    );
    let noexec = dir.path().join("noexec.sh");
    std::fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    let out = run(&external(&noexec, CheckType::External)).await;
    assert!(!out.is_up());
    assert!(out.reason.ends_with("Permission denied"), "{}", out.reason);
}

/// Whether `pid` still exists as a live (non-zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("");
            state != "Z" && state != "X"
        }
    }
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_script_and_its_children_are_killed_and_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // Ignores SIGTERM and starts a child that does too: only SIGKILL to the group ends it.
    let cmd = script(
        dir.path(),
        "hang.sh",
        &format!(
            "#!/bin/sh\ntrap '' TERM\nsleep 30 &\necho $$ $! > {p}.tmp\nmv {p}.tmp {p}\nwait\nsleep 30\n",
            p = pids.display()
        ),
    );
    let s = external(&cmd, CheckType::External);
    let out = tokio::time::timeout(Duration::from_secs(30), run(&s))
        .await
        .expect("the check must end");
    assert!(!out.is_up());
    assert_eq!(out.reason, "timed out after 1s");

    let text = std::fs::read_to_string(&pids).expect("the script ran");
    let ids: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let (script_pid, child_pid) = (ids[0], ids[1]);
    // Cleanup runs in the background (TERM, grace, KILL, reap): wait for it, generously.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (exists(script_pid) || alive(child_pid)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !exists(script_pid),
        "the script {script_pid} was not killed and reaped (no zombie may remain)"
    );
    assert!(!alive(child_pid), "the script's child {child_pid} survived");
}

#[tokio::test]
async fn a_background_process_holding_stderr_does_not_hold_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg");
    let cmd = script(
        dir.path(),
        "bg.sh",
        &format!(
            "#!/bin/sh\nsleep 5 &\necho $! > {}\nexit 0\n",
            pidfile.display()
        ),
    );
    let mut s = external(&cmd, CheckType::External);
    s.checktimeout = Duration::from_secs(3);
    let out = run(&s).await;
    assert!(out.is_up(), "{out:?}");
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
}

#[tokio::test]
async fn external_perl_runs_the_file_with_the_same_contract() {
    require("perl", "perl-base");
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("args");
    let ok = dir.path().join("ok.pl");
    std::fs::write(
        &ok,
        format!("open(my $f, '>', '{}') or die; print $f join(' ', @ARGV), \"\\n\"; close $f; exit(0);\n", out_file.display()),
    )
    .unwrap();
    let out = run(&external(&ok, CheckType::ExternalPerl)).await;
    assert!(out.is_up(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "127.0.0.1 9000 127.0.0.2 9001\n"
    );

    let two = dir.path().join("two.pl");
    std::fs::write(&two, "exit(2);\n").unwrap();
    let out = run(&external(&two, CheckType::ExternalPerl)).await;
    assert!(!out.is_up());
    assert_eq!(out.reason, "exit status 2");

    let dies = dir.path().join("dies.pl");
    std::fs::write(&dies, "die \"backend gone\\n\";\n").unwrap();
    let out = run(&external(&dies, CheckType::ExternalPerl)).await;
    assert!(!out.is_up());
    assert_eq!(out.reason, "exit status 255: backend gone");

    let hangs = dir.path().join("hangs.pl");
    std::fs::write(&hangs, "sleep(30); exit(0);\n").unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        run(&external(&hangs, CheckType::ExternalPerl)),
    )
    .await
    .expect("the check must end");
    assert!(!out.is_up());
    assert_eq!(out.reason, "timed out after 1s");
}
