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
    let mut a = Agent::new(&w, "t");
    a.param("configfile", &good_config(&w, "t.cf", 1));
    let (passed, text) = a.ocf_tester();
    assert!(
        passed,
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

/// Stock's ldirectord as the shims can tell it: its --version names Linux Director, and
/// `--ocf` is an unknown option (exit 255). Anything but --version leaves a mark.
fn fake_stock(w: &World) -> std::path::PathBuf {
    std::fs::create_dir_all(w.path("sbin")).unwrap();
    w.script(
        "sbin/ldirectord",
        &format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo 'Linux Director v1.186-ha'; exit 0; }}\n\
             echo \"$*\" >> '{}'\necho \"Unknown option: ${{1#--}}\" >&2\nexit 255\n",
            w.path("stock-ran").display()
        ),
    )
}

/// Run `shim ACTION` as Pacemaker would, in a mount namespace where `/usr/sbin` holds
/// only the fake stock ldirectord and `/usr/local/sbin` is empty; `LDIRECTORD_RS` unset
/// and PATH as given.
fn shim_beside_stock(
    a: &Agent<'_>,
    shim: &std::path::Path,
    path: &str,
    action: &str,
) -> cluster::Run {
    let w = a.world;
    fake_stock(w);
    std::fs::create_dir_all(w.path("empty")).unwrap();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "sh", "-c"])
        .arg("mount --bind \"$1\" /usr/sbin && mount --bind \"$2\" /usr/local/sbin && shift 2 && exec \"$@\"")
        .arg("sh")
        .arg(w.path("sbin"))
        .arg(w.path("empty"))
        .arg(shim)
        .arg(action);
    a.apply(&mut cmd);
    cmd.env_remove("LDIRECTORD_RS").env("PATH", path);
    let out = cmd.output().unwrap();
    cluster::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_shims_run_only_ldirectord_rs() {
    let w = World::new();
    let mut a = Agent::new(&w, "lb");
    a.param("configfile", &good_config(&w, "lb.cf", 1));
    let shim = repo("compat/ocf/ldirectord");
    let plain = "/usr/bin:/bin";

    // Only stock's program: every action says why; stop and monitor stay safe.
    for (action, code) in [
        ("meta-data", 5),
        ("start", 5),
        ("validate-all", 5),
        ("monitor", 7),
        ("stop", 0),
    ] {
        let r = shim_beside_stock(&a, &shim, plain, action);
        assert_eq!(r.code, code, "{action}: {r:?}");
        assert!(
            r.stderr.contains("ldirectord-rs is not installed: /usr/sbin/ldirectord: not ldirectord-rs (--version: Linux Director v1.186-ha);"),
            "{action}: {r:?}"
        );
    }
    let r = shim_beside_stock(
        &a,
        &repo("compat/ocf/ldirectord-realserver"),
        plain,
        "meta-data",
    );
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr
            .starts_with("ocf-exit-reason:ldirectord-rs is not installed"),
        "{r:?}"
    );

    // Ours on PATH under stock's name: found after stock's is passed over.
    std::fs::create_dir_all(w.path("bin")).unwrap();
    std::os::unix::fs::symlink(support::BIN, w.path("bin/ldirectord")).unwrap();
    let on_path = format!("{}:{plain}", w.path("bin").display());
    let r = shim_beside_stock(&a, &shim, &on_path, "meta-data");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("<resource-agent name=\"ldirectord\""),
        "{r:?}"
    );
    shim_beside_stock(&a, &shim, &on_path, "validate-all");

    // Ours next to the agent, as ldirectord-rs.
    std::fs::create_dir_all(w.path("agent")).unwrap();
    std::fs::copy(&shim, w.path("agent/ldirectord")).unwrap();
    std::os::unix::fs::symlink(support::BIN, w.path("agent/ldirectord-rs")).unwrap();
    let r = shim_beside_stock(&a, &w.path("agent/ldirectord"), plain, "validate-all");
    assert_eq!(r.code, 0, "{r:?}");

    // The ldirectord parameter pointing at stock's program (a CIB copied from
    // ocf:heartbeat:ldirectord): ours answers, and refuses to run stock's as the daemon.
    a.param("ldirectord", "/usr/sbin/ldirectord");
    for action in ["validate-all", "start"] {
        let r = shim_beside_stock(&a, &shim, &on_path, action);
        assert_eq!(r.code, 5, "{action}: {r:?}");
        assert!(
            r.stderr.contains("ocf-exit-reason:ldirectord=/usr/sbin/ldirectord is not ldirectord-rs (its --version says \"Linux Director v1.186-ha\")"),
            "{action}: {r:?}"
        );
    }
    assert_eq!(shim_beside_stock(&a, &shim, &on_path, "monitor").code, 7);
    assert!(
        !w.path("stock-ran").exists(),
        "stock's program ran: {:?}",
        std::fs::read_to_string(w.path("stock-ran"))
    );
}

