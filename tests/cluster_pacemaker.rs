//! A real single-node Pacemaker 2.1 + corosync 3 cluster (cluster-integration §2.9, §5.4)
//! running the director as `ocf:ldirectord-rs:ldirectord`, the shim of `compat/ocf/`.
//!
//! The node lives in its own mount, network, UTS and PID namespaces (see
//! `fixtures/cluster/heartbeat/sandbox.rs` and `fixtures/cluster/pacemaker/node.sh`):
//! `/var/lib/pacemaker`, `/var/lib/corosync`, `/run` and `/dev/shm` are private tmpfs,
//! `/etc/corosync` and `/usr/lib/ocf/resource.d` are the test's directories, and corosync
//! talks over the namespace's own loopback. The CIB starts from a file made offline with
//! `CIB_file=` (stonith off, a short dc-deadtime so the node is DC in seconds). The
//! program comes from `LDIRECTORD_RS` in pacemakerd's environment (meta-data is fetched
//! without parameters), and the engine is the ipvsadm stand-in (no IPVS in this kernel),
//! given as resource parameters.
//!
//! Observed through Pacemaker's own outputs: the controller's "Result of ... operation"
//! lines in the cluster log, `crm_mon -1 --output-as=xml`, `crm_resource --locate`.

#[path = "fixtures/cluster/support.rs"]
mod cluster;
#[path = "fixtures/cluster/heartbeat/sandbox.rs"]
mod sandbox;
#[path = "fixtures/daemon/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cluster::{need, repo};
use sandbox::{
    Sandbox, install_standin, open_tempdir, run_bounded, run_host, standin_changes, standin_table,
    tail,
};
use support::BIN;

const SERVICE: &str = "TCP 127.0.0.100:80";
/// Bounded waits: DC election takes ~5 s with dc-deadtime=2s (20-40 s with the default),
/// a start ~2 s, a monitor interval 3 s.
const WAIT: u64 = 120;

fn tools() {
    for (tool, package) in [
        ("corosync", "corosync"),
        ("pacemakerd", "pacemaker"),
        ("crm_mon", "pacemaker-cli-utils"),
        ("crm_resource", "pacemaker-cli-utils"),
        ("crm_attribute", "pacemaker-cli-utils"),
        ("cibadmin", "pacemaker-cli-utils"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
        ("python3", "python3"),
    ] {
        need(tool, package);
    }
}

struct Node {
    dir: tempfile::TempDir,
    pacemakerd: Option<Child>,
    ns: Sandbox,
}

impl Node {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The node's files, namespaces, corosync and pacemakerd.
    fn start() -> Node {
        tools();
        let dir = open_tempdir();
        let d = dir.path();
        prepare(d);
        let ns = Sandbox::start(&repo("tests/fixtures/cluster/pacemaker/node.sh"), d, &[]);
        let mut node = Node {
            dir,
            pacemakerd: None,
            ns,
        };
        let r = node.ns.run(&["corosync"], 60);
        assert!(r.status.success(), "corosync: {r:?}\n{}", node.explain());
        let log = std::fs::File::create(node.path("pacemakerd.out")).unwrap();
        let mut cmd = node.ns.command("env");
        cmd.arg(format!(
            "PCMK_logfile={}",
            node.path("pacemaker.log").display()
        ))
        .arg(format!("LDIRECTORD_RS={BIN}"))
        .arg("pacemakerd")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        node.pacemakerd = Some(cmd.spawn().expect("run pacemakerd"));
        node.wait("node1 to be DC with quorum", |n| {
            let mon = n.crm_mon();
            mon.contains("<current_dc present=\"true\"") && mon.contains("with_quorum=\"true\"")
        });
        node
    }

    /// Run a cluster tool in the node (program lookups see `LDIRECTORD_RS` too).
    fn tool(&self, args: &[&str]) -> sandbox::Run {
        let mut cmd = self.ns.command("env");
        cmd.arg(format!("LDIRECTORD_RS={BIN}")).args(args);
        run_bounded(cmd, 60)
    }

    fn crm_mon(&self) -> String {
        self.tool(&["crm_mon", "-1", "--output-as=xml"]).stdout
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("pacemaker.log")).unwrap_or_default()
    }

    /// The controller's "Result of OP operation for lb on node1: TEXT | ... rc=N" lines,
    /// as `(op, rc)`, from byte `from` of the cluster log on. Cancellations (no rc) are
    /// left out.
    fn results(&self, from: usize) -> Vec<(String, String)> {
        let log = self.log();
        log[from.min(log.len())..]
            .lines()
            .filter_map(|l| {
                let rest = l.split("Result of ").nth(1)?;
                let (op, rest) = rest.split_once(" operation for lb on node1: ")?;
                let rc = rest.rsplit_once(" rc=")?.1.trim();
                let key = rest.split(" key=").nth(1)?.split_whitespace().next()?;
                // A probe and a one-off monitor are "monitor" with interval 0.
                let op = if key == "lb_monitor_0" {
                    "probe".to_owned()
                } else {
                    op.to_owned()
                };
                Some((op, rc.to_owned()))
            })
            .collect()
    }

    fn table(&self) -> Vec<(String, Vec<(String, u64)>)> {
        standin_table(&self.path("standin"))
    }

    /// The daemon's pid (in the node's PID namespace).
    fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_dir(self.path("run"))
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".pid"))
            .and_then(|e| std::fs::read_to_string(e.path()).ok())
            .and_then(|t| t.trim().parse().ok())
    }

    fn explain(&self) -> String {
        let log = self.log();
        let interesting: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("Result of") || l.contains("error:") || l.contains("warning:"))
            .collect();
        format!(
            "--- cluster log (results, errors, warnings):\n{}\n--- corosync.log (tail):\n{}\n\
             --- pacemakerd.out:\n{}\n--- stand-in log:\n{}\n--- table: {:?}",
            interesting[interesting.len().saturating_sub(60)..].join("\n"),
            tail(&self.path("corosync.log"), 10),
            tail(&self.path("pacemakerd.out"), 10),
            tail(&self.path("standin/log"), 20),
            self.table(),
        )
    }

    fn wait(&self, what: &str, mut cond: impl FnMut(&Node) -> bool) {
        sandbox::wait_for(WAIT, what, || cond(self), || self.explain());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.explain());
        }
        // nsenter, pacemakerd's parent on the host side; then the Sandbox's drop kills
        // every process of the namespaces, pacemakerd and corosync included.
        if let Some(mut child) = self.pacemakerd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The node's files: corosync.conf, the initial CIB, the OCF provider directory with the
