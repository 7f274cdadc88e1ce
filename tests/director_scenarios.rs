//! The compatibility scenarios of reference §8 that concern the director core, driven
//! through a simulated kernel table: exact operations (in ipvsadm's words) and exact log
//! texts. Numbers in test names are the §8 scenario numbers; the golden transcripts are
//! the blocks of `tests/fixtures/director/scenarios.txt`, what only code can say is here.

mod director_support;

use director_support::{Harness, fwmark, ip, lines, service, tcp};
use ldirectord::engine::Table;
use ldirectord_parsers::config::{Family, Forward};

fn empty() -> Table {
    Table::default()
}

/// Scenarios that are a golden block and nothing more: one test each, named as its block.
macro_rules! golden_scenarios {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            Harness::scenario(stringify!($name), empty());
        }
    )*};
}

golden_scenarios!(
    s01_basic_http_negotiate,
    s02_receive_mismatch_goes_to_the_monitorfile,
    s04_quiescent_failure_and_recovery_with_fallback,
    s05_non_quiescent_failure_and_recovery,
    s13_reload_adds_and_removes,
    s19_thresholds_in_add_and_edit_on_reload,
    s24_startup_with_one_dead_real_and_a_fallback,
);

#[test]
fn s06_failurecount_soft_failures_and_reset() {
    let h = Harness::scenario("s06_failurecount_soft_failures_and_reset", empty());
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
    let fb = |what: &str| format!("run: /usr/local/bin/fb {what} 10.0.0.100:80 tcp");
    assert_eq!(start.last().unwrap(), &fb("start"));
    assert_eq!(h.up(0, 0).last().unwrap(), &fb("stop"));
    // A second real up: no second stop.
    assert!(!h.up(0, 1).iter().any(|l| l.starts_with("run:")));
    assert!(!h.down(0, 0).iter().any(|l| l.starts_with("run:")));
    assert_eq!(h.down(0, 1).last().unwrap(), &fb("start"));
    // Still down: no repeated start.
    assert!(h.down(0, 1).is_empty());
    assert!(h.down(0, 0).is_empty());
    Harness::scenario("s08 fwmark", empty());
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
    let mut h = Harness::scenario("s09 start", kernel);
    // .2 is dead: adopted as up, it goes after failurecount failures.
    assert_eq!(h.down(0, 1).len(), 1);
    assert_eq!(h.down(0, 1).len(), 1);
    h.play("s09 third failure and stop");
}

#[test]
fn s10_weight_zero_entry_at_start_is_left_until_checked() {
    let kernel = || Table {
        services: vec![service(
            tcp("10.0.0.100", 80),
            &[("10.0.0.1", 80, Forward::Gate, 0)],
        )],
    };
    for name in ["s10 healthy", "s10 dead", "s10 dead quiescent"] {
        Harness::scenario(name, kernel());
    }
}

#[test]
fn s11_readdquiescent() {
    let mut h = Harness::scenario("s11 readdquiescent=yes", empty());
    h.kernel.services[0].dests.clear();
    h.play("s11 removed by hand");

    let (mut h, start) = Harness::start(
        "quiescent=yes\nreaddquiescent=no\nvirtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n",
        empty(),
    );
    assert_eq!(start.len(), 2);
    h.play("s11 readdquiescent=no");
}

#[test]
fn s12_cleanstop() {
    Harness::scenario("s12_cleanstop", empty());
    let body = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\n\treal=10.0.0.2:80 gate\n\tquiescent=yes\n";
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
fn s16_fwmark_service_with_portless_reals() {
    let mut h = Harness::scenario("s16 start", empty());
    assert_eq!(h.spec(0, 0).port, Some(80));
    h.play("s16 checks");
    Harness::scenario("s16 soft failures", empty());
}

#[test]
fn s17_ipv6_service_reals_fallback_and_fwmark6() {
    Harness::scenario("s17 ipv6", empty());
    let h = Harness::scenario("s17 fwmark6", empty());
    assert_eq!(h.director.config().virtuals[0].id(), "fwm6:12");
    let believed = h.director.believed(&fwmark(12, Family::Inet6));
    assert_eq!(believed.map(|e| e.dests.len()), Some(0));
}

#[test]
fn s18_ranges_and_names_at_model_level() {
    Harness::scenario("s18 range", empty());
    let (h, _) = Harness::start(
        "virtual=10.0.0.100:80\n\treal=10.0.0.1:http gate\n",
        empty(),
    );
    assert_eq!(h.spec(0, 0).real_port, 80);
}

#[test]
fn s22_maintenance_forces_down_regardless_of_failurecount() {
    let mut h = Harness::scenario("s22 start", empty());
    assert_eq!(
        ldirectord::director::maintenance_names(&h.spec(0, 0)),
        ["10.0.0.1:80".to_string(), "10.0.0.1".to_string()]
    );
    h.play("s22 maintenance");
}

#[test]
fn s23_shared_real_is_checked_once_and_applied_to_every_virtual() {
    let shared = "virtual=10.0.0.100:80\n\treal=10.0.0.1:80 gate\nvirtual=10.0.0.200:80\n\treal=10.0.0.1:80 gate 3\n";
    let (mut h, _) = Harness::start(shared, empty());
    assert_eq!(h.director.checks().len(), 1);
    h.play("s23 shared real");
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
fn s25_global_fallback_with_fwmark_gets_a_real_address() {
    let h = Harness::scenario(
        "s25_global_fallback_with_fwmark_gets_a_real_address",
        empty(),
    );
    let believed = h.director.believed(&fwmark(7, Family::Inet)).unwrap();
    assert_eq!(believed.dests[0].spec.ip, ip("10.0.0.1"));
}
