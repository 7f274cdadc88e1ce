//! heartbeat v1's contract (cluster-integration §5.1 H1-H10): the binary called as
//! `/etc/ha.d/resource.d/ldirectord CONFIG start|stop|status`, with what goes to stdout
//! (the only stream heartbeat reads for `status`) and to stderr. The resource script here
//! is a wrapper adding the test's pid directory and ipvsadm stand-in; the arguments
//! heartbeat passes are untouched.

#[path = "fixtures/daemon/support.rs"]
mod support;

use std::process::{Command, Output, Stdio};

use support::{BIN, World, wait_until};

/// heartbeat's `status` rule (ResourceManager): stdout only; "not ... running" is not
/// owned, else "running" or "OK" is owned, else not owned.
fn heartbeat_owns(stdout: &str) -> bool {
    let lower = stdout.to_lowercase();
    if let Some(i) = lower.find("not ")
        && lower[i..].contains("running")
    {
        return false;
    }
    lower.contains("running") || stdout.contains("OK")
}

struct Resource<'w> {
    w: &'w World,
    script: std::path::PathBuf,
}

impl Resource<'_> {
    fn new(w: &World) -> Resource<'_> {
        std::fs::create_dir_all(w.path("resource.d")).unwrap();
        let script = w.script(
            "resource.d/ldirectord",
            &format!(
                "#!/bin/sh\nexec '{BIN}' --run-dir '{}' --ipvsadm '{}' \"$@\"\n",
                w.path("run").display(),
                w.path("ipvsadm").display()
            ),
        );
        Resource { w, script }
    }

    /// `ldirectord::ldirectord.cf` in haresources: `ldirectord ldirectord.cf ACTION`.
    fn call(&self, action: &str) -> Output {
        Command::new(&self.script)
            .args(["ldirectord.cf", action])
            .env("LDIRECTORD_HA_DIR", self.w.path("ha.d"))
            .env("HA_CURHOST", "nodea")
            .current_dir(self.w.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn h1_to_h10_through_the_resource_script() {
    let w = World::new();
    let cf = w.path("ha.d/ldirectord.cf");
    let body = format!(
        "logfile=\"{}\"\nvirtual=127.0.0.100:80\n\tchecktype=on\n\treal=127.0.0.1:80 masq 1\n",
        w.path("ld.log").display()
    );
    std::fs::write(&cf, &body).unwrap();
    let r = Resource::new(&w);
    let shown = cf.display().to_string();

    // H1
    let o = r.call("status");
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        text(&o.stdout),
        format!("ldirectord is stopped for {shown}\n")
    );
    assert!(!heartbeat_owns(&text(&o.stdout)));
    // H6 (before any start) and H9 when stopped.
    assert_eq!(r.call("stop").status.code(), Some(0));
    let o = r.call("reload");
    assert_eq!(o.status.code(), Some(1));
    // H2
    let o = r.call("start");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let pid = w
        .pid("ldirectord.cf")
        .expect("pid file ldirectord.ldirectord.cf.pid");
    wait_until(30, "table built", || {
        w.reals("TCP 127.0.0.100:80") == Some(vec![("127.0.0.1:80".into(), 1)])
    });
    // H3: running goes to stderr; stdout stays empty, so heartbeat says "not owned"
    // and relies on start being a no-op (H4).
    let o = r.call("status");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "");
    assert_eq!(
        text(&o.stderr),
        format!("ldirectord for {shown} is running with pid: {pid}\n")
    );
    assert!(!heartbeat_owns(&text(&o.stdout)));
    // H4
    let before = w.changes();
    assert_eq!(r.call("start").status.code(), Some(0));
    assert_eq!(w.pid("ldirectord.cf"), Some(pid));
    assert_eq!(w.changes(), before);
    // H9
    assert_eq!(r.call("reload").status.code(), Some(0));
    // H5
    assert_eq!(r.call("stop").status.code(), Some(0));
    assert_eq!(w.reals("TCP 127.0.0.100:80"), None, "cleanstop purged");
    assert_eq!(r.call("status").status.code(), Some(3));
    // H6
    assert_eq!(r.call("stop").status.code(), Some(0));

    // H7: a pid file naming a dead process.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(w.pid_file("ldirectord.cf"), format!("{dead_pid}\n")).unwrap();
    let o = r.call("status");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains(&format!(
            "ldirectord stale pid file {} for {shown}",
            w.pid_file("ldirectord.cf").display()
        )),
        "{o:?}"
    );
    assert_eq!(
        text(&o.stdout),
        format!("ldirectord is stopped for {shown}\n")
    );
    assert_eq!(r.call("stop").status.code(), Some(0));
    std::fs::remove_file(w.pid_file("ldirectord.cf")).ok();

    // H8: a syntax error exits 2 for every action.
    std::fs::write(&cf, format!("{body}\tnonsense=1\n")).unwrap();
    for action in ["start", "status", "stop"] {
        let o = r.call(action);
        assert_eq!(o.status.code(), Some(2), "{action}: {o:?}");
    }
    std::fs::write(&cf, &body).unwrap();

    // H10
    let o = r.call("bogus");
    assert_eq!(o.status.code(), Some(255));
    assert!(text(&o.stdout).contains("Usage: ldirectord"), "{o:?}");
}

#[test]
fn the_heartbeat_status_rule_as_documented() {
    assert!(!heartbeat_owns(
        "ldirectord is stopped for /etc/ha.d/ldirectord.cf\n"
    ));
    assert!(!heartbeat_owns("Resource is not running\n"));
    assert!(heartbeat_owns("INFO:  Running OK\n"));
    assert!(!heartbeat_owns(""));
}
