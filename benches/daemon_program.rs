//! The daemon's programming path at scale, end to end through the netlink engine: 10,000
//! virtual services x 4 reals, the director core's actions applied by `NetlinkEngine`
//! over the in-memory `FakeKernel` (real netlink encoding, the kernel's semantics, no
//! socket), exactly as `daemon::run` applies them.
//!
//! - `start`: empty table → dump, `Director::start`, apply, first check round (all
//!   healthy), apply: until the kernel holds 10,000 services and 40,000 reals.
//! - `reload 1%`: a reload changing 400 weights: dump, `Director::reload`, apply; the
//!   operations are counted (must be exactly the 400 edits).
//!
//! Prints the median of 5 runs of each and the process's VmRSS once the table is
//! programmed (director + engine + the fake kernel's copy of the table). Run with
//! `cargo bench -p ldirectord-rs --bench daemon_program`.

use std::time::{Duration, Instant};

use ldirectord::director::{Action, CheckResult, Director};
use ldirectord::engine::Engine;
use ldirectord::engine::netlink::{FakeKernel, NetlinkEngine, NetlinkOptions};

mod support;
use support::{REALS, VIRTUALS, config};
const RUNS: usize = 5;

/// Apply the engine operations among `actions`; returns how many there were.
async fn apply(engine: &mut NetlinkEngine, actions: Vec<Action>) -> usize {
    let mut ops = 0;
    for action in actions {
        if let Action::Apply(op) = action {
            engine.apply(&op).await.expect("fake kernel accepts the op");
            ops += 1;
        }
    }
    ops
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = config(1);
    let changed = config(3);
    let mut starts = Vec::new();
    let mut reloads = Vec::new();
    let mut start_ops = 0;
    let mut reload_ops = 0;
    let mut rss = 0;
    for _ in 0..RUNS {
        rt.block_on(async {
            let kernel = FakeKernel::new();
            let mut engine =
                NetlinkEngine::with_transport(kernel.clone(), NetlinkOptions::default())
                    .await
                    .unwrap();
            let begin = Instant::now();
            let table = engine.dump().await.unwrap();
            let (mut director, actions) = Director::start(base.clone(), &table);
            start_ops = apply(&mut engine, actions).await;
            for plan in director.checks() {
                let actions = director.on_check(&plan.spec, CheckResult::Up("-"), Duration::ZERO);
                start_ops += apply(&mut engine, actions).await;
            }
            director.running();
            starts.push(begin.elapsed());
            assert_eq!(kernel.counts(), (VIRTUALS, VIRTUALS * REALS));
            rss = rss.max(vm_rss_kib());

            let begin = Instant::now();
            let table = engine.dump().await.unwrap();
            let actions = director.reload(changed.clone(), &table, Duration::from_secs(1));
            reload_ops = apply(&mut engine, actions).await;
            reloads.push(begin.elapsed());
        });
    }
    assert_eq!(start_ops, VIRTUALS + VIRTUALS * REALS);
    assert_eq!(reload_ops, VIRTUALS * REALS / 100, "only the changed reals");
    println!(
        "daemon_program/start: {VIRTUALS} virtuals x {REALS} reals, {start_ops} ops, median {:?} of {RUNS}",
        median(starts)
    );
    println!(
        "daemon_program/reload 1%: {reload_ops} ops, median {:?} of {RUNS} (dump included)",
        median(reloads)
    );
    println!("daemon_program/VmRSS after programming: {} MiB", rss / 1024);
}
