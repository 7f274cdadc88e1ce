//! Dynamic real servers (cluster-integration §1.4, §5.5 L1-L5, L7): the agent selects
//! the nodes running a clone whose `pgsql-status` matches, from a `CIB_file` fixture
//! (crm_resource and crm_attribute read it without a cluster), and the daemon gets only
//! the difference. Both forms: lvsdr-style parameters and `realsource=` directives.

#[path = "fixtures/cluster/support.rs"]
mod cluster;
#[path = "fixtures/daemon/support.rs"]
mod support;

use cluster::{Agent, fixture, need};
use support::{World, wait_until};

const V: &str = "TCP 192.168.0.237:5432";
const REGEX: &str = "HS:sync|HS:potential|HS:async";
const NODES: &str = "node1=10.0.0.1 node2=10.0.0.2 node3=10.0.0.3";

/// A private copy of the three-node fixture (node1 PRI, node2 HS:sync, node3 HS:async;
/// realsvr-clone started on node2 and node3).
fn cib(w: &World) -> std::path::PathBuf {
    let path = w.path("cib.xml");
    std::fs::copy(fixture("cib-pgsql.xml"), &path).unwrap();
    path
}

fn set_status(cib: &std::path::Path, node_id: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(cib).unwrap();
    let needle = format!("status-{node_id}-pgsql-status\" name=\"pgsql-status\" value=\"{from}\"");
    assert!(text.contains(&needle), "{needle}");
    let new = needle.replace(&format!("value=\"{from}\""), &format!("value=\"{to}\""));
    std::fs::write(cib, text.replace(&needle, &new)).unwrap();
}

fn reals(w: &World) -> Option<Vec<(String, String, u64)>> {
    w.table().into_iter().find(|(s, _)| s == V).map(|(_, d)| d)
}

fn route(addr: &str, weight: u64) -> (String, String, u64) {
    (format!("{addr}:5432"), "gate".into(), weight)
}

fn lvsdr_agent<'w>(w: &'w World, cib: &std::path::Path) -> Agent<'w> {
    let mut a = Agent::new(w, "lvsdr");
    a.param("vip", "192.168.0.237")
        .param("port", "5432")
        .param("virtual_service_options", "-s rr")
        .param("realserver_dependent_resource", "realsvr-clone")
        .param("realserver_dependent_attribute_name", "pgsql-status")
        .param("realserver_dependent_attribute_value", REGEX)
        .param("node_address_map", NODES);
    a.env.insert("CIB_file".into(), cib.display().to_string());
    a
}

#[test]
fn l1_to_l4_parameters_follow_the_cluster_by_difference() {
    need("crm_resource", "pacemaker-cli-utils");
    need("crm_attribute", "pacemaker-cli-utils");
    let w = World::new();
    let cib = cib(&w);
    let mut a = lvsdr_agent(&w, &cib);
    a.expect("validate-all", 0);
    a.expect("monitor", 7);
    a.expect("start", 0);
    // L1: the standbys that stream, in direct routing, weight default_weight.
    wait_until(30, "node2 and node3 added", || {
        reals(&w) == Some(vec![route("10.0.0.2", 1), route("10.0.0.3", 1)])
    });
    a.expect_monitor(0);
    // L2: nothing changed: no ipvsadm mutation at all.
    let before = w.changes();
    for _ in 0..3 {
        a.expect_monitor(0);
    }
    assert_eq!(
        w.changes(),
        before,
        "monitors without a change touched IPVS"
    );

    // L3: node3 loses its primary.
    set_status(&cib, "3", "HS:async", "HS:alone");
    a.expect_monitor(0);
    wait_until(30, "node3 deleted", || {
        reals(&w) == Some(vec![route("10.0.0.2", 1)])
    });
    let after = w.changes();
    assert_eq!(
        &after[before.len()..],
        ["-d -t 192.168.0.237:5432 -r 10.0.0.3:5432"],
        "only node3 removed"
    );

    // L4: a weight changes through the parameters (Pacemaker's legacy reload).
    set_status(&cib, "3", "HS:alone", "HS:potential");
    a.expect_monitor(0);
    wait_until(30, "node3 back", || {
        reals(&w) == Some(vec![route("10.0.0.2", 1), route("10.0.0.3", 1)])
    });
    let before = w.changes();
    a.param("weight_of_realservers", "node2,3");
    a.expect("reload", 0);
    wait_until(30, "node2 weight 3", || {
        reals(&w) == Some(vec![route("10.0.0.2", 3), route("10.0.0.3", 1)])
    });
    let after = w.changes();
    assert_eq!(
        after.len(),
        before.len() + 1,
        "{:?}",
        &after[before.len()..]
    );
    assert!(
        after
            .last()
            .unwrap()
            .starts_with("-e -t 192.168.0.237:5432"),
        "{after:?}"
    );

    // O15: with a fallback value the hot standbys stay while none streams (every one
    // HS:alone while a primary is elected); once one streams again, it alone.
    a.param("realserver_dependent_attribute_fallback_value", "HS:alone");
    a.expect("reload", 0);
    let before = w.changes();
    set_status(&cib, "2", "HS:sync", "HS:alone");
    set_status(&cib, "3", "HS:potential", "HS:alone");
    a.expect_monitor(0);
    // What the monitor handed the daemon (its file, rewritten on every monitor).
    let generated = std::fs::read_to_string(w.path("rsctmp/ldirectord-rs/lvsdr.cf")).unwrap();
    for addr in ["10.0.0.2", "10.0.0.3"] {
        assert!(
            generated.contains(&format!("real={addr}:5432")),
            "{generated}"
        );
    }
    set_status(&cib, "3", "HS:alone", "HS:async");
    a.expect_monitor(0);
    wait_until(30, "node3 alone once it streams", || {
        reals(&w) == Some(vec![route("10.0.0.3", 1)])
    });
    let after = w.changes();
    assert_eq!(
        &after[before.len()..],
        ["-d -t 192.168.0.237:5432 -r 10.0.0.2:5432"],
        "both kept while none streamed, then node2 removed"
    );

    // L7: start on a running instance adopts the table, no churn.
    let before = w.changes();
    a.expect("start", 0);
    assert_eq!(w.changes(), before);
    a.expect("stop", 0);
    assert_eq!(reals(&w), None);
}

