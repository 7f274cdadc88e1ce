//! The ipvsadm engine against a recording stand-in (`tests/fixtures/ipvsadm-standin.py`):
//! every op kind must produce stock ldirectord's exact argument string
//! (`shared/reference/ldirectord.md` §4.6), and a dump must show what earlier ops did.
//! Also: the real `/usr/sbin/ipvsadm` on a kernel without IPVS reports `Unavailable`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ldirectord::engine::ipvsadm::{IpvsadmEngine, argv, stock_command};
use ldirectord::engine::{
    DestEntry, DestSpec, Engine, EngineError, Netmask, Op, SchedFlags, ServiceKey, ServiceSpec,
};
use ldirectord_parsers::config::{Family, Forward};
use ldirectord_parsers::ipvsadm::{ListingKind, merge, parse, render};

mod engine_support;
use engine_support::{StandIn, dest, ip, service, tcp, udp, unavailable};

/// Every op kind with the string stock passes to the shell (after the program path).
fn stock_cases() -> Vec<(Op, &'static str)> {
    let v4_persistent = ServiceSpec {
        persistent: Some(300),
        netmask: Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))),
        ..service(tcp("127.0.0.1", 9000), "wlc")
    };
    let v6_persistent = ServiceSpec {
        persistent: Some(60),
        netmask: Some(Netmask::V6(64)),
        ..service(tcp("2001:db8::5", 80), "wrr")
    };
    let udp_ops = ServiceSpec {
        ops: true,
        ..service(udp("127.0.0.1", 53), "rr")
    };
    let sched_flags = ServiceSpec {
        sched_flags: SchedFlags::parse("sh-fallback,sh-port"),
        persistent: Some(120),
        ..service(tcp("192.0.2.1", 443), "sh")
    };
    let fwm = ServiceKey::Fwmark {
        mark: 5,
        family: Family::Inet,
    };
    let fwm6 = ServiceKey::Fwmark {
        mark: 12,
        family: Family::Inet6,
    };
    let thresholds = DestSpec {
        upper: 100,
        lower: 10,
        ..dest("127.0.0.3", 80, Forward::Masq, 7)
    };
    vec![
        (
            Op::AddService(v4_persistent.clone()),
            "-A -t 127.0.0.1:9000 -s wlc -p 300 -M 255.255.255.0 ",
        ),
        (
            Op::EditService(v4_persistent),
            "-E -t 127.0.0.1:9000 -s wlc -p 300 -M 255.255.255.0 ",
        ),
        (
            Op::AddService(service(udp("127.0.0.1", 53), "wrr")),
            "-A -u 127.0.0.1:53 -s wrr ",
        ),
        (Op::AddService(udp_ops), "-A -u 127.0.0.1:53 -o -s rr "),
        (Op::AddService(service(fwm, "wrr")), "-A -f 5 -s wrr "),
        (Op::AddService(service(fwm6, "wrr")), "-A -f 12 -6 -s wrr "),
        (
            Op::AddService(v6_persistent),
            "-A -t [2001:db8::5]:80 -s wrr -p 60 -M 64 ",
        ),
        (
            Op::AddService(sched_flags),
            "-A -t 192.0.2.1:443 -s sh -p 120 -b sh-fallback,sh-port ",
        ),
        (
            Op::DelService(tcp("127.0.0.1", 9000)),
            "-D -t 127.0.0.1:9000",
        ),
        (Op::DelService(fwm6), "-D -f 12 -6"),
        (
            Op::AddDest(tcp("127.0.0.1", 80), thresholds),
            "-a -t 127.0.0.1:80 -x 100 -y 10 -r 127.0.0.3:80 -m -w 7",
        ),
        (
            Op::EditDest(tcp("127.0.0.1", 80), thresholds),
            "-e -t 127.0.0.1:80 -x 100 -y 10 -r 127.0.0.3:80 -m -w 7",
        ),
        (
            Op::AddDest(fwm6, dest("2001:db8:0:1::4", 0, Forward::Gate, 1)),
            "-a -f 12 -6 -x 0 -y 0 -r [2001:db8:0:1::4]:0 -g -w 1",
        ),
        (
            Op::QuiesceDest(
                tcp("127.0.0.1", 80),
                dest("127.0.0.3", 80, Forward::Gate, 0),
            ),
            "-e -t 127.0.0.1:80 -r 127.0.0.3:80 -g -w 0",
        ),
        (
            Op::ReaddQuiescedDest(
                tcp("127.0.0.1", 80),
                dest("127.0.0.3", 80, Forward::Ipip, 0),
            ),
            "-a -t 127.0.0.1:80 -r 127.0.0.3:80 -i -w 0",
        ),
        (
            Op::DelDest {
                service: tcp("127.0.0.1", 80),
                ip: ip("127.0.0.3"),
                port: 80,
            },
            "-d -t 127.0.0.1:80 -r 127.0.0.3:80",
        ),
    ]
}

