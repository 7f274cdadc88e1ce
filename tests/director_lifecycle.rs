//! The director's improvements over stock and its life cycle: adoption without flapping,
//! reload as a minimal diff with health carried over, convergence from fresh dumps,
//! port-mapped reals, rise counts, alerts and reminders.

mod director_support;

use std::time::Duration;

use director_support::{Harness, config, lines, ops, service, tcp};
use ldirectord::director::{CheckResult, Director, DrainTarget, Health, apply_op};
use ldirectord::engine::{DestSpec, Op, Table};
use ldirectord_parsers::config::Forward;

fn empty() -> Table {
    Table::default()
}

/// `n` virtuals 10.0.1.X:80 with reals 10.1.X.1..=r, all weights 1 unless `bump` names
/// (virtual, real) pairs that get weight 5.
fn many(n: usize, r: usize, bump: &[(usize, usize)]) -> String {
    let mut cfg = String::from("fallback=127.0.0.1:80\n");
    for v in 0..n {
        cfg.push_str(&format!("virtual=10.0.1.{v}:80\n"));
        for i in 0..r {
            let w = if bump.contains(&(v, i)) { 5 } else { 1 };
            cfg.push_str(&format!("\treal=10.1.{v}.{}:80 gate {w}\n", i + 1));
        }
    }
    cfg
}

#[test]
fn adoption_of_a_correct_table_emits_nothing() {
    let kernel = Table {
        services: vec![service(
            tcp("10.0.0.100", 80),
            &[
                ("10.0.0.1", 80, Forward::Gate, 1),
                ("10.0.0.2", 80, Forward::Gate, 2),
            ],
        )],
    };
    let cfg = "fallbackcommand=/fb\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate 2\n\tfallback=127.0.0.1:80\n";
    let (mut h, start) = Harness::start(cfg, kernel.clone());
    assert!(start.is_empty(), "{start:?}");
    assert!(h.health().values().all(|up| *up));
    // Good checks keep it that way: no add, no delete, ever.
    assert!(h.up(0, 0).is_empty());
    assert!(h.up(0, 1).is_empty());
    assert_eq!(h.kernel, kernel);
}

#[test]
fn adoption_edits_only_what_differs() {
    // (kernel weight, kernel forward, kernel upper) -> expected ops for config `gate 2 u:50`.
    let cases: Vec<(u32, Forward, u32, Vec<&str>)> = vec![
        (2, Forward::Gate, 50, vec![]),
        (
            3,
            Forward::Gate,
            50,
            vec!["-e -t 10.0.0.100:80 -x 50 -y 0 -r 10.0.0.1:80 -g -w 2"],
        ),
        (
            2,
            Forward::Masq,
            50,
            vec!["-e -t 10.0.0.100:80 -x 50 -y 0 -r 10.0.0.1:80 -g -w 2"],
        ),
        (
            2,
            Forward::Gate,
            0,
            vec!["-e -t 10.0.0.100:80 -x 50 -y 0 -r 10.0.0.1:80 -g -w 2"],
        ),
        // Weight 0: down until checked, left as found.
        (0, Forward::Gate, 0, vec![]),
    ];
    for (weight, forward, upper, want) in cases {
        let mut entry = service(tcp("10.0.0.100", 80), &[("10.0.0.1", 80, forward, weight)]);
        entry.dests[0].spec.upper = upper;
        let (_, actions) = Director::start(
            config("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 2 u:50\n"),
            &Table {
                services: vec![entry],
            },
        );
        let got: Vec<String> = ops(&actions)
            .iter()
            .map(director_support::render_op)
            .collect();
        assert_eq!(got, want, "kernel w{weight} {forward:?} u{upper}");
    }
}

