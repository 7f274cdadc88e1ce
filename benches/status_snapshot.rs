//! The cost of `status --json` on a big director: 10,000 virtuals x 4 reals, every check
//! reported once, 1% of the reals drained. The daemon's main loop builds the snapshot
//! between check results, so this is how long a status request holds the loop.
//! - `snapshot_40k_reals`: `Observer::snapshot` (the director's view joined with the last
//!   check runs and the drains);
//! - `snapshot_40k_reals_json`: the same plus its JSON text (the bytes are printed once).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ldirectord::daemon::drain::DrainRecord;
use ldirectord::daemon::observe::Observer;
use ldirectord::director::{CheckResult, Director};
use ldirectord::engine::Table;
use ldirectord_checks::{CheckSpec, Outcome};

mod support;
use support::{REALS, VIRTUALS, config};

fn bench(c: &mut Criterion) {
    let config = config(1);
    let specs: Vec<CheckSpec> = config
        .virtuals
        .iter()
        .flat_map(|vs| vs.reals.iter().map(move |r| CheckSpec::for_real(vs, r)))
        .collect();
    let drains: Vec<DrainRecord> = config
        .virtuals
        .iter()
        .step_by(25)
        .map(|vs| DrainRecord {
            ip: vs.reals[0].ip,
            port: Some(vs.reals[0].port),
            virtual_id: None,
            by: "root".into(),
            since: "2026-12-05T10:00:00Z".into(),
        })
        .collect();
    let (mut director, _) = Director::start(config, &Table::default());
    let mut observer = Observer::new(
        "netlink",
        std::path::Path::new("bench.cf"),
        tokio::time::Instant::now(),
    );
    let up = Outcome::up("200 OK", Duration::from_micros(800));
    for spec in &specs {
        director.on_check(spec, CheckResult::Up("-"), Duration::from_secs(1));
    }
    // As in the daemon, results carry the director's own copy of each spec (the
    // scheduler's key).
    for plan in director.checks() {
        observer.on_check(&plan.spec, &up, Duration::from_secs(1));
    }
    director.set_drains(drains.iter().map(DrainRecord::target).collect());
    let snapshot = observer.snapshot(&director, &drains);
    let reals: usize = snapshot.virtuals.iter().map(|v| v.reals.len()).sum();
    assert_eq!(reals, VIRTUALS * REALS);
    let json = serde_json::to_vec(&snapshot).unwrap();
    println!(
        "status snapshot: {reals} reals, {} drained, {} bytes of JSON",
        drains.len(),
        json.len()
    );

    let mut group = c.benchmark_group("status_snapshot");
    group.sample_size(10);
    group.bench_function("snapshot_40k_reals", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(observer.snapshot(&director, &drains));
            }
            t.elapsed()
        })
    });
    group.bench_function("snapshot_40k_reals_json", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let s = observer.snapshot(&director, &drains);
                std::hint::black_box(serde_json::to_vec(&s).unwrap());
            }
            t.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
