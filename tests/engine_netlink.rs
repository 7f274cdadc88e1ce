//! The netlink engine end to end: on the in-memory [`FakeKernel`] (the same netlink bytes
//! a kernel reads and writes), and against this machine's real kernel, which has no IPVS
//! and must give a clear `Unavailable` instead of a crash.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ldirectord::engine::netlink::{FakeKernel, NetlinkEngine, NetlinkOptions};
use ldirectord::engine::{
    DestEntry, DestSpec, Engine, EngineError, IpProto, Netmask, Op, SchedFlags, ServiceEntry,
    ServiceKey, ServiceSpec, Table,
};
use ldirectord_parsers::config::{Family, Forward};

mod engine_support;
use engine_support::{StandIn, apply_all, dest, ip, key, service, unavailable};
use ldirectord_parsers::ipvsadm::sort_like_ipvsadm;

fn entry(spec: DestSpec) -> DestEntry {
    DestEntry::new(spec)
}

async fn engine_on(kernel: &FakeKernel) -> NetlinkEngine {
    NetlinkEngine::with_transport(kernel.clone(), NetlinkOptions::default())
        .await
        .unwrap()
}

/// Applies `op`, which the kernel must refuse with an errno: (errno, op, message).
async fn refused(engine: &mut NetlinkEngine, op: Op) -> (i32, String, String) {
    errno_of(engine.apply(&op).await)
}

fn errno_of(result: Result<(), EngineError>) -> (i32, String, String) {
    match result {
        Err(EngineError::Rejected {
            op,
            message,
            errno: Some(errno),
        }) => (errno as i32, op, message),
        other => panic!("expected a rejection with an errno, got {other:?}"),
    }
}

/// The services of the flow below, in every shape the engine must encode.
struct Fixture {
    web: ServiceSpec,
    dns6: ServiceSpec,
    fwm6: ServiceSpec,
    sctp: ServiceSpec,
}

fn fixture() -> Fixture {
    Fixture {
        web: ServiceSpec {
            persistent: Some(300),
            netmask: Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))),
            ..service(key(IpProto::Tcp, "192.0.2.10", 80), "wrr")
        },
        dns6: ServiceSpec {
            ops: true,
            ..service(key(IpProto::Udp, "2001:db8::10", 53), "rr")
        },
        fwm6: ServiceSpec {
            sched_flags: SchedFlags::parse("sh-fallback,sh-port"),
            persistent: Some(60),
            netmask: Some(Netmask::V6(64)),
            ..service(
                ServiceKey::Fwmark {
                    mark: 12,
                    family: Family::Inet6,
                },
                "sh",
            )
        },
        sctp: service(key(IpProto::Sctp, "192.0.2.11", 9), "wlc"),
    }
}

