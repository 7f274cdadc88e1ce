//! The compatibility scenarios of reference §8 that concern the director core, driven
//! through a simulated kernel table: exact operations (in ipvsadm's words) and exact log
//! texts. Numbers in test names are the §8 scenario numbers.

mod director_support;

use director_support::{Harness, ip, lines, service, tcp};
use ldirectord::director::CheckResult;
use ldirectord::engine::{ServiceKey, Table};
use ldirectord_parsers::config::{Family, Forward};

fn empty() -> Table {
    Table::default()
}

#[test]
fn s01_basic_http_negotiate() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n\trequest=\"health\"\n\treceive=\"OK\"\n";
    let (mut h, start) = Harness::start(cfg, empty());
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -t 10.0.0.100:80 -s wrr",
            "log: Added virtual server: 10.0.0.100:80"
        ])
    );
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
    assert_eq!(
        h.up(0, 1),
        lines(&[
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.2:80 -g -w 1",
            "log: Added real server: 10.0.0.2:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
    assert_eq!(
        h.listing(),
        lines(&[
            "-t 10.0.0.100:80 wrr",
            "  -> 10.0.0.1:80 Route 1",
            "  -> 10.0.0.2:80 Route 1"
        ])
    );
    // Steady state: more good results change nothing.
    assert!(h.up(0, 0).is_empty());
    assert!(h.up(0, 1).is_empty());
}

#[test]
fn s02_receive_mismatch_goes_to_the_monitorfile() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n\trequest=\"health\"\n\treceive=\"OK\"\n\tmonitorfile=\"/var/log/ldmon.log\"\n";
    let (mut h, _) = Harness::start(cfg, empty());
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "monitor /var/log/ldmon.log: negotiate http tcp 10.0.0.1 80 1 gate /health OK [up] -",
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
    assert_eq!(
        h.result(0, 1, CheckResult::Down("ERROR\nline 2")),
        lines(&[
            "monitor /var/log/ldmon.log: negotiate http tcp 10.0.0.2 80 1 gate /health OK [down] ERROR%0aline 2"
        ])
    );
    assert_eq!(
        h.listing(),
        lines(&["-t 10.0.0.100:80 wrr", "  -> 10.0.0.1:80 Route 1"])
    );
}

#[test]
fn s04_quiescent_failure_and_recovery_with_fallback() {
    let cfg = "quiescent=yes\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 2\n\tfallback=127.0.0.1:80 gate\n";
    let (mut h, start) = Harness::start(cfg, empty());
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -t 10.0.0.100:80 -s wrr",
            "log: Added virtual server: 10.0.0.100:80",
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 127.0.0.1:80 -g -w 1",
            "log: Added fallback server: 127.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
    let steps: Vec<(bool, Vec<String>)> = vec![
        (
            true,
            lines(&[
                "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 2",
                "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 2)",
                "ipvsadm -d -t 10.0.0.100:80 -r 127.0.0.1:80",
                "log: Deleted fallback server: 127.0.0.1:80 (10.0.0.100:80)",
            ]),
        ),
        (
            false,
            lines(&[
                "ipvsadm -e -t 10.0.0.100:80 -r 10.0.0.1:80 -g -w 0",
                "log: Quiescent real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 0)",
                "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 127.0.0.1:80 -g -w 1",
                "log: Added fallback server: 127.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
            ]),
        ),
        (false, vec![]),
        (
            true,
            lines(&[
                "log: Resetting soft failure count: 10.0.0.1:80 (tcp:10.0.0.100:80)",
                "ipvsadm -e -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 2",
                "log: Restored real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 2)",
                "ipvsadm -d -t 10.0.0.100:80 -r 127.0.0.1:80",
                "log: Deleted fallback server: 127.0.0.1:80 (10.0.0.100:80)",
            ]),
        ),
    ];
    for (i, (up, want)) in steps.into_iter().enumerate() {
        let got = if up { h.up(0, 0) } else { h.down(0, 0) };
        assert_eq!(got, want, "step {i}");
    }
    assert_eq!(
        h.listing(),
        lines(&["-t 10.0.0.100:80 wrr", "  -> 10.0.0.1:80 Route 2"])
    );
}

#[test]
fn s05_non_quiescent_failure_and_recovery() {
    let (mut h, _) = Harness::start("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n", empty());
    h.up(0, 0);
    assert_eq!(
        h.down(0, 0),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Deleted real server: 10.0.0.1:80 (10.0.0.100:80)",
        ])
    );
    assert_eq!(h.listing(), lines(&["-t 10.0.0.100:80 wrr"]));
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "log: Resetting soft failure count: 10.0.0.1:80 (tcp:10.0.0.100:80)",
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
}

