//! The director's OCF agent through its shim (`compat/ocf/ldirectord`), as Pacemaker,
//! ocf-tester and crm_resource run it, with the ipvsadm stand-in as the engine: the
//! scenarios O1-O17 of cluster-integration §5.3.

#[path = "fixtures/cluster/support.rs"]
mod cluster;
#[path = "fixtures/daemon/support.rs"]
mod support;

use cluster::{Agent, need, repo, valid_against_dtd};
use support::{World, wait_until};

const V: &str = "TCP 127.0.0.100:80";

fn good_config(w: &World, name: &str, weight: u32) -> String {
    let body =
        format!("virtual=127.0.0.100:80\n\tchecktype=on\n\treal=127.0.0.1:80 masq {weight}\n");
    w.config(name, &body).display().to_string()
}

fn reals(w: &World) -> Option<Vec<(String, u64)>> {
    w.table()
        .into_iter()
        .find(|(s, _)| s == V)
        .map(|(_, d)| d.into_iter().map(|(r, _, wt)| (r, wt)).collect())
}

#[test]
fn o1_meta_data_is_valid_ocf_1_0_with_reload() {
    need("xmllint", "libxml2-utils");
    let w = World::new();
    let a = Agent::new(&w, "lb");
    let r = a.expect("meta-data", 0);
    valid_against_dtd(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.stdout));
    for needle in [
        "<action name=\"reload\"",
        "<parameter name=\"configfile\" unique=\"1\"",
        "<parameter name=\"ldirectord\" unique=\"0\"",
        "<parameter name=\"realserver_dependent_resource\" unique=\"0\"",
        "<version>1.0</version>",
    ] {
        assert!(r.stdout.contains(needle), "{needle} in\n{}", r.stdout);
    }
    // Without any parameter, and as nobody (ocf-tester checks that too).
    let out = std::process::Command::new("su")
        .args(["nobody", "-s", "/bin/sh", "-c"])
        .arg(format!(
            "LDIRECTORD_RS={} {} meta-data",
            support::BIN,
            repo("compat/ocf/ldirectord").display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), r.stdout);
    // The real-server agent's meta-data too.
    let out = std::process::Command::new(repo("compat/ocf/ldirectord-realserver"))
        .arg("meta-data")
        .env("LDIRECTORD_RS", support::BIN)
        .output()
        .unwrap();
    assert!(out.status.success());
    valid_against_dtd(&String::from_utf8_lossy(&out.stdout)).unwrap();
}

#[test]
fn o2_to_o5_validate_all() {
    let w = World::new();
    let mut a = Agent::new(&w, "lb");
    let good = good_config(&w, "good.cf", 1);
    a.param("configfile", &good);
    a.expect("validate-all", 0); // O2
    let bad = w.config(
        "bad.cf",
        "virtual=127.0.0.100:80\n\treal=127.0.0.1:80 masq\n\tscheduler\n",
    );
    a.param("configfile", bad.to_str().unwrap());
    let r = a.expect("validate-all", 6); // O3: stock returns 0
    let reason = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("ocf-exit-reason:"))
        .unwrap_or_else(|| panic!("an exit reason: {r:?}"));
    // logfile= is line 1 of the world's configs, so the bad directive is on line 4.
    assert!(
        reason.starts_with(&format!("{}:4:", bad.display())),
        "{reason}"
    );
    a.param("configfile", w.path("missing.cf").to_str().unwrap());
    let r = a.expect("validate-all", 5); // O4: as stock
    assert!(
        r.stderr.contains("ocf-exit-reason:configuration file"),
        "{r:?}"
    );
    let mut a = Agent::new(&w, "lvs");
    a.param("vip", "192.168.0.237");
    let r = a.expect("validate-all", 6); // O5
    assert!(r.stderr.contains("port is required"), "{r:?}");
    a.param("port", "5432")
        .param("virtual_service_options", "-s wlc -z");
    a.expect("validate-all", 6);
    a.param("virtual_service_options", "-s wlc -p 60");
    a.param("weight_of_realservers", "10.0.0.2,2 10.0.0.3");
    a.expect("validate-all", 0);
    a.param("realserver_dependent_attribute_name", "pgsql-status")
        .param("realserver_dependent_attribute_value", "HS:(sync");
    let r = a.expect("validate-all", 6);
    assert!(r.stderr.contains("bad regular expression"), "{r:?}");
    // lvsdr parameters without vip, or both definitions.
    let mut a = Agent::new(&w, "x");
    a.param("port", "80");
    a.expect("validate-all", 6);
    a.param("vip", "10.0.0.1").param("configfile", &good);
    a.expect("validate-all", 6);
}