#[test]
fn the_engine_is_a_parameter_and_a_leading_option() {
    let w = World::new();
    let mut a = Agent::new(&w, "lb");
    a.param("configfile", &good_config(&w, "lb.cf", 1));
    a.unset("ipvsadm");
    for (engine, code) in [
        ("userspace", 0),
        ("netlink", 0),
        ("ipvsadm", 0),
        ("kernel", 6),
    ] {
        a.param("engine", engine);
        let r = a.run("validate-all");
        assert_eq!(r.code, code, "engine={engine}: {r:?}");
    }
    let r = a.run("validate-all");
    assert!(
        r.stderr
            .contains("engine=kernel: netlink, ipvsadm or userspace"),
        "{r:?}"
    );
    a.param("engine", "userspace").param("ipvsadm", "/bin/true");
    let r = a.expect("validate-all", 6);
    assert!(
        r.stderr.contains("ipvsadm= goes with engine=ipvsadm"),
        "{r:?}"
    );

    // A wrapper's options before --ocf win over the parameters.
    a.param("engine", "kernel").unset("ipvsadm");
    let wrapped = |options: &[&str], action: &str| {
        let mut cmd = std::process::Command::new(support::BIN);
        cmd.args(options).args(["--ocf", action]);
        a.apply(&mut cmd);
        cmd.output().unwrap()
    };
    assert_eq!(
        wrapped(&["--engine", "userspace"], "validate-all")
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        wrapped(&["--engine=netlink"], "validate-all").status.code(),
        Some(0)
    );
    assert_eq!(wrapped(&[], "validate-all").status.code(), Some(6));

    // The whole life cycle on the userspace engine, through the parameter.
    a.param("engine", "userspace").param(
        "configfile",
        w.config(
            "us.cf",
            "virtual=127.0.0.117:8117\n\tchecktype=on\n\treal=127.0.0.1:8117 masq 1\n",
        )
        .to_str()
        .unwrap(),
    );
    a.expect("start", 0);
    a.expect_monitor(0);
    wait_until(30, "engine logged", || {
        w.log().contains("using the userspace engine")
    });
    wait_until(30, "the forwarder listens", || {
        std::net::TcpStream::connect("127.0.0.117:8117").is_ok()
    });
    a.expect("stop", 0);
    a.expect_monitor(7);
}

/// resource-agents' own agent, which existing CIBs use (cluster-integration §2.10).
const STOCK_AGENT: &str = "/usr/lib/ocf/resource.d/heartbeat/ldirectord";

#[test]
fn the_stock_agent_drives_our_binary() {
    need("ocf-tester", "resource-agents");
    need("xmllint", "libxml2-utils");
    let w = World::new();
    // Our binary as the agent's `ldirectord`, with this world's pid directory and
    // ipvsadm stand-in; `exec -a` keeps the name the agent ran it by, as a symlink would.
    let program = w.script(
        "ldirectord",
        &format!(
            "#!/bin/bash\nexec -a \"$0\" '{}' --run-dir '{}' --ipvsadm '{}' \"$@\"\n",
            support::BIN,
            w.path("run").display(),
            w.path("ipvsadm").display()
        ),
    );
    let program = program.to_str().unwrap();
    let cfg = good_config(&w, "stock.cf", 1);
    let mut a = Agent::new(&w, "stock");
    a.script = std::path::PathBuf::from(STOCK_AGENT);
    a.unset("ipvsadm")
        .unset("run_dir")
        .param("configfile", &cfg)
        .param("ldirectord", program);
    let (passed, text) = a.ocf_tester();
    assert!(
        passed && text.contains("passed all tests"),
        "ocf-tester on stock's agent:\n{text}\n--- ld.log:\n{}",
        w.log()
    );

    // start/monitor/stop, and the daemon is what the agent's pgrep looks for.
    a.expect("start", 0);
    a.expect_monitor(0);
    wait_until(30, "real added", || {
        reals(&w) == Some(vec![("127.0.0.1:80".into(), 1)])
    });
    let pid = a.pid("stock.cf").expect("a daemon runs");
    let pgrep = |pattern: &str| {
        let out = std::process::Command::new("pgrep")
            .args(["-f", pattern])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let pattern = format!("{program} {cfg} start");
    assert_eq!(pgrep(&pattern), pid.to_string());
    a.expect("stop", 0);
    a.expect_monitor(7);
    assert_eq!(reals(&w), None, "cleanstop purged the virtual");

    // The daemon killed: stale pid file, status 1 "stale pid file": stopped.
    a.expect("start", 0);
    let pid = a.pid("stock.cf").unwrap();
    let kill = |pid: i32| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap()
    };
    kill(pid);
    wait_until(30, "killed daemon gone", || {
        !ldirectord::instance::alive(pid)
    });
    a.expect_monitor(7);
    a.expect("stop", 0);

    // status fails (the file broken while running, status exit 2): the agent's stop
    // finds the daemon with pgrep -f and kills it.
    a.expect("start", 0);
    let pid = a.pid("stock.cf").unwrap();
    std::fs::write(&cfg, "virtual=127.0.0.100:80\n\tbogus=1\n").unwrap();
    a.expect_monitor(1);
    // The agent sends SIGTERM and looks with pgrep at once, then SIGKILL and looks at once
    // again: a daemon not yet scheduled to die (a loaded machine) is still found by that
    // second look, and the agent returns 1 (its race, stock's daemon meets it too). Only
    // then: the daemon must be gone, and the next stop succeed.
    let stop = a.run("stop");
    if stop.code != 0 {
        assert!(
            stop.code == 1 && stop.stderr.contains("with SIGKILL"),
            "stop: {stop:?}\n--- ld.log:\n{}",
            w.log()
        );
        wait_until(30, "daemon gone after SIGKILL", || {
            !ldirectord::instance::alive(pid)
        });
        a.expect("stop", 0);
    }
    wait_until(30, "daemon gone after stop", || {
        !ldirectord::instance::alive(pid)
    });
    assert_eq!(pgrep(&pattern), "");
}