#[test]
fn local_forwarding_reported_by_the_kernel_is_not_an_edit() {
    let mut entry = service(
        tcp("10.0.0.100", 80),
        &[("127.0.0.1", 80, Forward::Masq, 1)],
    );
    entry.dests[0].local = true;
    let (_, actions) = Director::start(
        config("virtual=10.0.0.100:80\n\treal=127.0.0.1:80 gate\n"),
        &Table {
            services: vec![entry],
        },
    );
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn port_mapped_gate_real_is_recognised_not_purged() {
    // ipvsadm lists a gate real configured as RIP:8080 under the virtual's port.
    let kernel = Table {
        services: vec![service(
            tcp("10.0.0.100", 80),
            &[("10.0.0.1", 80, Forward::Gate, 1)],
        )],
    };
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:8080 gate\n\tchecktype=connect\n";
    let (mut h, start) = Harness::start(cfg, kernel);
    assert!(start.is_empty(), "{start:?}");
    assert!(h.health()["tcp:10.0.0.100:80 10.0.0.1:8080"]);
    assert_eq!(h.spec(0, 0).port, Some(8080));
    assert_eq!(
        h.down(0, 0),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Deleted real server: 10.0.0.1:80 mapped from 10.0.0.1:8080 (10.0.0.100:80)",
        ])
    );
    // A reload with the mapped entry present produces nothing either.
    let (mut h, _) = Harness::start(
        cfg,
        Table {
            services: vec![service(
                tcp("10.0.0.100", 80),
                &[("10.0.0.1", 80, Forward::Gate, 1)],
            )],
        },
    );
    assert!(h.reload(cfg).is_empty());
    // A masq real keeps its port: a kernel entry under the virtual's port is someone else's.
    let kernel = Table {
        services: vec![service(
            tcp("10.0.0.100", 80),
            &[("10.0.0.1", 80, Forward::Masq, 1)],
        )],
    };
    let (_, start) = Harness::start("virtual=10.0.0.100:80\n\treal=10.0.0.1:8080 masq\n", kernel);
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Purged real server (start): 10.0.0.1:80 (10.0.0.100:80)",
        ])
    );
}

#[test]
fn reload_changing_one_weight_among_many_is_exactly_one_edit() {
    let (mut h, _) = Harness::start(&many(20, 5, &[]), empty());
    for v in 0..20 {
        for r in 0..5 {
            h.up(v, r);
        }
    }
    let before = h.kernel.clone();
    let actions = h
        .director
        .reload(config(&many(20, 5, &[(7, 3)])), &before, h.now);
    assert_eq!(
        ops(&actions),
        vec![Op::EditDest(
            tcp("10.0.1.7", 80),
            DestSpec {
                ip: "10.1.7.4".parse().unwrap(),
                port: 80,
                forward: Forward::Gate,
                weight: 5,
                upper: 0,
                lower: 0
            }
        )]
    );
    assert_eq!(
        director_support::render(&actions),
        lines(&[
            "ipvsadm -e -t 10.0.1.7:80 -x 0 -y 0 -r 10.1.7.4:80 -g -w 5",
            "log: Restored real server: 10.1.7.4:80 (10.0.1.7:80) (Weight set to 5)",
        ])
    );
    for op in ops(&actions) {
        apply_op(&mut h.kernel, &op);
    }
    // Unchanged config: nothing at all.
    assert!(h.reload(&many(20, 5, &[(7, 3)])).is_empty());
}

#[test]
fn reload_keeps_a_quiesced_dead_real_at_weight_zero() {
    let cfg = |w: u32| {
        format!(
            "quiescent=yes\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate {w}\n\treal=10.0.0.2:80 gate\n"
        )
    };
    let (mut h, _) = Harness::start(&cfg(2), empty());
    h.up(0, 0);
    h.up(0, 1);
    h.down(0, 0);
    assert_eq!(h.listing()[1], "  -> 10.0.0.1:80 Route 0");
    // Same config, then a new weight for the dead real: no restore, not even briefly.
    assert!(h.reload(&cfg(2)).is_empty());
    assert!(h.reload(&cfg(4)).is_empty());
    assert_eq!(h.listing()[1], "  -> 10.0.0.1:80 Route 0");
    // It comes back with the new weight.
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "log: Resetting soft failure count: 10.0.0.1:80 (tcp:10.0.0.100:80)",
            "ipvsadm -e -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 4",
            "log: Restored real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 4)",
        ])
    );
}