#[test]
fn stock_command_matches_stock_for_every_op_kind() {
    for (op, expected) in stock_cases() {
        assert_eq!(stock_command(&op), expected, "{op:?}");
        let split: Vec<String> = expected.split_whitespace().map(str::to_owned).collect();
        assert_eq!(argv(&op), split, "{op:?}");
    }
}

#[test]
fn quiesce_ignores_the_specs_weight_and_thresholds() {
    // Stock's quiesce always says -w 0 and never -x/-y, whatever the real's config says.
    let spec = DestSpec {
        upper: 5,
        lower: 1,
        ..dest("10.0.0.1", 80, Forward::Masq, 9)
    };
    let op = Op::QuiesceDest(tcp("10.0.0.100", 80), spec);
    assert_eq!(
        stock_command(&op),
        "-e -t 10.0.0.100:80 -r 10.0.0.1:80 -m -w 0"
    );
}

#[tokio::test]
async fn the_standin_receives_stocks_argv_for_every_op_kind() {
    let standin = StandIn::new();
    let mut engine = standin.engine();
    // Set up what the cases edit or delete, then run them all in order.
    let setup = [
        Op::AddService(service(tcp("127.0.0.1", 80), "wrr")),
        Op::AddService(service(
            ServiceKey::Fwmark {
                mark: 12,
                family: Family::Inet6,
            },
            "rr",
        )),
    ];
    let mut expected = Vec::new();
    for op in setup.iter() {
        engine.apply(op).await.unwrap();
        expected.push(argv(op).join(" "));
    }
    for (op, _) in stock_cases() {
        // The sequence is consistent except for a few ops that need another state; those
        // must still reach the program with stock's argv, and fail as ipvsadm would.
        let result = engine.apply(&op).await;
        if let Err(e) = &result {
            assert!(matches!(e, EngineError::Command { .. }), "{op:?}: {e}");
        }
        expected.push(argv(&op).join(" "));
    }
    assert_eq!(standin.log(), expected);
}