#[tokio::test]
async fn add_dump_edit_dump_delete_on_the_fake_kernel() {
    let kernel = FakeKernel::new();
    let mut engine = engine_on(&kernel).await;
    assert_eq!(engine.name(), "netlink");
    let f = fixture();
    let web_masq = DestSpec {
        upper: 100,
        lower: 10,
        ..dest("10.0.0.2", 8080, Forward::Masq, 5)
    };
    apply_all(
        &mut engine,
        &[
            Op::AddService(f.web.clone()),
            Op::AddService(f.dns6.clone()),
            Op::AddService(f.fwm6.clone()),
            Op::AddService(f.sctp.clone()),
            Op::AddDest(f.web.key, web_masq),
            // Gate to another port lands on the service port, as with ipvsadm.
            Op::AddDest(f.web.key, dest("10.0.0.3", 8080, Forward::Gate, 1)),
            Op::AddDest(f.dns6.key, dest("2001:db8::a", 53, Forward::Ipip, 2)),
            // An IPv4 real under an IPv6 service is allowed for tunnels only.
            Op::AddDest(f.dns6.key, dest("192.0.2.99", 53, Forward::Ipip, 1)),
            Op::ReaddQuiescedDest(f.fwm6.key, dest("2001:db8::b", 0, Forward::Gate, 0)),
        ],
    )
    .await;
    let table = engine.dump().await.unwrap();
    let expected = Table {
        services: vec![
            ServiceEntry {
                spec: f.web.clone(),
                pe: None,
                dests: vec![
                    entry(web_masq),
                    entry(dest("10.0.0.3", 80, Forward::Gate, 1)),
                ],
            },
            ServiceEntry {
                spec: f.sctp.clone(),
                pe: None,
                dests: vec![],
            },
            ServiceEntry {
                spec: f.dns6.clone(),
                pe: None,
                dests: vec![
                    entry(dest("2001:db8::a", 53, Forward::Ipip, 2)),
                    entry(dest("192.0.2.99", 53, Forward::Ipip, 1)),
                ],
            },
            ServiceEntry {
                spec: f.fwm6.clone(),
                pe: None,
                dests: vec![entry(dest("2001:db8::b", 0, Forward::Gate, 0))],
            },
        ],
    };
    assert_eq!(table, expected);

    // Edit: new scheduler without persistence, quiesce one real, re-weight another.
    let web_plain = service(f.web.key, "wlc");
    apply_all(
        &mut engine,
        &[
            Op::EditService(web_plain.clone()),
            Op::QuiesceDest(
                f.web.key,
                DestSpec {
                    weight: 0,
                    ..web_masq
                },
            ),
            Op::EditDest(f.web.key, dest("10.0.0.3", 80, Forward::Gate, 7)),
            Op::EditService(ServiceSpec {
                ops: false,
                ..f.dns6.clone()
            }),
        ],
    )
    .await;
    let table = engine.dump().await.unwrap();
    let web = table.service(&f.web.key).unwrap();
    assert_eq!(web.spec, web_plain);
    assert_eq!(
        web.dests,
        vec![
            entry(DestSpec {
                weight: 0,
                upper: 0,
                lower: 0,
                ..web_masq
            }),
            entry(dest("10.0.0.3", 80, Forward::Gate, 7)),
        ]
    );
    assert!(!table.service(&f.dns6.key).unwrap().spec.ops);

    // Delete a real and whole services.
    apply_all(
        &mut engine,
        &[
            Op::DelDest {
                service: f.web.key,
                ip: ip("10.0.0.2"),
                port: 8080,
            },
            Op::DelService(f.dns6.key),
            Op::DelService(f.fwm6.key),
        ],
    )
    .await;
    let table = engine.dump().await.unwrap();
    let keys: Vec<ServiceKey> = table.services.iter().map(|s| s.spec.key).collect();
    assert_eq!(keys, vec![f.web.key, f.sctp.key]);
    assert_eq!(
        table.service(&f.web.key).unwrap().dests,
        vec![entry(dest("10.0.0.3", 80, Forward::Gate, 7))]
    );
    assert_eq!(kernel.counts(), (2, 1));
}