#[test]
fn s06_failurecount_soft_failures_and_reset() {
    let (mut h, _) = Harness::start(
        "failurecount=3\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n",
        empty(),
    );
    h.up(0, 0);
    let soft = |c| {
        vec![format!(
            "log: Soft failure real server: 10.0.0.1:80 (tcp:10.0.0.100:80) failure {c}/3"
        )]
    };
    let reset = lines(&["log: Resetting soft failure count: 10.0.0.1:80 (tcp:10.0.0.100:80)"]);
    let gone = lines(&[
        "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
        "log: Deleted real server: 10.0.0.1:80 (10.0.0.100:80)",
    ]);
    let steps: Vec<(bool, Vec<String>)> = vec![
        (false, soft(1)),
        (false, soft(2)),
        (true, reset.clone()),
        (true, vec![]),
        (false, soft(1)),
        (false, soft(2)),
        (false, gone),
        // Failures while down change nothing.
        (false, vec![]),
    ];
    for (i, (up, want)) in steps.into_iter().enumerate() {
        let got = if up { h.up(0, 0) } else { h.down(0, 0) };
        assert_eq!(got, want, "step {i}");
    }
    assert!(!h.health()["tcp:10.0.0.100:80 10.0.0.1:80"]);
}

#[test]
fn s07_fallback_inserted_when_all_reals_die_never_quiesced() {
    for quiescent in ["no", "yes"] {
        let cfg = format!(
            "quiescent={quiescent}\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n\tfallback=127.0.0.1:80 gate\n"
        );
        let (mut h, _) = Harness::start(&cfg, empty());
        h.up(0, 0);
        h.up(0, 1);
        assert_eq!(
            h.listing(),
            lines(&[
                "-t 10.0.0.100:80 wrr",
                "  -> 10.0.0.1:80 Route 1",
                "  -> 10.0.0.2:80 Route 1"
            ])
        );
        let first_down = h.down(0, 0);
        assert!(
            !first_down.iter().any(|l| l.contains("fallback")),
            "{quiescent}: {first_down:?}"
        );
        let last_down = h.down(0, 1);
        assert_eq!(
            last_down[2..].to_vec(),
            lines(&[
                "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 127.0.0.1:80 -g -w 1",
                "log: Added fallback server: 127.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
            ]),
            "{quiescent}"
        );
        let back = h.up(0, 1);
        assert_eq!(
            back[back.len() - 2..].to_vec(),
            lines(&[
                "ipvsadm -d -t 10.0.0.100:80 -r 127.0.0.1:80",
                "log: Deleted fallback server: 127.0.0.1:80 (10.0.0.100:80)",
            ]),
            "{quiescent}"
        );
    }
}

#[test]
fn s08_fallbackcommand_arguments_and_deduplication() {
    let cfg = "fallbackcommand=/usr/local/bin/fb\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n";
    let (mut h, start) = Harness::start(cfg, empty());
    assert_eq!(
        start.last().unwrap(),
        "run: /usr/local/bin/fb start 10.0.0.100:80 tcp"
    );
    assert_eq!(
        h.up(0, 0).last().unwrap(),
        "run: /usr/local/bin/fb stop 10.0.0.100:80 tcp"
    );
    // A second real up: no second stop.
    assert!(!h.up(0, 1).iter().any(|l| l.starts_with("run:")));
    assert!(!h.down(0, 0).iter().any(|l| l.starts_with("run:")));
    assert_eq!(
        h.down(0, 1).last().unwrap(),
        "run: /usr/local/bin/fb start 10.0.0.100:80 tcp"
    );
    // Still down: no repeated start.
    assert!(h.down(0, 1).is_empty());
    assert!(h.down(0, 0).is_empty());

    // fwmark: stock gives `:0 fwm`; ldirectord-rs names the mark (compat/DEVIATIONS.md).
    let cfg = "fallbackcommand=/usr/local/bin/fb\nvirtual=5\n\treal=10.0.0.1 gate\n\tchecktype=connect\n\tcheckport=80\n";
    let (_, start) = Harness::start(cfg, empty());
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -f 5 -s wrr",
            "log: Added virtual server: 5",
            "run: /usr/local/bin/fb start 5:0 fwm"
        ])
    );
}