#[test]
fn reload_carries_soft_failures_and_resets_on_a_changed_check() {
    let cfg = "failurecount=3\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n";
    let (mut h, _) = Harness::start(cfg, empty());
    h.up(0, 0);
    h.down(0, 0);
    h.down(0, 0);
    assert!(h.reload(cfg).is_empty());
    assert_eq!(
        h.down(0, 0),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Deleted real server: 10.0.0.1:80 (10.0.0.100:80)"
        ])
    );
    // A down real stays down across a reload (stock would flap it).
    assert!(h.reload(cfg).is_empty());
    assert!(!h.health()["tcp:10.0.0.100:80 10.0.0.1:80"]);

    // A changed check starts over: adopted from the table (weight > 0: up, no counters).
    let (mut h, _) = Harness::start(cfg, empty());
    h.up(0, 0);
    h.down(0, 0);
    let changed =
        "failurecount=3\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\trequest=\"/alive\"\n";
    assert!(h.reload(changed).is_empty());
    let status = h.director.status();
    assert_eq!(status[0].reals[0].health, Health::Up);
    assert_eq!(status[0].reals[0].failures, 0);
}

#[test]
fn reload_gives_a_new_user_of_a_known_check_its_health() {
    let one = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n";
    let two = format!("{one}virtual=10.0.0.200:80\n\treal=10.0.0.1:80 gate\n");
    let (mut h, _) = Harness::start(one, empty());
    h.up(0, 0);
    assert_eq!(
        h.reload(&two),
        lines(&[
            "ipvsadm -A -t 10.0.0.200:80 -s wrr",
            "log: Added virtual server: 10.0.0.200:80",
            "ipvsadm -a -t 10.0.0.200:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1",
            "log: Added real server: 10.0.0.1:80 (10.0.0.200:80) (Weight set to 1)",
        ])
    );
}

#[test]
fn reload_keeps_the_shared_copy_of_a_check_that_stays() {
    let one = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n";
    let two = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.3:80 gate\n";
    let (mut h, _) = Harness::start(one, empty());
    let before = h.director.checks();
    h.reload(two);
    let after = h.director.checks();
    let ip = |k: usize| after[k].spec.ip.to_string();
    assert_eq!((ip(0).as_str(), ip(1).as_str()), ("10.0.0.1", "10.0.0.3"));
    // The scheduler's key and the status' record are this Arc: the same allocation, not
    // an equal copy (the status finds a check's last run by address).
    assert!(std::sync::Arc::ptr_eq(&before[0].spec, &after[0].spec));
    assert!(!std::sync::Arc::ptr_eq(&before[1].spec, &after[1].spec));
    // The result of the surviving check still lands.
    h.up(0, 0);
    assert_eq!(h.director.status()[0].reals[0].health, Health::Up);
}

#[test]
fn the_status_finds_each_check_by_its_shared_copy_or_an_equal_one() {
    use ldirectord::daemon::observe::Observer;
    use ldirectord_checks::Outcome;
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n";
    let (h, _) = Harness::start(cfg, empty());
    let plans = h.director.checks();
    let mut observer = Observer::new(
        "netlink",
        std::path::Path::new("test.cf"),
        tokio::time::Instant::now(),
    );
    // As the daemon does: the scheduler's key is the director's Arc.
    observer.on_check(
        &plans[0].spec,
        &Outcome::up("200 OK", Duration::ZERO),
        Duration::ZERO,
    );
    // An equal spec in another allocation is found too (by value).
    let copy = std::sync::Arc::new((*plans[1].spec).clone());
    observer.on_check(
        &copy,
        &Outcome::down("refused", Duration::ZERO),
        Duration::ZERO,
    );
    let snapshot = observer.snapshot(&h.director, &[]);
    let verdicts: Vec<_> = snapshot.virtuals[0]
        .reals
        .iter()
        .map(|r| r.check.as_ref().map(|c| c.verdict.as_str()))
        .collect();
    assert_eq!(verdicts, [Some("up"), Some("down")]);
}