#[tokio::test]
async fn a_dump_reflects_applied_ops() {
    let standin = StandIn::new();
    let mut engine = standin.engine();
    let web = tcp("192.0.2.10", 80);
    let persistent = ServiceSpec {
        persistent: Some(600),
        netmask: Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))),
        ..service(tcp("192.0.2.10", 443), "wlc")
    };
    let dns6 = ServiceSpec {
        ops: true,
        ..service(udp("2001:db8::10", 53), "rr")
    };
    let fwm6 = service(
        ServiceKey::Fwmark {
            mark: 2,
            family: Family::Inet6,
        },
        "sh",
    );
    let ops = vec![
        Op::AddService(service(web, "wlc")),
        Op::EditService(service(web, "wrr")),
        Op::AddService(persistent.clone()),
        Op::AddService(dns6.clone()),
        Op::AddService(fwm6.clone()),
        Op::AddDest(
            web,
            DestSpec {
                upper: 100,
                lower: 10,
                ..dest("10.0.0.2", 80, Forward::Gate, 3)
            },
        ),
        Op::AddDest(web, dest("10.0.0.3", 80, Forward::Gate, 1)),
        Op::QuiesceDest(web, dest("10.0.0.3", 80, Forward::Gate, 0)),
        Op::AddDest(web, dest("10.0.0.7", 80, Forward::Masq, 1)),
        Op::DelDest {
            service: web,
            ip: ip("10.0.0.7"),
            port: 80,
        },
        Op::AddDest(persistent.key, dest("10.0.0.2", 8443, Forward::Masq, 2)),
        // Gate with another port: ipvsadm stores it under the service port (§4.5).
        Op::AddDest(dns6.key, dest("2001:db8::a", 5353, Forward::Ipip, 1)),
        Op::ReaddQuiescedDest(fwm6.key, dest("2001:db8::b", 0, Forward::Gate, 0)),
    ];
    for op in &ops {
        engine
            .apply(op)
            .await
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    let table = engine.dump().await.unwrap();
    let keys: Vec<ServiceKey> = table.services.iter().map(|s| s.spec.key).collect();
    // ipvsadm's order: address services by family/protocol/address/port, then marks.
    assert_eq!(keys, vec![web, persistent.key, dns6.key, fwm6.key]);

    let web_entry = table.service(&web).unwrap();
    assert_eq!(web_entry.spec, service(web, "wrr"));
    assert_eq!(
        web_entry.dests,
        vec![
            DestEntry {
                spec: DestSpec {
                    upper: 100,
                    lower: 10,
                    ..dest("10.0.0.2", 80, Forward::Gate, 3)
                },
                local: false,
                active_conns: 0,
                inactive_conns: 0,
            },
            DestEntry {
                spec: dest("10.0.0.3", 80, Forward::Gate, 0),
                local: false,
                active_conns: 0,
                inactive_conns: 0,
            },
        ]
    );
    assert_eq!(table.service(&persistent.key).unwrap().spec, persistent);
    assert_eq!(
        table.service(&persistent.key).unwrap().dests[0].spec,
        dest("10.0.0.2", 8443, Forward::Masq, 2)
    );
    assert_eq!(table.service(&dns6.key).unwrap().spec, dns6);
    assert_eq!(
        table.service(&dns6.key).unwrap().dests[0].spec,
        dest("2001:db8::a", 53, Forward::Ipip, 1)
    );
    assert_eq!(
        table.service(&fwm6.key).unwrap().dests[0].spec,
        dest("2001:db8::b", 0, Forward::Gate, 0)
    );

    // Stock reads both listings, in this order.
    let log = standin.log();
    assert_eq!(
        log[log.len() - 2..],
        ["-L -n".to_owned(), "-L -n --thresholds".to_owned()]
    );

    engine.apply(&Op::DelService(web)).await.unwrap();
    let table = engine.dump().await.unwrap();
    assert!(table.service(&web).is_none());
    assert_eq!(table.services.len(), 3);
}