#[test]
fn s09_reconcile_existing_table_and_leave_unrelated_services_alone() {
    let mut vip = service(
        tcp("10.0.0.100", 80),
        &[
            ("10.0.0.1", 80, Forward::Gate, 5),
            ("10.0.0.2", 80, Forward::Gate, 1),
            ("10.0.0.9", 80, Forward::Masq, 1),
        ],
    );
    vip.spec.scheduler = "wlc".into();
    let unrelated = service(tcp("10.9.9.9", 80), &[("10.9.9.1", 80, Forward::Masq, 3)]);
    let kernel = Table {
        services: vec![vip, unrelated],
    };
    let cfg = "failurecount=3\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 2\n\treal=10.0.0.2:80 gate 1\n\tchecktype=connect\n";
    let (mut h, start) = Harness::start(cfg, kernel);
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -E -t 10.0.0.100:80 -s wrr",
            "log: Changed virtual server: 10.0.0.100:80",
            "ipvsadm -e -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 2",
            "log: Restored real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 2)",
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.9:80",
            "log: Purged real server (start): 10.0.0.9:80 (10.0.0.100:80)",
        ])
    );
    // .2 is dead: adopted as up, it goes after failurecount failures.
    assert_eq!(h.down(0, 1).len(), 1);
    assert_eq!(h.down(0, 1).len(), 1);
    assert_eq!(
        h.down(0, 1),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.2:80",
            "log: Deleted real server: 10.0.0.2:80 (10.0.0.100:80)"
        ])
    );
    assert_eq!(
        h.stop(),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Purged real server (stop): 10.0.0.1:80 (10.0.0.100:80)",
            "ipvsadm -D -t 10.0.0.100:80",
            "log: Purged virtual server (stop): 10.0.0.100:80",
        ])
    );
    assert_eq!(
        h.listing(),
        lines(&["-t 10.9.9.9:80 wrr", "  -> 10.9.9.1:80 Masq 3"])
    );
}

#[test]
fn s10_weight_zero_entry_at_start_is_left_until_checked() {
    let kernel = || Table {
        services: vec![service(
            tcp("10.0.0.100", 80),
            &[("10.0.0.1", 80, Forward::Gate, 0)],
        )],
    };
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 3\n";
    // Healthy: restored by the first check, no transient delete/add.
    let (mut h, start) = Harness::start(cfg, kernel());
    assert!(start.is_empty(), "{start:?}");
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "ipvsadm -e -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 3",
            "log: Restored real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 3)",
        ])
    );
    // Dead, not quiescent: deleted by the first check (stock's end state).
    let (mut h, _) = Harness::start(cfg, kernel());
    assert_eq!(
        h.down(0, 0),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Deleted real server: 10.0.0.1:80 (10.0.0.100:80)"
        ])
    );
    // Dead, quiescent: already quiesced, nothing to do.
    let (mut h, _) = Harness::start(&format!("quiescent=yes\n{cfg}"), kernel());
    assert!(h.down(0, 0).is_empty());
    assert_eq!(
        h.listing(),
        lines(&["-t 10.0.0.100:80 wrr", "  -> 10.0.0.1:80 Route 0"])
    );
}

#[test]
fn s11_readdquiescent() {
    let body = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n";
    let (mut h, start) = Harness::start(
        &format!("quiescent=yes\nreaddquiescent=yes\n{body}"),
        empty(),
    );
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -t 10.0.0.100:80 -s wrr",
            "log: Added virtual server: 10.0.0.100:80",
            "ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.1:80 -g -w 0",
            "log: Readd Quiescent real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 0)",
        ])
    );
    assert!(h.down(0, 0).is_empty());
    // Removed by hand (to end persistence): re-added by the next dump.
    h.kernel.services[0].dests.clear();
    assert_eq!(
        h.dump(),
        lines(&[
            "ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.1:80 -g -w 0",
            "log: Readd Quiescent real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 0)",
        ])
    );

    let (mut h, start) = Harness::start(
        &format!("quiescent=yes\nreaddquiescent=no\n{body}"),
        empty(),
    );
    assert_eq!(start.len(), 2);
    assert!(h.down(0, 0).is_empty());
    assert!(h.dump().is_empty());
    assert_eq!(h.listing(), lines(&["-t 10.0.0.100:80 wrr"]));
}

