//! Dynamic real servers under the plain daemon (`ldirectord -d CONFIG start`, the way
//! heartbeat v1 and a hand start run it): `realsource=` directives are selected at start and
//! refreshed every `checkinterval` while running, and only differences reach IPVS (the
//! recording ipvsadm stand-in). Real HTTP backends on loopback addresses behind one port.

#[path = "fixtures/cluster/support.rs"]
mod cluster;
#[path = "fixtures/daemon/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Child;

use support::{Backend, Mode, World, sorted, wait_until};

/// The daemon in the foreground, its stderr (the log, with `-d`) in a file; killed if the
/// test fails before it stops it.
struct Foreground {
    child: Option<Child>,
    stderr: PathBuf,
}

impl Foreground {
    fn start(w: &World, config: &Path, env: &[(&str, &str)]) -> Foreground {
        let stderr = w.path("stderr.log");
        let mut cmd = w.command(&[
            "--engine",
            "ipvsadm",
            "-d",
            config.to_str().unwrap(),
            "start",
        ]);
        cmd.stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Foreground {
            child: Some(cmd.spawn().unwrap()),
            stderr,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(0));
        self.log()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How many times the list script ran.
fn runs(w: &World) -> usize {
    std::fs::read_to_string(w.path("runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// Wait for `n` more runs of the list script after the current one, so that at least
/// `n - 1` refreshes completed and were handled.
fn wait_runs(w: &World, n: usize, what: &str) {
    let target = runs(w) + n;
    wait_until(30, what, || runs(w) >= target);
}

#[test]
fn a_command_source_is_refreshed_and_applied_by_difference() {
    let w = World::new();
    let b2 = Backend::start("127.0.0.2", Mode::Healthy);
    let port = b2.addr.port();
    let b3 = Backend::start_on(format!("127.0.0.3:{port}").parse().unwrap(), Mode::Healthy);
    let list = w.path("list");
    std::fs::write(&list, "127.0.0.2\n").unwrap();
    let script = w.script(
        "get_reals",
        &format!(
            "#!/bin/sh\necho run >> '{runs}'\n\
             if [ -f '{list}.fail' ]; then echo boom >&2; exit 1; fi\ncat '{list}'\n",
            runs = w.path("runs").display(),
            list = list.display()
        ),
    );
    let v = format!("TCP 127.0.0.100:{port}");
    let cfg = w.config(
        "dyn.cf",
        &format!(
            "checkinterval=1\nchecktimeout=2\n\
             virtual=127.0.0.100:{port}\n\tservice=http\n\trequest=\"/health\"\n\
             \treceive=\"OK\"\n\tscheduler=rr\n\
             \trealsource=command {}\n\trealdefault=masq 2\n",
            script.display()
        ),
    );
    let d = Foreground::start(&w, &cfg, &[]);
    let (a2, a3) = (format!("127.0.0.2:{port}"), format!("127.0.0.3:{port}"));
    wait_until(30, "the first set after its check", || {
        w.reals(&v) == sorted(vec![(a2.clone(), 2)])
    });
    assert!(
        d.log().contains("Real servers of tcp:127.0.0.100:"),
        "{}",
        d.log()
    );

    // Added: one -a, after its check.
    let before = w.changes();
    std::fs::write(&list, "127.0.0.2 127.0.0.3\n").unwrap();
    wait_until(30, "127.0.0.3 added", || {
        w.reals(&v) == sorted(vec![(a2.clone(), 2), (a3.clone(), 2)])
    });
    assert_eq!(
        w.changes()[before.len()..],
        [format!(
            "-a -t 127.0.0.100:{port} -x 0 -y 0 -r {a3} -m -w 2"
        )]
    );
    wait_until(30, "its check logged", || {
        d.log().contains(&format!("Added real server: {a3}"))
    });

    // Unchanged output: no operation at all over several refreshes.
    let before = w.changes();
    wait_runs(&w, 4, "four more refreshes");
    assert_eq!(w.changes(), before, "unchanged sources touched IPVS");

    // Removed: one -d.
    std::fs::write(&list, "127.0.0.3\n").unwrap();
    wait_until(30, "127.0.0.2 removed", || {
        w.reals(&v) == sorted(vec![(a3.clone(), 2)])
    });
    assert_eq!(
        w.changes()[before.len()..],
        [format!("-d -t 127.0.0.100:{port} -r {a2}")]
    );

    // Failing: the set stays, one warning for the streak.
    let before = w.changes();
    std::fs::write(format!("{}.fail", list.display()), "").unwrap();
    wait_until(30, "the failure logged", || {
        d.log()
            .contains("keeping the last good set (1 real server)")
    });
    wait_runs(&w, 3, "three failing refreshes");
    let log = d.log();
    assert_eq!(
        log.matches("keeping the last good set").count(),
        1,
        "one warning per failure streak:\n{log}"
    );
    assert!(log.contains("exited 1"), "{log}");
    std::fs::remove_file(format!("{}.fail", list.display())).unwrap();
    wait_until(30, "recovery logged", || {
        d.log().contains("the source works again (1 real server)")
    });

    // Printing nothing is a failure too.
    std::fs::write(&list, "\n").unwrap();
    wait_until(30, "the empty output logged", || {
        d.log().contains("printed nothing")
    });
    wait_runs(&w, 3, "three empty refreshes");
    assert_eq!(w.changes(), before, "a failing source changed IPVS");
    assert_eq!(w.reals(&v), sorted(vec![(a3.clone(), 2)]));

    // Back to two: one -a again.
    std::fs::write(&list, "127.0.0.3 127.0.0.2\n").unwrap();
    wait_until(30, "127.0.0.2 back", || {
        w.reals(&v) == sorted(vec![(a2.clone(), 2), (a3.clone(), 2)])
    });
    assert_eq!(w.changes().len(), before.len() + 1, "{:?}", w.changes());
    let log = d.stop();
    assert!(
        log.contains("Linux Director Daemon terminated on signal: TERM"),
        "{log}"
    );
    drop((b2, b3));
}

#[test]
fn a_resource_source_with_an_attribute_filter_follows_the_cib() {
    cluster::need("crm_resource", "pacemaker-cli-utils");
    cluster::need("crm_attribute", "pacemaker-cli-utils");
    let w = World::new();
    let cib = w.path("cib.xml");
    std::fs::copy(cluster::fixture("cib-pgsql.xml"), &cib).unwrap();
    let cfg = w.config(
        "pg.cf",
        "checkinterval=1\nnodeaddress=node2 10.0.0.2\nnodeaddress=node3 10.0.0.3\n\
         virtual=192.168.0.237:5432\n\tchecktype=on\n\tscheduler=rr\n\
         \treal=10.0.0.9:5432 gate 5\n\
         \trealsource=resource realsvr-clone\n\
         \trealfilter=attribute pgsql-status HS:sync|HS:potential|HS:async\n\
         \trealweights=node3,4\n",
    );
    let cib_env = cib.display().to_string();
    let d = Foreground::start(&w, &cfg, &[("CIB_file", &cib_env)]);
    let v = "TCP 192.168.0.237:5432";
    wait_until(30, "the standbys that stream, and the static real", || {
        w.reals(v)
            == sorted(vec![
                ("10.0.0.2:5432".into(), 1),
                ("10.0.0.3:5432".into(), 4),
                ("10.0.0.9:5432".into(), 5),
            ])
    });
    // node3 loses its primary: exactly one -d.
    let before = w.changes();
    let text = std::fs::read_to_string(&cib).unwrap();
    let needle = "status-3-pgsql-status\" name=\"pgsql-status\" value=\"HS:async\"";
    assert!(text.contains(needle));
    std::fs::write(
        &cib,
        text.replace(needle, &needle.replace("HS:async", "HS:alone")),
    )
    .unwrap();
    wait_until(30, "node3 out", || {
        w.reals(v)
            == sorted(vec![
                ("10.0.0.2:5432".into(), 1),
                ("10.0.0.9:5432".into(), 5),
            ])
    });
    assert_eq!(
        w.changes()[before.len()..],
        ["-d -t 192.168.0.237:5432 -r 10.0.0.3:5432"]
    );
    // A resource the CIB does not know: the set stays, and the daemon says why.
    let before = w.changes();
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("resource realsvr-clone", "resource nosuch"),
    )
    .unwrap();
    let pid = d.child.as_ref().unwrap().id() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_until(30, "the failing resource logged", || {
        d.log().contains("crm_resource --locate -r nosuch exited")
    });
    assert_eq!(w.changes(), before, "a failing source changed IPVS");
    d.stop();
}
