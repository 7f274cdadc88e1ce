//! A real single-node Pacemaker 2.1 + corosync 3 cluster (cluster-integration §2.9, §5.4)
//! running the director as `ocf:ldirectord-rs:ldirectord`, the shim of `compat/ocf/`.
//!
//! The node is the cluster harness's (`fixtures/cluster/pacemaker/cluster.rs`) with one
//! member: its own mount, network, UTS and PID namespaces, private `/var/lib/pacemaker`,
//! `/var/lib/corosync`, `/run` and `/dev/shm`, the test's `/etc/corosync` and
//! `/usr/lib/ocf/resource.d`, corosync on the harness's LAN. The CIB starts from a file
//! made offline with `CIB_file=` (stonith off, a short dc-deadtime so the node is DC in
//! seconds). The program comes from `LDIRECTORD_RS` in pacemakerd's environment
//! (meta-data is fetched without parameters), and the engine is the ipvsadm stand-in (no
//! IPVS in this kernel), given as resource parameters.
//!
//! Observed through Pacemaker's own outputs: the controller's "Result of ... operation"
//! lines in the cluster log, `crm_mon -1 --output-as=xml`, `crm_resource --locate`.

#[path = "fixtures/cluster/support.rs"]
mod cluster;
#[path = "fixtures/cluster/lan.rs"]
mod lan;
#[path = "fixtures/cluster/pacemaker/cluster.rs"]
mod pcmk;
#[path = "fixtures/cluster/heartbeat/sandbox.rs"]
mod sandbox;
#[path = "fixtures/daemon/support.rs"]
mod support;

use pcmk::{Cluster, Node};
use sandbox::{install_standin, standin_changes, standin_table, tail};

const SERVICE: &str = "TCP 127.0.0.100:80";

/// The harness's cluster with one node, whose directory holds the ipvsadm stand-in (the
/// engine) and the daemon's pid directory.
fn start() -> Cluster {
    Cluster::start(1, |d| {
        std::fs::create_dir_all(d.join("run")).unwrap();
        install_standin(&d.join("ipvsadm"), &d.join("standin"));
    })
}

/// lb's results on the node from byte `from` of its log on, as `(op, rc)`.
fn results(node: &Node, from: usize) -> Vec<(String, String)> {
    node.results(from, "lb")
        .into_iter()
        .map(|r| (r.op, r.rc))
        .collect()
}

fn table(node: &Node) -> Vec<(String, Vec<(String, u64)>)> {
    standin_table(&node.path("standin"))
}

/// The daemon's pid (in the node's PID namespace).
fn daemon_pid(node: &Node) -> Option<i32> {
    std::fs::read_dir(node.path("run"))
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".pid"))
        .and_then(|e| std::fs::read_to_string(e.path()).ok())
        .and_then(|t| t.trim().parse().ok())
}

/// The cluster's story plus the stand-in's.
fn explain(c: &Cluster) -> String {
    let node = &c.nodes[0];
    format!(
        "{}--- stand-in log:\n{}\n--- table: {:?}",
        c.explain(),
        tail(&node.path("standin/log"), 20),
        table(node),
    )
}

fn wait(c: &Cluster, what: &str, cond: impl FnMut() -> bool) {
    sandbox::wait_for(pcmk::WAIT, what, cond, || explain(c));
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
    let c = start();
    let node = &c.nodes[0];

    // P1
    let from = node.log().len();
    let r = node.tool(&[
        "cibadmin",
        "-C",
        "-o",
        "resources",
        "-X",
        &primitive(node, "10.0.0.1,1 10.0.0.2,1"),
    ]);
    assert!(r.status.success(), "cibadmin -C: {r:?}");
    wait(&c, "probe, start and the first monitor", || {
        results(node, from).len() >= 3
    });
    assert_eq!(
        results(node, from)[..3],
        pairs(&[("probe", "7"), ("start", "0"), ("monitor", "0")]),
        "{}",
        explain(&c)
    );
    let mon = node.crm_mon();
    assert!(
        mon.contains("<resource id=\"lb\" resource_agent=\"ocf:ldirectord-rs:ldirectord\" role=\"Started\" active=\"true\""),
        "{mon}"
    );
    let located = node.tool(&["crm_resource", "-r", "lb", "--locate", "-Q"]);
    assert_eq!(located.stdout.trim(), "node1", "{located:?}");
    assert_eq!(
        table(node),
        [(
            SERVICE.to_owned(),
            vec![("10.0.0.1:80".to_owned(), 1), ("10.0.0.2:80".to_owned(), 1)]
        )],
        "{}",
        explain(&c)
    );
    let first = daemon_pid(node).expect("the daemon's pid file");

    // P4
    let from = node.log().len();
    node.ns().ok(&["kill", "-9", &first.to_string()]);
    wait(&c, "monitor 7, stop, start, monitor", || {
        results(node, from).len() >= 4
    });
    assert_eq!(
        results(node, from)[..4],
        pairs(&[
            ("monitor", "7"),
            ("stop", "0"),
            ("start", "0"),
            ("monitor", "0")
        ]),
        "{}",
        explain(&c)
    );
    let mon = node.crm_mon();
    assert!(mon.contains("fail-count=\"1\""), "{mon}");
    assert!(mon.contains("role=\"Started\" active=\"true\""), "{mon}");
    let second = daemon_pid(node).expect("a new daemon");
    assert_ne!(second, first);
    assert_eq!(table(node)[0].1.len(), 2, "{}", explain(&c));

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
    wait(&c, "reload, then monitor", || {
        results(node, from).len() >= 2
    });
    assert_eq!(
        results(node, from)[..2],
        pairs(&[("reload", "0"), ("monitor", "0")]),
        "{}",
        explain(&c)
    );
    assert_eq!(daemon_pid(node), Some(second), "the daemon was restarted");
    // reload signals the daemon, which then applies the difference.
    let want = [(
        SERVICE.to_owned(),
        vec![("10.0.0.1:80".to_owned(), 1), ("10.0.0.2:80".to_owned(), 5)],
    )];
    wait(&c, "the new weight in the table", || table(node) == want);
    let new = standin_changes(&node.path("standin"))[changes..].to_vec();
    assert_eq!(new.len(), 1, "{new:?}\n{}", explain(&c));
    assert!(
        new[0].starts_with("-e -t 127.0.0.100:80 ")
            && new[0].contains("-r 10.0.0.2:80")
            && new[0].ends_with("-w 5"),
        "{new:?}"
    );
    // Nothing else happened: the log after the change holds no stop or start.
    assert!(
        !results(node, from)
            .iter()
            .any(|(op, _)| op == "stop" || op == "start"),
        "{}",
        explain(&c)
    );
}