#[test]
fn s12_cleanstop() {
    let body = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n\tquiescent=yes\n";
    let (mut h, _) = Harness::start(body, empty());
    h.up(0, 0);
    h.up(0, 1);
    h.down(0, 1);
    assert_eq!(
        h.stop(),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Purged real server (stop): 10.0.0.1:80 (10.0.0.100:80)",
            "ipvsadm -D -t 10.0.0.100:80",
            "log: Purged virtual server (stop): 10.0.0.100:80",
        ])
    );
    assert!(h.listing().is_empty());

    for cfg in [
        format!("cleanstop=no\n{body}"),
        format!("{body}\tcleanstop=no\n"),
    ] {
        let (mut h, _) = Harness::start(&cfg, empty());
        h.up(0, 0);
        let before = h.listing();
        assert!(h.stop().is_empty(), "{cfg}");
        assert_eq!(h.listing(), before);
    }
}

#[test]
fn s13_reload_adds_and_removes() {
    let before = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 2\n\treal=10.0.0.2:80 gate\nvirtual=10.0.0.200:80\n\treal=10.0.0.5:80 gate\n";
    let after = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate 4\n\treal=10.0.0.3:80 gate\nvirtual=10.0.0.100:53\n\treal=10.0.0.1:53 gate\n";
    let (mut h, _) = Harness::start(before, empty());
    h.up(0, 0);
    h.up(0, 1);
    h.up(1, 0);
    assert_eq!(
        h.reload(after),
        lines(&[
            "ipvsadm -e -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 4",
            "log: Restored real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 4)",
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.2:80",
            "log: Purged real server (start): 10.0.0.2:80 (10.0.0.100:80)",
            "ipvsadm -A -u 10.0.0.100:53 -s wrr",
            "log: Added virtual server: 10.0.0.100:53",
            "ipvsadm -D -t 10.0.0.200:80",
            "log: Purged virtual server (start): 10.0.0.200:80",
        ])
    );
    // The new real is checked like any other, no flap before.
    assert_eq!(
        h.up(0, 1),
        lines(&[
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.3:80 -g -w 1",
            "log: Added real server: 10.0.0.3:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
    assert_eq!(
        h.listing(),
        lines(&[
            "-t 10.0.0.100:80 wrr",
            "  -> 10.0.0.1:80 Route 4",
            "  -> 10.0.0.3:80 Route 1",
            "-u 10.0.0.100:53 wrr",
        ])
    );
}

#[test]
fn s16_fwmark_service_with_portless_reals() {
    let cfg = "virtual=1\n\treal=10.0.0.1 gate\n\treal=10.0.0.2 gate\n\tchecktype=connect\n\tcheckport=80\n";
    let (mut h, start) = Harness::start(cfg, empty());
    assert_eq!(
        start,
        lines(&["ipvsadm -A -f 1 -s wrr", "log: Added virtual server: 1"])
    );
    assert_eq!(h.spec(0, 0).port, Some(80));
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "ipvsadm -a -f 1 -x 0 -y 0 -r 10.0.0.1:0 -g -w 1",
            "log: Added real server: 10.0.0.1:0 (1) (Weight set to 1)"
        ])
    );
    assert_eq!(
        h.down(0, 0),
        lines(&[
            "ipvsadm -d -f 1 -r 10.0.0.1:0",
            "log: Deleted real server: 10.0.0.1:0 (1)"
        ])
    );
    // Soft-failure lines use the virtual id `fwm:1`.
    let (mut h, _) = Harness::start(&format!("failurecount=2\n{cfg}"), empty());
    h.up(0, 1);
    assert_eq!(
        h.down(0, 1),
        lines(&["log: Soft failure real server: 10.0.0.2:0 (fwm:1) failure 1/2"])
    );
}