#[tokio::test]
async fn the_standins_listing_is_what_the_renderer_prints() {
    // The Python stand-in and the Rust renderer format independently; both must agree
    // with each other byte for byte (and the renderer with ipvsadm, see its unit tests).
    let standin = StandIn::new();
    for args in [
        &["-A", "-t", "192.0.2.10:80", "-s", "wrr"][..],
        &[
            "-a",
            "-t",
            "192.0.2.10:80",
            "-r",
            "10.0.0.3:80",
            "-g",
            "-w",
            "0",
        ],
        &[
            "-a",
            "-t",
            "192.0.2.10:80",
            "-r",
            "10.0.0.2:80",
            "-m",
            "-w",
            "12",
            "-x",
            "100",
            "-y",
            "10",
        ],
        &[
            "-A",
            "-u",
            "[2001:db8::10]:53",
            "-o",
            "-s",
            "sh",
            "-p",
            "-M",
            "64",
            "-b",
            "sh-port",
        ],
        &[
            "-a",
            "-u",
            "[2001:db8::10]:53",
            "-r",
            "[::ffff:10.1.1.1]:53",
            "-i",
        ],
        &["-A", "-f", "7", "-6", "-s", "lc"],
        &["-A", "--sctp-service", "10.9.9.9:9", "-s", "rr"],
    ] {
        standin.run(args);
    }
    let plain = standin.run(&["-L", "-n"]);
    let thresholds = standin.run(&["-L", "-n", "--thresholds"]);
    let (plain_parsed, thresholds_parsed) = (parse(&plain), parse(&thresholds));
    assert!(
        plain_parsed.warnings.is_empty(),
        "{:?}",
        plain_parsed.warnings
    );
    assert!(
        thresholds_parsed.warnings.is_empty(),
        "{:?}",
        thresholds_parsed.warnings
    );
    let table = merge(&plain_parsed, &thresholds_parsed);
    assert_eq!(table.services.len(), 4);
    let header = plain_parsed.header.clone().unwrap_or_default();
    assert_eq!(render(&table, &header, ListingKind::Plain), plain);
    assert_eq!(render(&table, &header, ListingKind::Thresholds), thresholds);
    assert!(
        plain.contains("UDP  [2001:db8::10]:53 sh (sh-port) persistent 300 mask 64 ops\n"),
        "{plain}"
    );
}

#[tokio::test]
async fn a_refused_op_is_rejected_with_ipvsadms_message() {
    let standin = StandIn::new();
    let mut engine = standin.engine();
    let add = Op::AddService(service(tcp("10.0.0.1", 80), "wrr"));
    engine.apply(&add).await.unwrap();
    match engine.apply(&add).await {
        Err(EngineError::Command { command, message }) => {
            assert_eq!(
                command,
                format!("{} -A -t 10.0.0.1:80 -s wrr", standin.program().display())
            );
            assert_eq!(message, "Service already exists");
            // ipvsadm reports no errno.
            let errno = EngineError::Command { command, message }.errno();
            assert_eq!(errno, None);
        }
        other => panic!("expected Command, got {other:?}"),
    }
    let missing = Op::EditDest(tcp("10.0.0.1", 80), dest("10.0.0.2", 80, Forward::Masq, 1));
    match engine.apply(&missing).await {
        Err(EngineError::Command { message, .. }) => assert_eq!(message, "No such destination"),
        other => panic!("expected Command, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_program_is_unavailable() {
    let mut engine = IpvsadmEngine::new(PathBuf::from("/nonexistent/sbin/ipvsadm"));
    let message = unavailable(engine.dump().await);
    assert!(message.contains("/nonexistent/sbin/ipvsadm"), "{message}");
}

#[tokio::test]
async fn ipvsadm_without_kernel_ipvs_is_unavailable() {
    let standin = StandIn::with_env("IPVSADM_STANDIN_NO_IPVS=1");
    let mut engine = standin.engine();
    let message = unavailable(engine.apply(&Op::DelService(tcp("10.0.0.1", 80))).await);
    assert!(message.contains("Can't initialize ipvs"), "{message}");
}

/// The real program (Debian package `ipvsadm`): on a kernel without IPVS, as on the
/// development and CI machines, the engine must say `Unavailable`; on one with IPVS
/// (and root), a dump must succeed.
#[tokio::test]
async fn the_real_ipvsadm_dumps_or_reports_unavailable() {
    let program = PathBuf::from("/usr/sbin/ipvsadm");
    assert!(
        program.exists(),
        "install the ipvsadm package (apt-get install ipvsadm)"
    );
    let mut engine = IpvsadmEngine::new(program);
    let kernel_has_ipvs = Path::new("/proc/net/ip_vs").exists();
    match engine.dump().await {
        Ok(_) => assert!(kernel_has_ipvs, "a dump succeeded without /proc/net/ip_vs"),
        Err(EngineError::Unavailable(message)) => {
            assert!(
                !kernel_has_ipvs || message.contains("Permission denied"),
                "{message}"
            );
            assert!(message.contains("ipvsadm -L -n"), "{message}");
        }
        Err(other) => panic!("expected a table or Unavailable, got {other}"),
    }
}
