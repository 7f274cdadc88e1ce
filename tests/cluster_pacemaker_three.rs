//! The director under a real three-node Pacemaker 2.1 cluster (cluster-integration §5.4
//! P2, P3, P5; issue 11), on the harness of `fixtures/cluster/pacemaker/cluster.rs`: three
//! nodes in their own namespaces on one LAN, corosync 3 over knet, stonith off.
//!
//! This kernel has no IPVS, so the director runs the userspace engine (the agent's
//! `engine=userspace`): it listens on the virtual address and relays to the real server,
//! which runs in the LAN namespace with the clients, outside every node. So "the director
//! runs there" is seen from a client: the VIP answers with the real server's page, through
//! whichever node holds the group.
//!
//! Figures: P5 fails the active node over `LDRS_PCMK_FAILOVERS` times (default 2: the
//! killed node is restarted between runs; in every second run the group is first moved to
//! the DC, so that its death includes an election) and prints each time from the node's
//! death to the first recurring `monitor` returning 0 on a survivor, and their median.

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

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pcmk::{BIN, Cluster, LAN_ADDR, Node, OpResult, install_heartbeat_agent, median, nv};

const VIP: &str = "10.250.2.100";
/// What the real server answers (its index page).
const PAGE: &str = "served by the real server\n";
/// The director's configuration, one file for every node (`logfile` is in each node's
/// private /run). The engine comes from the resource (`engine=userspace`).
const CF: &str = "checkinterval=1\nchecktimeout=2\nlogfile=\"/run/ldirectord-rs.log\"\n";

/// One cluster at a time: three nodes each are enough load for a 2-core CI machine, and
/// the P5 figures should not measure a neighbour.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster, the real server on the LAN, and the director's configuration `lb.cf`
/// serving `vips` (all on port 80) with that real server.
fn cluster(vips: &[&str]) -> Cluster {
    let mut c = Cluster::start(3, |d| install_heartbeat_agent(d, "IPaddr2"));
    c.lan.web_server(LAN_ADDR, 8080, PAGE);
    let mut cf = CF.to_owned();
    for vip in vips {
        cf.push_str(&format!(
            "virtual={vip}:80\n\treal={LAN_ADDR}:8080 masq\n\tchecktype=connect\n\tscheduler=rr\n"
        ));
    }
    std::fs::write(c.path("lb.cf"), cf).unwrap();
    // Resources stay where they run when a node comes back (P5 restarts the dead one).
    c.rsc_default("resource-stickiness", "100");
    c
}

/// An HTTP GET from the LAN (a client outside every node), `None` when nothing answers.
fn get(c: &Cluster, addr: &str) -> Option<String> {
    c.lan.get(addr)
}

/// `ocf:heartbeat:IPaddr2` on the LAN's `eth0`, `extra` parameters added.
fn ipaddr2(id: &str, extra: &str) -> String {
    format!(
        "<primitive id=\"{id}\" class=\"ocf\" provider=\"heartbeat\" type=\"IPaddr2\">\
         <instance_attributes id=\"{id}-ia\">{}{}{}{extra}</instance_attributes>\
         <operations><op id=\"{id}-monitor\" name=\"monitor\" interval=\"10s\" timeout=\"20s\"/>\
         </operations></primitive>",
        nv(id, "ip", VIP),
        nv(id, "cidr_netmask", "24"),
        nv(id, "nic", "eth0"),
    )
}

/// Our director, `ocf:ldirectord-rs:ldirectord`, with `lb.cf` and the userspace engine.
fn director(c: &Cluster) -> String {
    format!(
        "<primitive id=\"lb\" class=\"ocf\" provider=\"ldirectord-rs\" type=\"ldirectord\">\
         <instance_attributes id=\"lb-ia\">{}{}{}</instance_attributes>\
         <operations><op id=\"lb-monitor\" name=\"monitor\" interval=\"3s\" timeout=\"20s\"/>\
         </operations></primitive>",
        nv("lb", "configfile", c.path("lb.cf").to_str().unwrap()),
        nv("lb", "engine", "userspace"),
        nv("lb", "ldirectord", BIN),
    )
}

fn is(r: &OpResult, op: &str, rc: &str) -> bool {
    r.op == op && r.rc == rc
}

/// The director's daemon on `node`: its pid (in the node's PID namespace), from the pid
/// file the agent's `start` waited for.
fn daemon_pid(node: &Node) -> Option<String> {
    node.read("/run/ldirectord.lb.cf.pid")
        .map(|t| t.trim().to_owned())
}

/// Something listens on `node`'s port 80; when it does, it must be the director (the
/// userspace engine's listener), as `ss -p` names the process.
fn listens(node: &Node) -> bool {
    let r = node.ns().run(&["ss", "-Hltnp", "sport = :80"], 30);
    let out = r.stdout.trim();
    assert!(
        out.is_empty() || out.contains("(\"ldirectord\","),
        "{}: not the director on :80: {out}",
        node.name
    );
    !out.is_empty()
}

