//! What `checkpath=forwarding` costs the director per check of a healthy real: the same
//! TCP connect check of a loopback listener run directly and through
//! [`ldirectord_checks::route::Forwarding`] (a marked socket bound to the source towards the
//! real, found by a route lookup). There is no IPVS here, so the marked connection goes
//! to the listener like the direct one: the difference is the director's own work (the
//! extra socket calls), not the kernel's DR/IPIP delivery, which the VM scenario
//! `34-forwarding-path` measures end to end. `SO_MARK` needs CAP_NET_ADMIN: run as root
//! (`cargo bench -p ldirectord-checks --bench check_path`).

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ldirectord_checks::{CheckRoute, CheckSpec, build};
use ldirectord_parsers::config::{CheckType, Service};

fn paths(c: &mut Criterion) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let direct = CheckSpec::new(CheckType::Connect, Service::None, lo, port)
        .with_timeout(Duration::from_secs(2));
    let forwarding = direct.clone().through(CheckRoute {
        vip: lo,
        mark: 0x6c64_0000,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("connect check");
    for (name, spec) in [("direct", &direct), ("forwarding", &forwarding)] {
        let checker = build(spec).unwrap().unwrap();
        let first = rt.block_on(checker.check());
        assert!(
            first.is_up(),
            "{name}: {} (SO_MARK needs root)",
            first.reason
        );
        group.bench_function(name, |b| b.iter(|| rt.block_on(checker.check())));
    }
    group.finish();
}

criterion_group!(benches, paths);
criterion_main!(benches);