#[test]
fn reload_replaces_a_changed_fallback() {
    let cfg =
        |fb: &str| format!("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\tfallback={fb}\n");
    let (mut h, _) = Harness::start(&cfg("127.0.0.1:80"), empty());
    assert_eq!(
        h.reload(&cfg("127.0.0.2:80")),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 127.0.0.1:80",
            "log: Deleted fallback server: 127.0.0.1:80 (10.0.0.100:80)",
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 127.0.0.2:80 -g -w 1",
            "log: Added fallback server: 127.0.0.2:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
}

#[test]
fn results_for_checks_no_longer_configured_are_ignored() {
    let (mut h, _) = Harness::start("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n", empty());
    let old = h.spec(0, 0);
    h.reload("virtual=10.0.0.100:80\n\treal=10.0.0.2:80 gate\n");
    assert!(
        h.director
            .on_check(&old, CheckResult::Up("-"), h.now)
            .is_empty()
    );
}

#[test]
fn rise_count_needs_consecutive_successes() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\trisecount=3\n";
    let (mut h, _) = Harness::start(cfg, empty());
    let added = lines(&[
        "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1",
        "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
    ]);
    let steps: Vec<(bool, Vec<String>, u32)> = vec![
        (true, vec![], 1),
        (true, vec![], 2),
        (false, vec![], 0),
        (true, vec![], 1),
        (true, vec![], 2),
        (true, added, 0),
        (true, vec![], 0),
    ];
    for (i, (up, want, rises)) in steps.into_iter().enumerate() {
        let got = if up { h.up(0, 0) } else { h.down(0, 0) };
        assert_eq!(got, want, "step {i}");
        assert_eq!(h.director.status()[0].reals[0].rises, rises, "step {i}");
    }
}

#[test]
fn convergence_recreates_a_virtual_deleted_behind_our_back() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 2\n\treal=10.0.0.2:80 gate\n\tfallback=127.0.0.1:80\n";
    let (mut h, _) = Harness::start(cfg, empty());
    h.up(0, 0);
    assert!(h.dump().is_empty());
    h.kernel.services.clear(); // ipvsadm -C
    assert_eq!(
        h.dump(),
        lines(&[
            "ipvsadm -A -t 10.0.0.100:80 -s wrr",
            "log: Added virtual server: 10.0.0.100:80",
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 2",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 2)",
        ])
    );
    // All down: the recreated virtual gets its fallback.
    h.down(0, 0);
    h.kernel.services.clear();
    assert_eq!(
        h.dump(),
        lines(&[
            "ipvsadm -A -t 10.0.0.100:80 -s wrr",
            "log: Added virtual server: 10.0.0.100:80",
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 127.0.0.1:80 -g -w 1",
            "log: Added fallback server: 127.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
    assert!(h.dump().is_empty());
}

#[test]
fn convergence_redoes_failed_operations_and_reverts_manual_edits() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 2\n\tscheduler=wlc\n";
    let (mut h, _) = Harness::start(cfg, empty());
    // The add "failed": the kernel does not have it.
    let actions = h
        .director
        .on_check(&h.spec(0, 0), CheckResult::Up("-"), Duration::from_secs(1));
    assert_eq!(ops(&actions).len(), 1);
    assert_eq!(
        h.dump(),
        lines(&[
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 2",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 2)",
        ])
    );
    h.kernel.services[0].dests[0].spec.weight = 9;
    h.kernel.services[0].spec.scheduler = "rr".into();
    // A manual real added by hand is not ours to purge while running.
    h.kernel.services[0]
        .dests
        .push(service(tcp("10.0.0.100", 80), &[("10.0.0.7", 80, Forward::Gate, 1)]).dests[0]);
    assert_eq!(
        h.dump(),
        lines(&[
            "ipvsadm -E -t 10.0.0.100:80 -s wlc",
            "log: Changed virtual server: 10.0.0.100:80",
            "ipvsadm -e -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 2",
            "log: Restored real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 2)",
        ])
    );
}

#[test]
fn duplicate_reals_are_reported_and_ignored() {
    let (h, start) = Harness::start(
        "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.1:80 masq 3\n",
        empty(),
    );
    assert_eq!(
        start,
        lines(&[
            "log: Ignoring duplicate real server: 10.0.0.1:80 (10.0.0.100:80)",
            "ipvsadm -A -t 10.0.0.100:80 -s wrr",
            "log: Added virtual server: 10.0.0.100:80",
        ])
    );
    assert_eq!(h.director.status().len(), 1);
}

#[test]
fn checks_are_planned_once_with_the_shortest_interval() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\tcheckinterval=7\nvirtual=10.0.0.200:80\n\treal=10.0.0.1:80 gate\n\tcheckinterval=3\nvirtual=10.0.0.201:80\n\treal=10.0.0.9:80 gate\n\tchecktype=on\nvirtual=10.0.0.202:80\n\treal=10.0.0.8:80 gate\n\tchecktype=off\n";
    let (h, _) = Harness::start(cfg, empty());
    let plans = h.director.checks();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].interval, Duration::from_secs(3));
    assert_eq!(
        plans[0].spec.ip,
        "10.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
}