/// shim, the stand-in, and a cluster log the daemons (user hacluster) can write.
fn prepare(d: &Path) {
    for sub in ["corosync", "resource.d/ldirectord-rs", "run"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(
        d.join("corosync/corosync.conf"),
        format!(
            "totem {{\n\tversion: 2\n\tcluster_name: ldirectord-rs-test\n\
             \tcrypto_cipher: none\n\tcrypto_hash: none\n}}\n\
             nodelist {{\n\tnode {{\n\t\tname: node1\n\t\tnodeid: 1\n\t\tring0_addr: 127.0.0.1\n\t}}\n}}\n\
             quorum {{\n\tprovider: corosync_votequorum\n}}\n\
             logging {{\n\tto_logfile: yes\n\tlogfile: {}\n\tto_syslog: no\n\tto_stderr: no\n\
             \ttimestamp: on\n}}\n",
            d.join("corosync.log").display()
        ),
    )
    .unwrap();

    // The CIB, offline: stonith off (one node, no fencing device) and a short dc-deadtime.
    let cib = d.join("cib.xml");
    let empty = run_host(&["cibadmin", "--empty"], 30);
    assert!(empty.status.success(), "cibadmin --empty: {empty:?}");
    std::fs::write(&cib, &empty.stdout).unwrap();
    for (name, value) in [("stonith-enabled", "false"), ("dc-deadtime", "2s")] {
        let mut c = Command::new("crm_attribute");
        c.env("CIB_file", &cib)
            .args(["-t", "crm_config", "-n", name, "-v", value]);
        let r = run_bounded(c, 30);
        assert!(r.status.success(), "crm_attribute {name}: {r:?}");
    }

    // The shim as the README installs it.
    let shim = d.join("resource.d/ldirectord-rs/ldirectord");
    std::fs::copy(repo("compat/ocf/ldirectord"), &shim).unwrap();
    sandbox::script(&shim, &std::fs::read_to_string(&shim).unwrap());

    install_standin(&d.join("ipvsadm"), &d.join("standin"));
    let log = d.join("pacemaker.log");
    std::fs::write(&log, "").unwrap();
    let chown = run_host(&["chown", "hacluster:haclient", log.to_str().unwrap()], 30);
    assert!(chown.status.success(), "chown the cluster log: {chown:?}");
}

/// The primitive, lvsdr-style (the virtual service from parameters, the real servers from
/// `weight_of_realservers`), so that a non-unique parameter carries the real-server list.
fn primitive(node: &Node, weights: &str) -> String {
    let nv = |name: &str, value: &str| {
        format!("<nvpair id=\"lb-ia-{name}\" name=\"{name}\" value=\"{value}\"/>")
    };
    format!(
        "<primitive id=\"lb\" class=\"ocf\" provider=\"ldirectord-rs\" type=\"ldirectord\">\
         <instance_attributes id=\"lb-ia\">{}{}{}{}{}</instance_attributes>\
         <operations><op id=\"lb-monitor-3s\" name=\"monitor\" interval=\"3s\" timeout=\"20s\"/>\
         </operations></primitive>",
        nv("vip", "127.0.0.100"),
        nv("port", "80"),
        nv("weight_of_realservers", weights),
        nv("ipvsadm", node.path("ipvsadm").to_str().unwrap()),
        nv("run_dir", node.path("run").to_str().unwrap()),
    )
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// P1: creating the resource probes it (7), starts it (0) and runs the recurring monitor
/// (0); crm_mon and crm_resource --locate show it started on node1; the table is built.
/// P4: the daemon killed, the next monitor says 7, Pacemaker counts a failure, stops (0)
/// and starts (0) it again on the node, and the monitor is back to 0 with a new daemon.
/// P6: a change of `weight_of_realservers` (not unique) makes the controller run
/// `reload` (0), not stop/start: same daemon, and IPVS gets a single `-e`.
#[test]
fn p1_p4_p6_under_a_real_pacemaker() {
    let node = Node::start();

    // P1
    let from = node.log().len();
    let r = node.tool(&[
        "cibadmin",
        "-C",
        "-o",
        "resources",
        "-X",
        &primitive(&node, "10.0.0.1,1 10.0.0.2,1"),
    ]);
    assert!(r.status.success(), "cibadmin -C: {r:?}");
    node.wait("probe, start and the first monitor", |n| {
        n.results(from).len() >= 3
    });
    assert_eq!(
        node.results(from)[..3],
        pairs(&[("probe", "7"), ("start", "0"), ("monitor", "0")]),
        "{}",
        node.explain()
    );
    let mon = node.crm_mon();
    assert!(
        mon.contains("<resource id=\"lb\" resource_agent=\"ocf:ldirectord-rs:ldirectord\" role=\"Started\" active=\"true\""),
        "{mon}"
    );
    let located = node.tool(&["crm_resource", "-r", "lb", "--locate", "-Q"]);
    assert_eq!(located.stdout.trim(), "node1", "{located:?}");
    assert_eq!(
        node.table(),
        [(
            SERVICE.to_owned(),
            vec![("10.0.0.1:80".to_owned(), 1), ("10.0.0.2:80".to_owned(), 1)]
        )],
        "{}",
        node.explain()
    );
    let first = node.daemon_pid().expect("the daemon's pid file");

    // P4
    let from = node.log().len();
    node.ns.ok(&["kill", "-9", &first.to_string()]);
    node.wait("monitor 7, stop, start, monitor", |n| {
        n.results(from).len() >= 4
    });
    assert_eq!(
        node.results(from)[..4],
        pairs(&[
            ("monitor", "7"),
            ("stop", "0"),
            ("start", "0"),
            ("monitor", "0")
        ]),
        "{}",
        node.explain()
    );
    let mon = node.crm_mon();
    assert!(mon.contains("fail-count=\"1\""), "{mon}");
    assert!(mon.contains("role=\"Started\" active=\"true\""), "{mon}");
    let second = node.daemon_pid().expect("a new daemon");
    assert_ne!(second, first);
    assert_eq!(node.table()[0].1.len(), 2, "{}", node.explain());

    // P6
    let from = node.log().len();
    let changes = standin_changes(&node.path("standin")).len();
    let r = node.tool(&[
        "crm_resource",
        "-r",
        "lb",
        "-p",
        "weight_of_realservers",
        "-v",
        "10.0.0.1,1 10.0.0.2,5",
    ]);
    assert!(r.status.success(), "crm_resource -p: {r:?}");
    node.wait("reload, then monitor", |n| n.results(from).len() >= 2);
    assert_eq!(
        node.results(from)[..2],
        pairs(&[("reload", "0"), ("monitor", "0")]),
        "{}",
        node.explain()
    );
    assert_eq!(node.daemon_pid(), Some(second), "the daemon was restarted");
    // reload signals the daemon, which then applies the difference.
    let want = [(
        SERVICE.to_owned(),
        vec![("10.0.0.1:80".to_owned(), 1), ("10.0.0.2:80".to_owned(), 5)],
    )];
    node.wait("the new weight in the table", |n| n.table() == want);
    let new = standin_changes(&node.path("standin"))[changes..].to_vec();
    assert_eq!(new.len(), 1, "{new:?}\n{}", node.explain());
    assert!(
        new[0].starts_with("-e -t 127.0.0.100:80 ")
            && new[0].contains("-r 10.0.0.2:80")
            && new[0].ends_with("-w 5"),
        "{new:?}"
    );
    // Nothing else happened: the log after the change holds no stop or start.
    assert!(
        !node
            .results(from)
            .iter()
            .any(|(op, _)| op == "stop" || op == "start"),
        "{}",
        node.explain()
    );
}