#[tokio::test]
async fn kernel_errors_become_rejections_that_name_the_op() {
    let kernel = FakeKernel::new();
    let mut engine = engine_on(&kernel).await;
    let f = fixture();
    engine.apply(&Op::AddService(f.web.clone())).await.unwrap();

    let (errno, op, message) = refused(&mut engine, Op::AddService(f.web.clone())).await;
    assert_eq!(
        (errno, op.as_str()),
        (17, "add virtual service -t 192.0.2.10:80")
    );
    assert!(message.contains("already exists"), "{message}");

    let missing = key(IpProto::Tcp, "192.0.2.77", 80);
    let (errno, _, message) = refused(&mut engine, Op::EditService(service(missing, "rr"))).await;
    assert_eq!(errno, 3, "{message}");
    let (errno, op, _) = refused(
        &mut engine,
        Op::AddDest(missing, dest("10.0.0.1", 80, Forward::Masq, 1)),
    )
    .await;
    assert_eq!(
        (errno, op.as_str()),
        (3, "add real server 10.0.0.1:80 to -t 192.0.2.77:80")
    );
    let (errno, _, _) = refused(&mut engine, Op::DelService(missing)).await;
    assert_eq!(errno, 3);

    let (errno, op, message) = refused(
        &mut engine,
        Op::EditDest(f.web.key, dest("10.0.0.1", 80, Forward::Masq, 1)),
    )
    .await;
    assert_eq!(
        (errno, op.as_str()),
        (2, "edit real server 10.0.0.1:80 of -t 192.0.2.10:80")
    );
    assert!(message.contains("no such real server"), "{message}");
    let (errno, _, _) = refused(
        &mut engine,
        Op::DelDest {
            service: f.web.key,
            ip: ip("10.0.0.1"),
            port: 80,
        },
    )
    .await;
    assert_eq!(errno, 2);

    let (errno, _, message) = refused(
        &mut engine,
        Op::AddService(service(key(IpProto::Tcp, "192.0.2.1", 1), "nosuch")),
    )
    .await;
    assert_eq!(errno, 2);
    assert!(message.contains("scheduler"), "{message}");

    let inverted = DestSpec {
        upper: 5,
        lower: 10,
        ..dest("10.0.0.1", 80, Forward::Masq, 1)
    };
    let (errno, _, _) = refused(&mut engine, Op::AddDest(f.web.key, inverted)).await;
    assert_eq!(errno, 34);
    let (errno, _, _) = refused(
        &mut engine,
        Op::AddDest(f.web.key, dest("10.0.0.1", 80, Forward::Masq, u32::MAX)),
    )
    .await;
    assert_eq!(errno, 34);

    engine.apply(&Op::AddService(f.dns6.clone())).await.unwrap();
    let (errno, _, _) = refused(
        &mut engine,
        Op::AddDest(f.dns6.key, dest("192.0.2.99", 53, Forward::Masq, 1)),
    )
    .await;
    assert_eq!(errno, 22, "an IPv4 masq real under an IPv6 service");

    engine
        .apply(&Op::AddDest(
            f.web.key,
            dest("10.0.0.1", 80, Forward::Masq, 1),
        ))
        .await
        .unwrap();
    let (errno, _, _) = refused(
        &mut engine,
        Op::AddDest(f.web.key, dest("10.0.0.1", 80, Forward::Masq, 3)),
    )
    .await;
    assert_eq!(errno, 17);

    // Refused before anything is sent.
    let before = kernel.requests();
    let bad_flags = ServiceSpec {
        sched_flags: SchedFlags::parse("sh-sideways"),
        ..service(f.sctp.key, "sh")
    };
    let (errno, _, message) = refused(&mut engine, Op::AddService(bad_flags)).await;
    assert_eq!(errno, 22);
    assert!(message.contains("sh-sideways"), "{message}");
    assert_eq!(kernel.requests(), before);
}

#[tokio::test]
async fn old_kernel_replies_local_reals_and_counters_decode() {
    let kernel = FakeKernel::new();
    kernel.set_legacy_replies(true);
    kernel.add_local_address(ip("127.0.0.1"));
    let mut engine = engine_on(&kernel).await;
    let f = fixture();
    apply_all(
        &mut engine,
        &[
            Op::AddService(f.web.clone()),
            Op::AddService(f.dns6.clone()),
            Op::AddDest(f.web.key, dest("127.0.0.1", 80, Forward::Gate, 2)),
            Op::AddDest(f.dns6.key, dest("2001:db8::a", 53, Forward::Masq, 1)),
        ],
    )
    .await;
    assert!(kernel.set_connections(&f.web.key, ip("127.0.0.1"), 80, 11, 22));
    let table = engine.dump().await.unwrap();
    let local = table.service(&f.web.key).unwrap().dests[0];
    assert_eq!(
        local,
        DestEntry {
            spec: dest("127.0.0.1", 80, Forward::Gate, 2),
            local: true,
            active_conns: 11,
            inactive_conns: 22
        }
    );
    // Without ADDR_FAMILY the real takes the service's family.
    assert_eq!(
        table.service(&f.dns6.key).unwrap().dests[0].spec.ip,
        ip("2001:db8::a")
    );
}