#[test]
fn l5_a_failing_or_empty_list_command_keeps_the_last_good_set() {
    let w = World::new();
    let list = w.path("list");
    std::fs::write(&list, "node2 10.0.0.9\n").unwrap();
    let script = w.script(
        "get_reals",
        &format!(
            "#!/bin/sh\nif [ -f '{0}.fail' ]; then echo boom >&2; exit 1; fi\ncat '{0}'\n",
            list.display()
        ),
    );
    let mut a = Agent::new(&w, "cmd");
    a.param("vip", "192.168.0.237")
        .param("port", "5432")
        .param(
            "realserver_get_real_servers_script",
            script.to_str().unwrap(),
        )
        .param("weight_of_realservers", "10.0.0.9,0")
        .param("node_address_map", NODES);
    a.expect("start", 0);
    wait_until(30, "command's list", || {
        reals(&w) == Some(vec![route("10.0.0.2", 1), route("10.0.0.9", 0)])
    });
    let before = w.changes();
    std::fs::write(format!("{}.fail", list.display()), "").unwrap();
    let r = a.expect_monitor(0);
    assert!(
        r.stderr
            .contains("keeping the last good set (2 real servers)"),
        "{r:?}"
    );
    // One warning per failure streak, not one per monitor.
    let r = a.expect_monitor(0);
    assert!(!r.stderr.contains("keeping the last good set"), "{r:?}");
    std::fs::remove_file(format!("{}.fail", list.display())).unwrap();
    let r = a.expect_monitor(0);
    assert!(
        r.stderr.contains("the source works again (2 real servers)"),
        "{r:?}"
    );
    std::fs::write(&list, "\n").unwrap();
    let r = a.expect_monitor(0);
    assert!(r.stderr.contains("printed nothing"), "{r:?}");
    assert_eq!(w.changes(), before, "a failing source changed IPVS");
    std::fs::write(&list, "node3\n").unwrap();
    a.expect_monitor(0);
    wait_until(30, "new list applied", || {
        reals(&w) == Some(vec![route("10.0.0.3", 1)])
    });
    a.expect("stop", 0);
}

#[test]
fn realsource_directives_in_ldirectord_cf() {
    need("crm_resource", "pacemaker-cli-utils");
    need("crm_attribute", "pacemaker-cli-utils");
    let w = World::new();
    let cib = cib(&w);
    let cfg = w.config(
        "pg.cf",
        &format!(
            "nodeaddress=node2 10.0.0.2\nnodeaddress=node3 10.0.0.3\n\
             virtual=192.168.0.237:5432\n\tchecktype=on\n\tscheduler=rr\n\
             \trealsource=resource realsvr-clone\n\
             \trealfilter=attribute pgsql-status {REGEX}\n\
             \trealweights=node3,4\n\
             \trealdefault=gate 2\n\
             virtual=192.168.0.238:80\n\tchecktype=on\n\treal=10.0.0.9:80 masq 1\n"
        ),
    );
    let mut a = Agent::new(&w, "pg");
    a.param("configfile", cfg.to_str().unwrap());
    a.env.insert("CIB_file".into(), cib.display().to_string());
    a.expect("validate-all", 0);
    a.expect("start", 0);
    wait_until(30, "dynamic and static reals", || {
        reals(&w) == Some(vec![route("10.0.0.2", 2), route("10.0.0.3", 4)])
            && w.table()
                .iter()
                .any(|(s, d)| s == "TCP 192.168.0.238:80" && d.len() == 1)
    });
    let generated = std::fs::read_to_string(w.path("rsctmp/ldirectord-rs/pg.cf")).unwrap();
    assert!(
        generated.contains("\treal=10.0.0.2:5432 gate 2\n"),
        "{generated}"
    );
    set_status(&cib, "2", "HS:sync", "STOP");
    a.expect_monitor(0);
    wait_until(30, "node2 out", || {
        reals(&w) == Some(vec![route("10.0.0.3", 4)])
    });
    a.expect("stop", 0);

    // A directive error names the operator's file and line.
    std::fs::write(
        &cfg,
        "virtual=192.168.0.237:5432\n\trealsource=everything\n",
    )
    .unwrap();
    let r = a.expect("validate-all", 6);
    assert!(
        r.stderr
            .contains(&format!("{}:2:13: realsource=everything", cfg.display())),
        "{r:?}"
    );
    // The daemon's file keeps its name, so a stop still finds the daemon.
    a.expect("stop", 0);
}