/// The director really stopped on `node`: the daemon `pid` is gone and port 80 is closed.
fn assert_stopped(c: &Cluster, node: &Node, pid: &str) {
    let alive = node.ns().run(&["kill", "-0", pid], 30);
    assert!(
        !alive.status.success(),
        "the daemon {pid} still runs on {}\n{}",
        node.name,
        c.explain()
    );
    assert!(
        !listens(node),
        "{} still listens on :80\n{}",
        node.name,
        c.explain()
    );
}

/// The group moved from `from` to another node after `mark`: `lb` and then `vip` stopped
/// (0) on `from`, then started there (`vip`, then `lb`: 0) and `lb`'s monitor 0; the old
/// daemon is gone, the VIP answers through the new one. Returns the new node's name.
fn assert_moved(c: &Cluster, mark: &[(String, usize)], from: &str, old_pid: &str) -> String {
    c.wait(
        "the group to move: lb started and monitored elsewhere",
        || {
            c.results(mark, "lb")
                .iter()
                .any(|r| r.node != from && is(r, "monitor", "0"))
        },
    );
    let lb = c.results(mark, "lb");
    let to = lb
        .iter()
        .find(|r| r.node != from && is(r, "start", "0"))
        .unwrap_or_else(|| panic!("no start elsewhere: {lb:?}"))
        .node
        .clone();
    let stop = lb.iter().find(|r| r.node == from && r.op == "stop");
    assert!(
        stop.is_some_and(|r| r.rc == "0"),
        "lb's stop on {from}: {lb:?}"
    );
    let vip = c.node(from).results(mark_of(mark, from), "vip");
    let vip_stop = vip.iter().find(|r| r.op == "stop").map(|r| r.line);
    assert!(
        vip_stop > stop.map(|r| r.line),
        "the group stops lb before vip on {from}: {vip:?} {lb:?}"
    );
    assert_stopped(c, c.node(from), old_pid);
    let new = c.node(&to);
    assert!(daemon_pid(new).is_some() && listens(new), "{}", c.explain());
    c.wait("the VIP to answer through the new node", || {
        get(c, VIP).as_deref() == Some(PAGE)
    });
    to
}

/// `crm_resource -r g --move -N TO` (checked as [`assert_moved`] does), then `--clear`.
fn move_group(c: &Cluster, to: &str) {
    let from = active(c);
    let pid = daemon_pid(c.node(&from)).expect("the daemon's pid file");
    let mark = c.mark();
    let r = c
        .any()
        .tool(&["crm_resource", "-r", "g", "--move", "-N", to]);
    assert!(r.status.success(), "--move: {r:?}");
    assert_eq!(assert_moved(c, &mark, &from, &pid), to);
    let r = c.any().tool(&["crm_resource", "-r", "g", "--clear"]);
    assert!(r.status.success(), "--clear: {r:?}");
    c.settle();
}

fn mark_of(mark: &[(String, usize)], node: &str) -> usize {
    mark.iter()
        .find(|(n, _)| n == node)
        .map_or(0, |(_, at)| *at)
}

/// The node whose lb last started (and is not known stopped since).
fn active(c: &Cluster) -> String {
    let r = c
        .any()
        .tool(&["crm_resource", "-r", "lb", "--locate", "-Q"]);
    let node = r.stdout.trim().to_owned();
    assert!(
        c.nodes.iter().any(|n| n.name == node),
        "crm_resource --locate: {r:?}"
    );
    node
}