#[tokio::test]
async fn a_fake_kernel_without_ipvs_is_unavailable() {
    let message = unavailable(
        NetlinkEngine::with_transport(FakeKernel::without_ipvs(), NetlinkOptions::default()).await,
    );
    assert!(message.contains("modprobe ip_vs"), "{message}");
    assert!(message.contains("CAP_NET_ADMIN"), "{message}");
    // With modprobe enabled the engine tries once, then still reports Unavailable.
    let options = NetlinkOptions {
        modprobe: Some(PathBuf::from("/bin/true")),
    };
    let message =
        unavailable(NetlinkEngine::with_transport(FakeKernel::without_ipvs(), options).await);
    assert!(
        message.contains("even after running `/bin/true ip_vs`"),
        "{message}"
    );
}

/// This machine's kernel (no IPVS, see shared/reference/testing-ipvs.md): the lookup over
/// a real NETLINK_GENERIC socket must end in `Unavailable` with advice. On a kernel with
/// IPVS (the VM tests), connecting and dumping must work instead.
#[tokio::test]
async fn the_real_kernel_without_ipvs_is_unavailable_not_a_crash() {
    let kernel_has_ipvs = Path::new("/proc/net/ip_vs").exists();
    match NetlinkEngine::connect(NetlinkOptions::default()).await {
        Ok(mut engine) => {
            assert!(
                kernel_has_ipvs,
                "IPVS resolved although /proc/net/ip_vs is missing"
            );
            engine.dump().await.unwrap();
        }
        Err(EngineError::Unavailable(message)) => {
            assert!(
                !kernel_has_ipvs || message.contains("CAP_NET_ADMIN"),
                "{message}"
            );
            assert!(message.contains("CAP_NET_ADMIN"), "{message}");
            if !kernel_has_ipvs {
                assert!(message.contains("modprobe ip_vs"), "{message}");
            }
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
    }
}

/// Sorted like ipvsadm lists, so tables from both engines compare.
fn canonical(mut table: Table) -> Table {
    sort_like_ipvsadm(&mut table);
    table
}

#[tokio::test]
async fn both_engines_leave_the_same_table() {
    let standin = StandIn::new();
    let mut ipvsadm = standin.engine();
    let kernel = FakeKernel::new();
    let mut netlink = engine_on(&kernel).await;

    let f = fixture();
    let ops = vec![
        Op::AddService(f.web.clone()),
        Op::AddService(f.dns6.clone()),
        Op::AddService(f.fwm6.clone()),
        Op::AddService(service(
            ServiceKey::Fwmark {
                mark: 3,
                family: Family::Inet,
            },
            "lc",
        )),
        Op::AddDest(
            f.web.key,
            DestSpec {
                upper: 100,
                lower: 10,
                ..dest("10.0.0.2", 8080, Forward::Masq, 5)
            },
        ),
        Op::AddDest(f.web.key, dest("10.0.0.3", 8080, Forward::Gate, 1)),
        Op::AddDest(f.dns6.key, dest("2001:db8::a", 5353, Forward::Ipip, 2)),
        Op::ReaddQuiescedDest(f.fwm6.key, dest("2001:db8::b", 0, Forward::Gate, 0)),
        Op::QuiesceDest(f.web.key, dest("10.0.0.3", 80, Forward::Gate, 0)),
        Op::EditDest(
            f.web.key,
            DestSpec {
                upper: 7,
                lower: 1,
                ..dest("10.0.0.2", 8080, Forward::Masq, 9)
            },
        ),
        Op::EditService(service(f.web.key, "wlc")),
        Op::DelDest {
            service: f.dns6.key,
            ip: ip("2001:db8::a"),
            port: 53,
        },
    ];
    for op in &ops {
        apply_all(&mut ipvsadm, std::slice::from_ref(op)).await;
        apply_all(&mut netlink, std::slice::from_ref(op)).await;
    }
    let from_ipvsadm = canonical(ipvsadm.dump().await.unwrap());
    let from_netlink = canonical(netlink.dump().await.unwrap());
    assert_eq!(from_ipvsadm, from_netlink);
    assert_eq!(from_netlink.services.len(), 4);
}

/// Sync daemons over NEW/DEL/GET_DAEMON on the fake kernel: started with the kernel's
/// defaults filled in, an identical one adopted, a different one named and left alone,
/// errnos that say what is wrong, and only our own daemon stopped.
#[tokio::test]
async fn sync_daemons_start_adopt_refuse_and_stop() {
    use ldirectord::engine::sync::{self, SyncError, SyncStart, SyncStop};
    use ldirectord::engine::{SyncDaemon, SyncRole};
    let kernel = FakeKernel::new();
    kernel.add_interface("sync0");
    let mut engine = engine_on(&kernel).await;
    assert!(engine.sync_daemons().await.unwrap().is_empty());

    let master = SyncDaemon {
        group: Some(ip("ff02::81")),
        port: Some(8850),
        ttl: Some(2),
        ..SyncDaemon::new(SyncRole::Master, "sync0", 7)
    };
    assert_eq!(
        sync::ensure(&mut engine, &master).await.unwrap(),
        SyncStart::Started
    );
    let listed = engine.sync_daemons().await.unwrap();
    assert_eq!(
        listed[0].to_string(),
        "master sync daemon (mcast=sync0, syncid=7, maxlen=1452, group=ff02::81, port=8850, ttl=2)"
    );
    assert_eq!(listed, kernel.sync_daemons());
    // A restart (after kill -9) finds it running: adopted, not started twice.
    assert_eq!(
        sync::ensure(&mut engine, &master).await.unwrap(),
        SyncStart::Adopted
    );
    // A master and a backup coexist; defaults read back.
    let backup = SyncDaemon::new(SyncRole::Backup, "eth0", 0);
    sync::ensure(&mut engine, &backup).await.unwrap();
    let listed = engine.sync_daemons().await.unwrap();
    assert_eq!(
        listed[1].to_string(),
        "backup sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
    );

    // Another id while ours runs: refused, naming what runs; nothing changed.
    let other = SyncDaemon::new(SyncRole::Master, "sync0", 8);
    match sync::ensure(&mut engine, &other).await {
        Err(e @ SyncError::Conflict { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("a different master sync daemon already runs: master sync daemon (mcast=sync0, syncid=7"),
                "{text}"
            );
            assert!(
                text.contains("wanted: master sync daemon (mcast=sync0, syncid=8)"),
                "{text}"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        sync::stop(&mut engine, &other).await.unwrap(),
        SyncStop::Foreign(listed[0].clone())
    );
    assert_eq!(kernel.sync_daemons().len(), 2);

    // What the kernel says, straight: EEXIST, ENODEV, EINVAL, ESRCH.
    let (errno, op, message) = errno_of(engine.start_sync_daemon(&other).await);
    assert_eq!(
        (errno, message.as_str()),
        (libc_eexist(), "a master sync daemon already runs")
    );
    assert_eq!(op, "start master sync daemon (mcast=sync0, syncid=8)");
    let nowhere = SyncDaemon::new(SyncRole::Master, "nosuch0", 0);
    sync::stop(&mut engine, &master).await.unwrap();
    let (_, _, message) = errno_of(engine.start_sync_daemon(&nowhere).await);
    assert_eq!(message, "no network interface \"nosuch0\" here");
    match sync::ensure(&mut engine, &nowhere).await {
        Err(SyncError::NoInterface(name)) => assert_eq!(name, "nosuch0"),
        other => panic!("expected NoInterface, got {other:?}"),
    }
    let unicast = SyncDaemon {
        group: Some(ip("10.0.0.1")),
        ..SyncDaemon::new(SyncRole::Master, "eth0", 0)
    };
    assert_eq!(errno_of(engine.start_sync_daemon(&unicast).await).0, 22);
    let (errno, _, message) = errno_of(engine.stop_sync_daemon(SyncRole::Master).await);
    assert_eq!((errno, message.as_str()), (3, "no master sync daemon runs"));
    assert_eq!(
        sync::stop(&mut engine, &master).await.unwrap(),
        SyncStop::NotRunning
    );
    assert_eq!(
        sync::stop(&mut engine, &backup).await.unwrap(),
        SyncStop::Stopped
    );
    assert!(kernel.sync_daemons().is_empty());
}

fn libc_eexist() -> i32 {
    17
}

/// The same sync daemons through `ipvsadm` (the stand-in, in ipvsadm 1.31's words) and
/// through netlink (the fake kernel) read back alike; ipvsadm gets stock's option names.
#[tokio::test]
async fn both_engines_run_the_same_sync_daemons() {
    use ldirectord::engine::sync::{self, SyncStart, SyncStop};
    use ldirectord::engine::{SyncDaemon, SyncRole};
    let standin = StandIn::with_env("IPVSADM_STANDIN_INTERFACES=sync0");
    let mut ipvsadm = standin.engine();
    let kernel = FakeKernel::new();
    kernel.add_interface("sync0");
    let mut netlink = engine_on(&kernel).await;
    let master = SyncDaemon {
        group: Some(ip("239.1.2.3")),
        port: Some(8850),
        ..SyncDaemon::new(SyncRole::Master, "sync0", 7)
    };
    let backup = SyncDaemon::new(SyncRole::Backup, "eth0", 0);
    for engine in [&mut ipvsadm as &mut dyn Engine, &mut netlink] {
        for daemon in [&master, &backup] {
            assert_eq!(
                sync::ensure(engine, daemon).await.unwrap(),
                SyncStart::Started
            );
            assert_eq!(
                sync::ensure(engine, daemon).await.unwrap(),
                SyncStart::Adopted
            );
        }
    }
    let listed = ipvsadm.sync_daemons().await.unwrap();
    assert_eq!(listed, netlink.sync_daemons().await.unwrap());
    assert_eq!(listed.len(), 2);
    let log = standin.log();
    assert!(
        log.contains(
            &"--start-daemon master --mcast-interface sync0 --syncid 7 --mcast-group 239.1.2.3 --mcast-port 8850"
                .to_owned()
        ),
        "{log:?}"
    );
    assert!(log.contains(&"-L --daemon".to_owned()), "{log:?}");
    // ipvsadm's own words for the kernel's refusals.
    match ipvsadm.start_sync_daemon(&master).await {
        Err(EngineError::Command { command, message }) => {
            assert!(command.ends_with("--start-daemon master --mcast-interface sync0 --syncid 7 --mcast-group 239.1.2.3 --mcast-port 8850"), "{command}");
            assert_eq!(message, "Daemon has already run");
        }
        other => panic!("expected ipvsadm's refusal, got {other:?}"),
    }
    for engine in [&mut ipvsadm as &mut dyn Engine, &mut netlink] {
        assert_eq!(
            sync::stop(engine, &master).await.unwrap(),
            SyncStop::Stopped
        );
        assert_eq!(
            sync::stop(engine, &master).await.unwrap(),
            SyncStop::NotRunning
        );
    }
    assert!(log_has(&standin, "--stop-daemon master"));
}

fn log_has(standin: &StandIn, line: &str) -> bool {
    standin.log().iter().any(|l| l == line)
}