#[test]
fn s17_ipv6_service_reals_fallback_and_fwmark6() {
    let cfg = "virtual6=[2001:db8::5]:80\n\treal6=[2001:db8::1]:80 masq 2\n\tfallback6=[::1]:80\n\tpersistent=60\n\tnetmask=64\n";
    let (mut h, start) = Harness::start(cfg, empty());
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -t [2001:db8::5]:80 -s wrr -p 60 -M 64",
            "log: Added virtual server: [2001:db8::5]:80",
            "ipvsadm -a -t [2001:db8::5]:80 -x 0 -y 0 -r [::1]:80 -g -w 1",
            "log: Added fallback server: [::1]:80 ([2001:db8::5]:80) (Weight set to 1)",
        ])
    );
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "ipvsadm -a -t [2001:db8::5]:80 -x 0 -y 0 -r [2001:db8::1]:80 -m -w 2",
            "log: Added real server: [2001:db8::1]:80 ([2001:db8::5]:80) (Weight set to 2)",
            "ipvsadm -d -t [2001:db8::5]:80 -r [::1]:80",
            "log: Deleted fallback server: [::1]:80 ([2001:db8::5]:80)",
        ])
    );
    let (h, start) = Harness::start("virtual6=12\n\treal6=[2001:db8:0:1::4] gate\n", empty());
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -f 12 -6 -s wrr",
            "log: Added virtual server: 12"
        ])
    );
    assert_eq!(h.director.config().virtuals[0].id(), "fwm6:12");
    assert_eq!(
        h.director
            .believed(&ServiceKey::Fwmark {
                mark: 12,
                family: Family::Inet6
            })
            .map(|e| e.dests.len()),
        Some(0)
    );
}

#[test]
fn s18_ranges_and_names_at_model_level() {
    let cfg = "virtual=localhost:https\n\treal=10.0.0.1->10.0.0.3:80 gate 9\n\tchecktype=on\n";
    let (_, start) = Harness::start(cfg, empty());
    // checktype=on: up without a check, so the range is in at once.
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -t 127.0.0.1:443 -s wrr",
            "log: Added virtual server: 127.0.0.1:443",
            "ipvsadm -a -t 127.0.0.1:443 -x 0 -y 0 -r 10.0.0.1:80 -g -w 9",
            "log: Added real server: 10.0.0.1:80 (127.0.0.1:443) (Weight set to 9)",
            "ipvsadm -a -t 127.0.0.1:443 -x 0 -y 0 -r 10.0.0.2:80 -g -w 9",
            "log: Added real server: 10.0.0.2:80 (127.0.0.1:443) (Weight set to 9)",
            "ipvsadm -a -t 127.0.0.1:443 -x 0 -y 0 -r 10.0.0.3:80 -g -w 9",
            "log: Added real server: 10.0.0.3:80 (127.0.0.1:443) (Weight set to 9)",
        ])
    );
    let (h, _) = Harness::start(
        "virtual=10.0.0.100:80\n\treal=10.0.0.1:http gate\n",
        empty(),
    );
    assert_eq!(h.spec(0, 0).real_port, 80);
}

#[test]
fn s19_thresholds_in_add_and_edit_on_reload() {
    let cfg =
        |l: u32, u: u32| format!("virtual=10.0.0.100:80\n\treal=10.0.0.1:80 masq 7 l:{l} u:{u}\n");
    let (mut h, _) = Harness::start(&cfg(10, 100), empty());
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "ipvsadm -a -t 10.0.0.100:80 -x 100 -y 10 -r 10.0.0.1:80 -m -w 7",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 7)",
        ])
    );
    assert_eq!(
        h.reload(&cfg(20, 100)),
        lines(&[
            "ipvsadm -e -t 10.0.0.100:80 -x 100 -y 20 -r 10.0.0.1:80 -m -w 7",
            "log: Restored real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 7)",
        ])
    );
    assert!(h.reload(&cfg(20, 100)).is_empty());
}

#[test]
fn s22_maintenance_forces_down_regardless_of_failurecount() {
    let cfg = "failurecount=5\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\tmonitorfile=\"/m.log\"\n";
    let (mut h, _) = Harness::start(cfg, empty());
    h.up(0, 0);
    assert_eq!(
        ldirectord::director::maintenance_names(&h.spec(0, 0)),
        ["10.0.0.1:80".to_string(), "10.0.0.1".to_string()]
    );
    assert_eq!(
        h.result(0, 0, CheckResult::Maintenance),
        lines(&[
            "monitor /m.log: negotiate http tcp 10.0.0.1 80 1 gate /  [down] Server in maintenance",
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Deleted real server: 10.0.0.1:80 (10.0.0.100:80)",
        ])
    );
    assert_eq!(
        h.result(0, 0, CheckResult::Maintenance),
        lines(&[
            "monitor /m.log: negotiate http tcp 10.0.0.1 80 1 gate /  [down] Server in maintenance"
        ])
    );
    // File gone: the next good check brings it back.
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "monitor /m.log: negotiate http tcp 10.0.0.1 80 1 gate /  [up] -",
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
}