#[test]
fn checktype_off_never_changes_anything() {
    let kernel = Table {
        services: vec![service(
            tcp("10.0.0.100", 80),
            &[("10.0.0.1", 80, Forward::Gate, 1)],
        )],
    };
    let (mut h, start) = Harness::start(
        "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\tchecktype=off\n",
        kernel,
    );
    assert!(start.is_empty());
    assert!(h.down(0, 0).is_empty());
    assert!(h.health()["tcp:10.0.0.100:80 10.0.0.1:80"]);
}

#[test]
fn alerts_follow_emailalertstatus_and_the_daemon_state() {
    let cfg = "emailalert=ops@example.com\nemailalertstatus=running,stopping\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\tservicename=www\n";
    let (mut h, _) = Harness::start(cfg, empty());
    // Still starting: logged, not mailed.
    assert_eq!(h.up(0, 0).len(), 2);
    h.director.running();
    assert_eq!(
        h.down(0, 0),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Deleted real server: 10.0.0.1:80 (10.0.0.100:80)",
            "mail ops@example.com: [www] Deleted real server: 10.0.0.1:80 (10.0.0.100:80) [running]",
        ])
    );
    // Soft failures and resets are not mailed.
    let resets = h.up(0, 0);
    assert_eq!(
        resets[0],
        "log: Resetting soft failure count: 10.0.0.1:80 (tcp:10.0.0.100:80)"
    );
    assert_eq!(resets.iter().filter(|l| l.starts_with("mail")).count(), 1);
    assert_eq!(
        h.stop(),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Purged real server (stop): 10.0.0.1:80 (10.0.0.100:80)",
            "mail ops@example.com: [www] Purged real server (stop): 10.0.0.1:80 (10.0.0.100:80) [stopping]",
            "ipvsadm -D -t 10.0.0.100:80",
            "log: Purged virtual server (stop): 10.0.0.100:80",
            "mail ops@example.com: [www] Purged virtual server (stop): 10.0.0.100:80 [stopping]",
        ])
    );
}

#[test]
fn reminders_while_a_real_stays_down() {
    let cfg = "emailalert=ops@example.com\nemailalertfreq=60\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n";
    let (mut h, _) = Harness::start(cfg, empty());
    h.director.running();
    h.up(0, 0);
    h.up(0, 1);
    h.down(0, 0); // at t=3
    let reminder = lines(&[
        "mail ops@example.com: Inaccessible real server: 10.0.0.1:80 (10.0.0.100:80) [running]",
    ]);
    let steps: Vec<(u64, Vec<String>)> = vec![
        (30, vec![]),
        (29, vec![]),
        (1, reminder.clone()),
        (59, vec![]),
        (1, reminder.clone()),
    ];
    for (i, (secs, want)) in steps.into_iter().enumerate() {
        assert_eq!(h.tick(secs), want, "step {i}");
    }
    // Back up: no more reminders.
    h.up(0, 0);
    assert!(h.tick(600).is_empty());
    // A real found dead at start-up is reminded about too.
    let (mut h, _) = Harness::start(cfg, empty());
    h.director.running();
    h.down(0, 1);
    assert!(h.tick(59).is_empty());
    assert_eq!(
        h.tick(1),
        lines(&[
            "mail ops@example.com: Inaccessible real server: 10.0.0.2:80 (10.0.0.100:80) [running]"
        ])
    );
}

