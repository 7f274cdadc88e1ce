//! How long programming a big table takes: 10,000 virtual services with 4 real servers
//! each (50,000 ops: 10,000 service adds + 40,000 real adds), through the netlink engine
//! on the in-memory `FakeKernel` (each op is encoded, framed, parsed and applied by the
//! emulated kernel, and its ACK parsed back), compared with only building the ipvsadm
//! engine's argv for the same ops (no process is started: that cost comes on top, one
//! fork/exec per op). Also: one dump of the finished table (10,001 netlink dumps).
//!
//! Run with `cargo bench -p ldirectord-rs --bench engine_program`. Before criterion's own
//! report it prints the median of a few whole runs with the op count.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::Criterion;
use futures::executor::block_on;
use ldirectord::engine::netlink::{FakeKernel, NetlinkEngine, NetlinkOptions};
use ldirectord::engine::{DestSpec, Engine, IpProto, Op, ServiceKey, ServiceSpec};
use ldirectord_parsers::config::Forward;

const SERVICES: u32 = 10_000;
const REALS_PER_SERVICE: u32 = 4;

/// The ops that build the table, services first as the director orders them.
fn ops() -> Vec<Op> {
    let mut ops = Vec::with_capacity((SERVICES * (1 + REALS_PER_SERVICE)) as usize);
    for n in 0..SERVICES {
        let vip = Ipv4Addr::from(0x0a64_0000 + n); // 10.100.x.y
        let key = ServiceKey::Inet {
            proto: IpProto::Tcp,
            ip: IpAddr::V4(vip),
            port: 80,
        };
        ops.push(Op::AddService(ServiceSpec::new(key, "wrr")));
        for r in 0..REALS_PER_SERVICE {
            let rip = Ipv4Addr::from(0x0ac8_0000 + n * REALS_PER_SERVICE + r); // 10.200.x.y
            ops.push(Op::AddDest(
                key,
                DestSpec::new(IpAddr::V4(rip), 8080, Forward::Masq, 1),
            ));
        }
    }
    ops
}

fn program_netlink(ops: &[Op]) -> (FakeKernel, NetlinkEngine) {
    let kernel = FakeKernel::new();
    let mut engine = block_on(NetlinkEngine::with_transport(
        kernel.clone(),
        NetlinkOptions::default(),
    ))
    .expect("the fake kernel has IPVS");
    for op in ops {
        block_on(engine.apply(op)).expect("every op applies to an empty table");
    }
    (kernel, engine)
}

fn build_argvs(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| ldirectord::engine::ipvsadm::argv(op).len())
        .sum()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn summary(ops: &[Op]) {
    let count = ops.len();
    let netlink: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let (kernel, _engine) = program_netlink(ops);
            let elapsed = start.elapsed();
            assert_eq!(
                kernel.counts(),
                (SERVICES as usize, (SERVICES * REALS_PER_SERVICE) as usize)
            );
            elapsed
        })
        .collect();
    let argv: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(build_argvs(ops));
            start.elapsed()
        })
        .collect();
    let (_kernel, mut engine) = program_netlink(ops);
    let dumps: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let table = block_on(engine.dump()).expect("dump");
            assert_eq!(table.services.len(), SERVICES as usize);
            start.elapsed()
        })
        .collect();
    let report = |what: &str, runs: Vec<Duration>, n: usize| {
        let m = median(runs);
        println!(
            "{what}: {n} ops, median {:.1} ms over 5 runs ({:.2} µs/op)",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() * 1e6 / n as f64
        );
    };
    report(
        "netlink engine on FakeKernel, build 10,000 x 4 table",
        netlink,
        count,
    );
    report("ipvsadm engine argv building only, same ops", argv, count);
    report(
        "netlink engine dump of that table (10,001 dump requests)",
        dumps,
        SERVICES as usize + 1,
    );
}

fn main() {
    let ops = ops();
    summary(&ops);
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    c.bench_function("netlink_fake_kernel_apply_50k_ops", |b| {
        b.iter(|| black_box(program_netlink(&ops)))
    });
    c.bench_function("ipvsadm_argv_50k_ops", |b| {
        b.iter(|| black_box(build_argvs(&ops)))
    });
    let (_kernel, mut engine) = program_netlink(&ops);
    c.bench_function("netlink_fake_kernel_dump_10k_services", |b| {
        b.iter(|| black_box(block_on(engine.dump()).expect("dump")))
    });
    c.final_summary();
}