#[test]
fn s23_shared_real_is_checked_once_and_applied_to_every_virtual() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\nvirtual=10.0.0.200:80\n\treal=10.0.0.1:80 gate 3\n";
    let (mut h, _) = Harness::start(cfg, empty());
    // One check, even with different weights (stock runs two when weights differ).
    assert_eq!(h.director.checks().len(), 1);
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 1",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
            "ipvsadm -a -t 10.0.0.200:80 -x 0 -y 0 -r 10.0.0.1:80 -g -w 3",
            "log: Added real server: 10.0.0.1:80 (10.0.0.200:80) (Weight set to 3)",
        ])
    );
    assert_eq!(
        h.down(1, 0),
        lines(&[
            "ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.1:80",
            "log: Deleted real server: 10.0.0.1:80 (10.0.0.100:80)",
            "ipvsadm -d -t 10.0.0.200:80 -r 10.0.0.1:80",
            "log: Deleted real server: 10.0.0.1:80 (10.0.0.200:80)",
        ])
    );
    // Different check parameters: two checks.
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\nvirtual=10.0.0.200:80\n\treal=10.0.0.1:80 gate\n\trequest=\"/other\"\n";
    let (h, _) = Harness::start(cfg, empty());
    assert_eq!(h.director.checks().len(), 2);
    // External checks get the virtual as an argument: never shared across virtuals.
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\tchecktype=external\n\tcheckcommand=/x\nvirtual=10.0.0.200:80\n\treal=10.0.0.1:80 gate\n\tchecktype=external\n\tcheckcommand=/x\n";
    let (h, _) = Harness::start(cfg, empty());
    assert_eq!(h.director.checks().len(), 2);
}

#[test]
fn s24_startup_with_one_dead_real_and_a_fallback() {
    let cfg = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 masq 3\n\treal=10.0.0.2:80 masq\n\tfallback=127.0.0.1:80 masq\n\tscheduler=rr\n";
    let (mut h, start) = Harness::start(cfg, empty());
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -t 10.0.0.100:80 -s rr",
            "log: Added virtual server: 10.0.0.100:80",
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 127.0.0.1:80 -m -w 1",
            "log: Added fallback server: 127.0.0.1:80 (10.0.0.100:80) (Weight set to 1)",
        ])
    );
    // The dead real never appears, not even transiently.
    assert!(h.down(0, 1).is_empty());
    assert_eq!(
        h.up(0, 0),
        lines(&[
            "ipvsadm -a -t 10.0.0.100:80 -x 0 -y 0 -r 10.0.0.1:80 -m -w 3",
            "log: Added real server: 10.0.0.1:80 (10.0.0.100:80) (Weight set to 3)",
            "ipvsadm -d -t 10.0.0.100:80 -r 127.0.0.1:80",
            "log: Deleted fallback server: 127.0.0.1:80 (10.0.0.100:80)",
        ])
    );
    assert_eq!(
        h.listing(),
        lines(&["-t 10.0.0.100:80 rr", "  -> 10.0.0.1:80 Masq 3"])
    );
}

#[test]
fn s25_global_fallback_with_fwmark_gets_a_real_address() {
    let cfg = "fallback=127.0.0.1 gate\nvirtual=7\n\treal=10.0.0.1 gate\n\tchecktype=connect\n\tcheckport=80\n";
    let (mut h, start) = Harness::start(cfg, empty());
    assert_eq!(
        start,
        lines(&[
            "ipvsadm -A -f 7 -s wrr",
            "log: Added virtual server: 7",
            "ipvsadm -a -f 7 -x 0 -y 0 -r 127.0.0.1:0 -g -w 1",
            "log: Added fallback server: 127.0.0.1:0 (7) (Weight set to 1)",
        ])
    );
    h.up(0, 0);
    assert_eq!(h.listing(), lines(&["-f 7 wrr", "  -> 10.0.0.1:0 Route 1"]));
    assert_eq!(
        h.director
            .believed(&ServiceKey::Fwmark {
                mark: 7,
                family: Family::Inet
            })
            .unwrap()
            .dests[0]
            .spec
            .ip,
        ip("10.0.0.1")
    );
}