/// `ocf:ldirectord-rs:ldirectord-syncbackup` (the backup sync daemon as a clone on every
/// director) through its shim, with the ipvsadm stand-in: valid meta-data, ocf-tester
/// passes, probe and monitor codes, bad parameters, a different backup named.
#[test]
fn syncbackup_agent_passes_ocf_tester() {
    need("ocf-tester", "resource-agents");
    need("xmllint", "libxml2-utils");
    let w = World::new();
    let mut a = Agent::new(&w, "syncbackup");
    a.script = repo("compat/ocf/ldirectord-syncbackup");
    a.unset("run_dir").param("interface", "lo");
    let meta = a.expect("meta-data", 0).stdout;
    valid_against_dtd(&meta).unwrap();
    assert!(meta.contains("<resource-agent name=\"ldirectord-syncbackup\""));
    assert!(meta.contains("director before the VIP"), "{meta}");
    let (passed, text) = a.ocf_tester();
    assert!(passed && text.contains("passed all tests"), "{text}");
    a.expect("monitor", 7);
    a.expect("start", 0);
    a.expect_monitor(0);
    assert!(
        w.ipvsadm(&["-L", "--daemon"])
            .starts_with("backup sync daemon (mcast=lo, syncid=0")
    );
    // Another id on the same node: start refused naming what runs, monitor an error.
    let mut other = Agent::new(&w, "syncbackup-5");
    other.script = repo("compat/ocf/ldirectord-syncbackup");
    other
        .unset("run_dir")
        .param("interface", "lo")
        .param("syncid", "5");
    let r = other.expect("start", 1);
    assert!(
        r.stderr
            .contains("ocf-exit-reason:a different backup sync daemon already runs"),
        "{r:?}"
    );
    other.expect("monitor", 7);
    other.expect_monitor(1);
    other.expect("stop", 0);
    a.expect("stop", 0);
    a.expect("stop", 0);
    assert_eq!(w.ipvsadm(&["-L", "--daemon"]), "");
    // Parameters: missing or invalid is 6 (a probe says stopped), a missing interface 2.
    a.unset("interface");
    assert!(
        a.expect("validate-all", 6)
            .stderr
            .contains("interface is required")
    );
    a.expect("monitor", 7);
    a.expect("stop", 0);
    a.param("interface", "lo").param("syncid", "256");
    a.expect("start", 6);
    a.param("syncid", "1").param("interface", "nosuch0");
    assert!(
        a.expect("validate-all", 2)
            .stderr
            .contains("no network interface")
    );
    a.param("interface", "lo").param("engine", "userspace");
    a.expect("start", 6);
}

/// One director per table under Pacemaker: the primitive's start on a file that
/// `ldirectord start` already runs (another instance name) is OCF_ERR_GENERIC (another
/// node may run it), the exit reason names that instance; once it stops, the start works.
#[test]
fn a_start_on_a_file_another_instance_runs_is_a_generic_error() {
    let w = World::new();
    let cfg = good_config(&w, "lb.cf", 1);
    let link = w.path("other.cf");
    std::os::unix::fs::symlink(&cfg, &link).unwrap();
    let other = link.to_str().unwrap();
    let pid = w.start(other);
    let mut a = Agent::new(&w, "lb");
    a.param("configfile", &cfg);
    let r = a.expect("start", 1);
    let reason = format!("is already managed by instance other.cf (pid {pid})");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("ocf-exit-reason:") && l.contains(&reason)),
        "{r:?}"
    );
    a.expect("monitor", 7);
    assert_eq!(w.ld(&[other, "stop"]).status.code(), Some(0));
    a.expect("start", 0);
    a.expect("stop", 0);
}