#[test]
fn o6_to_o14_life_cycle() {
    let w = World::new();
    let mut a = Agent::new(&w, "lb");
    let cfg = good_config(&w, "lb.cf", 1);
    a.param("configfile", &cfg);
    a.expect("monitor", 7); // O6: probe, stopped
    a.expect("start", 0); // O7
    a.expect_monitor(0);
    a.expect("monitor", 0); // a probe finds it running
    wait_until(30, "real added", || {
        reals(&w) == Some(vec![("127.0.0.1:80".into(), 1)])
    });
    let before = w.changes().len();
    let pid = a.pid("lb.cf").unwrap();
    a.expect("start", 0); // O8: no churn, same daemon
    assert_eq!(a.pid("lb.cf"), Some(pid));
    assert_eq!(
        w.changes().len(),
        before,
        "start on a running instance changed IPVS"
    );

    // O13: reload applies the edited file as a difference.
    good_config(&w, "lb.cf", 5);
    a.expect("reload", 0);
    wait_until(30, "weight edited", || {
        reals(&w) == Some(vec![("127.0.0.1:80".into(), 5)])
    });
    let changes = w.changes();
    assert_eq!(
        &changes[before..],
        ["-e -t 127.0.0.100:80 -x 0 -y 0 -r 127.0.0.1:80 -m -w 5"],
        "only the weight edit"
    );

    // O12: the file broken while running: undetermined.
    std::fs::write(&cfg, "virtual=127.0.0.100:80\n\tbogus=1\n").unwrap();
    let r = a.expect_monitor(1);
    assert!(r.stderr.contains("ocf-exit-reason:"), "{r:?}");
    good_config(&w, "lb.cf", 5);

    a.expect("stop", 0); // O9
    a.expect_monitor(7);
    assert_eq!(reals(&w), None, "cleanstop purged the virtual");
    a.expect("stop", 0); // O10
    a.expect("reload", 0); // O13: reload on a stopped instance

    // O11: the daemon killed: stale pid file.
    a.expect("start", 0);
    let pid = a.pid("lb.cf").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(30, "killed daemon gone", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
    });
    a.expect_monitor(7);
    a.expect("stop", 0);

    // O10: stop with the file gone, or broken.
    std::fs::remove_file(&cfg).unwrap();
    a.expect("stop", 0);
    a.expect("monitor", 7);
    a.param(
        "configfile",
        w.config("broken.cf", "garbage\n").to_str().unwrap(),
    );
    a.expect("stop", 0);

    // O14
    let r = a.expect("frobnicate", 3);
    assert!(r.stdout.contains("usage"), "{r:?}");
    a.expect("usage", 0);
}

#[test]
fn o15_ocf_tester_passes() {
    need("ocf-tester", "resource-agents");
    need("xmllint", "libxml2-utils");
    let w = World::new();
    let a = Agent::new(&w, "t");
    let cfg = good_config(&w, "t.cf", 1);
    let mut cmd = std::process::Command::new("ocf-tester");
    cmd.args(["-n", "t", "-o", &format!("configfile={cfg}")]);
    for k in ["ipvsadm", "run_dir"] {
        cmd.args(["-o", &format!("{k}={}", a.params[k])]);
    }
    cmd.arg(repo("compat/ocf/ldirectord"));
    a.apply(&mut cmd);
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "ocf-tester failed:\n{text}\n--- ld.log:\n{}",
        w.log()
    );
    assert!(text.contains("passed all tests"), "{text}");
    assert!(!text.contains("does not support the reload"), "{text}");
}

#[test]
fn o16_o17_crm_resource_without_a_cluster() {
    need("crm_resource", "pacemaker-cli-utils");
    let w = World::new();
    let a = Agent::new(&w, "test");
    let cfg = good_config(&w, "crm.cf", 1);
    let crm = |op: &str, extra: &[String]| {
        let mut cmd = cluster::with_private_agents(&w, "crm_resource");
        cmd.args([
            op,
            "--class",
            "ocf",
            "--provider",
            cluster::PROVIDER,
            "--agent",
            "ldirectord",
        ]);
        for k in ["ipvsadm", "run_dir"] {
            cmd.args(["--option", &format!("{k}={}", a.params[k])]);
        }
        cmd.args(extra);
        a.apply(&mut cmd);
        cmd.env_remove("OCF_RESOURCE_INSTANCE");
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let opt = vec!["--option".to_owned(), format!("configfile={cfg}")];
    for (op, want) in [
        ("--validate", 0),
        ("--force-check", 7),
        ("--force-start", 0),
        ("--force-check", 0),
        ("--force-stop", 0),
        ("--force-check", 7),
    ] {
        let (code, text) = crm(op, &opt);
        assert_eq!(code, want, "{op}: {text}\n--- ld.log:\n{}", w.log());
    }
    let bad = w.config(
        "crmbad.cf",
        "virtual=127.0.0.100:80\n\treal=nonsense masq\n",
    );
    let (code, text) = crm(
        "--validate",
        &[
            "--option".to_owned(),
            format!("configfile={}", bad.display()),
        ],
    );
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("returned 6 (not configured:"), "{text}");
    assert!(text.contains(&format!("{}:3:", bad.display())), "{text}");
}