#[test]
fn fallback_command_runs_once_per_change_of_state_across_virtuals() {
    let cfg = "fallbackcommand=\"/fb\"\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\nvirtual=10.0.0.200:80\n\treal=10.0.0.1:80 gate\n\tfallbackcommand=/other\n";
    let (mut h, start) = Harness::start(cfg, empty());
    let runs = |t: &[String]| {
        t.iter()
            .filter(|l| l.starts_with("run:"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        runs(&start),
        lines(&[
            "run: \"/fb\" start 10.0.0.100:80 tcp",
            "run: /other start 10.0.0.200:80 tcp"
        ])
    );
    assert_eq!(
        runs(&h.up(0, 0)),
        lines(&[
            "run: \"/fb\" stop 10.0.0.100:80 tcp",
            "run: /other stop 10.0.0.200:80 tcp"
        ])
    );
    // The state survives a reload: no repeated stop.
    h.reload(cfg);
    assert!(runs(&h.up(0, 0)).is_empty());
}

#[test]
fn fallback_command_stop_after_a_reload_brings_a_real_up() {
    let down = "fallbackcommand=/fb\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n";
    let (mut h, start) = Harness::start(down, empty());
    assert_eq!(start.last().unwrap(), "run: /fb start 10.0.0.100:80 tcp");
    // Someone else's check already knows 10.0.0.2 is up... here: the table has it at weight 1.
    h.kernel.services[0]
        .dests
        .push(service(tcp("10.0.0.100", 80), &[("10.0.0.2", 80, Forward::Gate, 1)]).dests[0]);
    let reload = h.reload(&format!("{down}\treal=10.0.0.2:80 gate\n"));
    assert_eq!(reload, lines(&["run: /fb stop 10.0.0.100:80 tcp"]));
    // At start-up with a real already up, no command at all.
    let kernel = Table {
        services: vec![service(
            tcp("10.0.0.100", 80),
            &[("10.0.0.1", 80, Forward::Gate, 1)],
        )],
    };
    let (_, start) = Harness::start(down, kernel);
    assert!(start.is_empty(), "{start:?}");
}

fn drain(real: &str, port: Option<u16>, virt: Option<&str>) -> DrainTarget {
    DrainTarget {
        ip: real.parse().unwrap(),
        port,
        virtual_id: virt.map(str::to_owned),
    }
}

#[test]
fn a_drained_real_stays_at_weight_0_through_checks_and_reloads_until_ready() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 3\n\treal=10.0.0.2:80 gate\n\tfallback=127.0.0.1:80 gate\nvirtual=10.0.0.200:80\n\treal=10.0.0.1:80 gate 3\n";
    let (mut h, _) = Harness::start(cfg, empty());
    h.up(0, 0);
    h.up(0, 1);
    let got = h.drains(vec![drain("10.0.0.1", Some(80), Some("tcp:10.0.0.100:80"))]);
    assert_eq!(
        got,
        lines(&[
            "ipvsadm -e -t 10.0.0.100:80 -r 10.0.0.1:80 -g -w 0",
            "log: Drained real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 0)",
        ])
    );
    // Checks keep running and say up: the weight stays 0; the other virtual is untouched.
    assert!(h.up(0, 0).is_empty());
    assert!(h.down(0, 0).iter().any(|l| l.starts_with("ipvsadm -d")));
    // The check is shared with 10.0.0.200, where the real is not drained.
    let back = h.up(0, 0);
    let adds: Vec<&String> = back.iter().filter(|l| l.starts_with("ipvsadm")).collect();
    assert_eq!(
        adds,
        [
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 0",
            "ipvsadm -a -t 10.0.0.200:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 3"
        ]
    );
    assert!(h.reload(cfg).is_empty());
    let status = h.director.status();
    let real = &status[0].reals[0];
    assert!(real.drained && real.health == Health::Up);
    assert_eq!(real.table_weight, Some(0));
    assert_eq!(status[1].reals[0].table_weight, Some(3));
    assert_eq!(
        h.drains(Vec::new()),
        lines(&[
            "log: Ready real server: 10.0.0.1:80 (10.0.0.100:80)",
            "ipvsadm -e -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 3",
            "log: Restored real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 3)",
        ])
    );
}

#[test]
fn draining_the_last_serving_real_brings_the_fallback_in() {
    let cfg = "fallbackcommand=/fb\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\tfallback=127.0.0.1:80 gate\n";
    let (mut h, _) = Harness::start(cfg, empty());
    h.up(0, 0);
    let got = h.drains(vec![drain("10.0.0.1", None, None)]);
    assert!(
        got.contains(&"ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 127.0.0.1:80 -g -w 1".to_owned()),
        "{got:?}"
    );
    assert!(
        got.contains(&"run: /fb start 10.0.0.100:80 tcp".to_owned()),
        "{got:?}"
    );
    let got = h.drains(Vec::new());
    assert!(
        got.contains(&"run: /fb stop 10.0.0.100:80 tcp".to_owned()),
        "{got:?}"
    );
}

#[test]
fn a_restart_with_a_drain_never_gives_the_weight_back() {
    let kernel = Table {
        services: vec![service(
            tcp("10.0.0.100", 80),
            &[("10.0.0.1", 80, Forward::Gate, 2)],
        )],
    };
    let cfg = config("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 2\n");
    let (director, actions) =
        Director::start_drained(cfg, &kernel, vec![drain("10.0.0.1", Some(80), None)]);
    assert_eq!(
        ops(&actions),
        vec![Op::QuiesceDest(
            tcp("10.0.0.100", 80),
            DestSpec::new("10.0.0.1".parse().unwrap(), 80, Forward::Gate, 0)
        )]
    );
    assert!(director.status()[0].reals[0].drained);
}

#[test]
fn fallbackcommandonstop_runs_start_at_shutdown_once() {
    let cfg = "fallbackcommandonstop=yes\nfallbackcommand=/fb\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\nvirtual=10.0.0.200:80\n\treal=10.0.0.2:80 gate\n";
    let (mut h, _) = Harness::start(cfg, empty());
    h.up(0, 0);
    // 10.0.0.200 never had a real up: its `start` already ran and is not repeated.
    let runs: Vec<String> = h
        .stop()
        .into_iter()
        .filter(|l| l.starts_with("run:"))
        .collect();
    assert_eq!(runs, lines(&["run: /fb start 10.0.0.100:80 tcp"]));
    // Off by default (stock): no command at shutdown.
    let (mut h, _) = Harness::start(&cfg.replace("fallbackcommandonstop=yes\n", ""), empty());
    h.up(0, 0);
    assert!(!h.stop().iter().any(|l| l.starts_with("run:")));
}

#[test]
fn what_an_operator_removed_is_missing_and_the_next_dump_restores_it() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate 2\nvirtual=10.0.0.101:80\n\treal=10.0.0.1:80 gate\n";
    let (mut h, _) = Harness::start(cfg, empty());
    h.up(0, 0);
    h.up(0, 1);
    h.up(1, 0);
    let whole = h.listing();
    assert!(h.director.missing_from(&h.kernel).is_empty());
    // A weight set by hand is not missing: left alone while the real stays up (stock).
    let by_hand = DestSpec::new(director_support::ip("10.0.0.1"), 80, Forward::Gate, 0);
    apply_op(&mut h.kernel, &Op::EditDest(tcp("10.0.0.100", 80), by_hand));
    assert!(h.director.missing_from(&h.kernel).is_empty());
    // ipvsadm -d of one real, ipvsadm -D of the other virtual.
    apply_op(
        &mut h.kernel,
        &Op::DelDest {
            service: tcp("10.0.0.100", 80),
            ip: director_support::ip("10.0.0.2"),
            port: 80,
        },
    );
    apply_op(&mut h.kernel, &Op::DelService(tcp("10.0.0.101", 80)));
    assert_eq!(
        h.director.missing_from(&h.kernel),
        lines(&[
            "real server 10.0.0.2:80 (10.0.0.100:80)",
            "virtual server 10.0.0.101:80",
        ])
    );
    let restored = h.dump();
    assert!(
        restored.iter().any(|l| l.contains("-A -t 10.0.0.101:80")),
        "{restored:?}"
    );
    assert_eq!(
        h.listing(),
        whole,
        "the whole table, the hand-set weight too"
    );
    assert!(h.director.missing_from(&h.kernel).is_empty());
}