/// The seed topology, an `IPaddr2` VIP and the director in one group:
/// P1 in passing (probes 7 everywhere, one start), then
/// P2: `crm_resource -r lb --force-check` exits 0 on the active node, 7 on another.
/// P3: `--move` of the group to another node, then `standby` of that node: each time lb
/// and vip stop (0, in that order) on the old node, whose daemon is gone and whose :80 is
/// closed, and start (0, monitor 0) on a new node; the VIP answers through it.
/// P5: the active node dies (SIGKILL to everything of it, corosync and Pacemaker
/// included); the group starts on a survivor, the VIP answers again. Timed.
#[test]
fn p2_p3_p5_a_group_on_three_nodes() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = cluster(&[VIP]);
    let mark = c.mark();
    c.create(
        "resources",
        &format!(
            "<group id=\"g\">{}{}</group>",
            ipaddr2("vip", ""),
            director(&c)
        ),
    );
    c.wait("lb started and monitored", || {
        c.results(&mark, "lb").iter().any(|r| is(r, "monitor", "0"))
    });
    // P1: a probe on every node (7), one start.
    let lb = c.results(&mark, "lb");
    for n in &c.nodes {
        assert!(
            lb.iter().any(|r| r.node == n.name && is(r, "probe", "7")),
            "probe on {}: {lb:?}",
            n.name
        );
    }
    let starts: Vec<&OpResult> = lb.iter().filter(|r| r.op == "start").collect();
    assert!(
        starts.len() == 1 && starts[0].rc == "0",
        "one start: {lb:?}"
    );
    let first = active(&c);
    assert_eq!(starts[0].node, first);
    c.wait("the VIP to answer", || {
        get(&c, VIP).as_deref() == Some(PAGE)
    });

    // P2
    for n in &c.nodes {
        let r = n.tool(&["crm_resource", "-r", "lb", "--force-check"]);
        let want = if n.name == first { 0 } else { 7 };
        assert_eq!(
            r.code(),
            Some(want),
            "--force-check on {} (active: {first}): {r:?}",
            n.name
        );
    }

    // P3: a move.
    let to = c
        .nodes
        .iter()
        .find(|n| n.name != first)
        .unwrap()
        .name
        .clone();
    move_group(&c, &to);

    // P3: standby of the node that holds it.
    let pid = daemon_pid(c.node(&to)).expect("the daemon's pid file");
    let mark = c.mark();
    let r = c
        .any()
        .tool(&["crm_attribute", "-N", &to, "-n", "standby", "-v", "on"]);
    assert!(r.status.success(), "standby on: {r:?}");
    let now = assert_moved(&c, &mark, &to, &pid);
    let r = c
        .any()
        .tool(&["crm_attribute", "-N", &to, "-n", "standby", "-v", "off"]);
    assert!(r.status.success(), "standby off: {r:?}");
    c.settle();
    assert_eq!(active(&c), now, "stickiness keeps the group on {now}");

    // P5, timed.
    let runs: usize = std::env::var("LDRS_PCMK_FAILOVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut times = Vec::new();
    for run in 0..runs {
        // Every other run the group's node is the DC when it dies, so that the figures
        // include the election of a new DC.
        if run % 2 == 1 {
            let dc = c.dc().expect("a DC");
            if active(&c) != dc {
                move_group(&c, &dc);
            }
        }
        let dead = active(&c);
        let was_dc = c.dc().as_deref() == Some(dead.as_str());
        let mark = c.mark();
        let at = c.kill(&dead);
        let deadline = at + Duration::from_secs(pcmk::WAIT);
        let took = loop {
            let found = c
                .results(&mark, "lb")
                .into_iter()
                .find(|r| r.node != dead && is(r, "monitor", "0"));
            if let Some(r) = found {
                break (at.elapsed(), r.node);
            }
            assert!(
                Instant::now() < deadline,
                "no survivor's monitor returned 0 within {} s\n{}",
                pcmk::WAIT,
                c.explain()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let lb = c.results(&mark, "lb");
        assert!(
            lb.iter().any(|r| r.node == took.1 && is(r, "start", "0")),
            "{lb:?}"
        );
        c.wait("the VIP to answer through the survivor", || {
            get(&c, VIP).as_deref() == Some(PAGE)
        });
        eprintln!(
            "P5 run {}: {dead} killed ({}), lb's monitor 0 on {} after {:.2} s",
            run + 1,
            if was_dc { "the DC" } else { "not the DC" },
            took.1,
            took.0.as_secs_f64()
        );
        times.push(took.0);
        if run + 1 < runs {
            c.restart(&dead);
        }
    }
    eprintln!(
        "P5: failure to monitor 0 on a survivor, median of {runs}: {:.2} s (all: {:?})",
        median(times.clone()).as_secs_f64(),
        times
    );
}

/// `(id, value)` meta attributes of a clone.
fn clone(id: &str, meta: &[(&str, &str)], primitive: &str) -> String {
    let meta: String = meta
        .iter()
        .map(|(k, v)| nv(&format!("{id}-meta"), k, v))
        .collect();
    format!(
        "<clone id=\"{id}\"><meta_attributes id=\"{id}-meta\">{meta}</meta_attributes>\
         {primitive}</clone>"
    )
}

/// The director as a clone next to an `IPaddr2` clone, ordered clone-then-clone with
/// `interleave=true`, `clone-max=3`:
/// - one director per node, each started only after its node's VIP instance (the VIP's
///   `start` precedes lb's in every node's log), and each node's VIP answers through it;
/// - a node dies: its instances are not restarted elsewhere (no start on the survivors,
///   `--locate` lists the two survivors), and its VIP stays down.
///
/// This kernel has no CLUSTERIP (removed from Linux in 6.3), so the VIP clone is
/// `globally-unique=true` with `unique_clone_address=true`: instance N holds
/// 10.250.2.(100+N). The directors share one configuration serving all three VIPs, so each
/// node allows binding to addresses it does not hold (`net.ipv4.ip_nonlocal_bind=1` in
/// its own network namespace).
#[test]
fn the_director_as_a_clone_beside_an_ipaddr2_clone() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let vips = ["10.250.2.100", "10.250.2.101", "10.250.2.102"];
    let mut c = cluster(&vips);
    for n in &c.nodes {
        n.ns().ok(&["sysctl", "-w", "net.ipv4.ip_nonlocal_bind=1"]);
    }
    let mark = c.mark();
    let three = [
        ("clone-max", "3"),
        ("clone-node-max", "1"),
        ("interleave", "true"),
    ];
    c.create(
        "resources",
        &clone(
            "vip-clone",
            &[three[0], three[1], three[2], ("globally-unique", "true")],
            &ipaddr2("vip", &nv("vip", "unique_clone_address", "true")),
        ),
    );
    // Stopped until the order exists, so that no director starts before it.
    c.create(
        "resources",
        &clone(
            "lb-clone",
            &[three[0], three[1], three[2], ("target-role", "Stopped")],
            &director(&c),
        ),
    );
    c.create(
        "constraints",
        "<rsc_order id=\"vip-then-lb\" first=\"vip-clone\" then=\"lb-clone\" kind=\"Mandatory\"/>",
    );
    let r = c.any().tool(&[
        "crm_resource",
        "-r",
        "lb-clone",
        "--meta",
        "-p",
        "target-role",
        "-v",
        "Started",
    ]);
    assert!(r.status.success(), "target-role Started: {r:?}");
    c.wait("a director started and monitored on every node", || {
        let lb = c.results(&mark, "lb");
        c.nodes
            .iter()
            .all(|n| lb.iter().any(|r| r.node == n.name && is(r, "monitor", "0")))
    });
    for n in &c.nodes {
        let from = mark_of(&mark, &n.name);
        let vip = n.results(from, "vip");
        let lb = n.results(from, "lb");
        let vip_start = vip.iter().find(|r| is(r, "start", "0"));
        let lb_start = lb.iter().find(|r| is(r, "start", "0"));
        assert!(
            vip_start.is_some()
                && lb_start.is_some()
                && vip_start.unwrap().line < lb_start.unwrap().line,
            "{}: the VIP instance starts before the director: {vip:?} {lb:?}",
            n.name
        );
        assert_eq!(lb.iter().filter(|r| r.op == "start").count(), 1, "{lb:?}");
    }
    // Each node holds one VIP, and each VIP answers through its node's director.
    let held = |n: &Node| -> Vec<&str> {
        let r = n.ns().run(&["ip", "-o", "addr", "show", "dev", "eth0"], 30);
        vips.iter()
            .copied()
            .filter(|v| r.stdout.contains(&format!("inet {v}/24")))
            .collect()
    };
    let mut by_node = Vec::new();
    for n in &c.nodes {
        let h = held(n);
        assert_eq!(h.len(), 1, "{}: {h:?}\n{}", n.name, c.explain());
        by_node.push((n.name.clone(), h[0]));
    }
    for vip in vips {
        c.wait(&format!("{vip} to answer"), || {
            get(&c, vip).as_deref() == Some(PAGE)
        });
    }

    // node3 dies: its instances stay stopped.
    let mark = c.mark();
    c.kill("node3");
    c.wait_members(&["node1", "node2"]);
    c.settle();
    let survivors = ["node1", "node2"];
    for rsc in ["lb", "vip"] {
        let started: Vec<OpResult> = c
            .results(&mark, rsc)
            .into_iter()
            .filter(|r| r.op == "start")
            .collect();
        assert!(
            started.is_empty(),
            "{rsc} restarted: {started:?}\n{}",
            c.explain()
        );
    }
    let r = c
        .any()
        .tool(&["crm_resource", "-r", "lb-clone", "--locate", "-Q"]);
    let mut located: Vec<&str> = r.stdout.split_whitespace().collect();
    located.sort();
    assert_eq!(located, survivors, "{r:?}");
    for (node, vip) in &by_node {
        let n = c.node(node);
        if n.is_running() {
            assert_eq!(held(n), [*vip], "{node} kept its VIP only");
            assert!(daemon_pid(n).is_some() && listens(n), "{}", c.explain());
            // Polled: on a loaded machine a survivor's check of the shared real server can
            // time out while the dead node's resources are sorted out, and the userspace
            // engine then refuses until the next good check.
            let answer = (0..20)
                .find_map(|_| {
                    get(&c, vip).filter(|a| a == PAGE).or_else(|| {
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        None
                    })
                })
                .or_else(|| get(&c, vip));
            assert_eq!(answer.as_deref(), Some(PAGE), "{vip} through {node}");
        } else {
            assert_eq!(get(&c, vip), None, "{vip} of the dead {node} answers");
        }
    }
}
