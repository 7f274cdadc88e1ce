//! The director core at scale: 10,000 virtuals x 4 reals.
//! - `startup_empty_table`: start-up from an empty kernel table plus the first check round
//!   (all healthy); every run emits 10,000 service adds and 40,000 real adds.
//! - `reload_1pct_weights`: a reload that changes 1% of the weights (400) against the table
//!   of a running director; every run emits exactly 400 `EditDest`s and nothing else.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ldirectord::director::{CheckResult, Director};
use ldirectord::engine::{Op, Table};
use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::Config;

mod support;
use support::{REALS, VIRTUALS, config};

fn specs(config: &Config) -> Vec<CheckSpec> {
    config
        .virtuals
        .iter()
        .flat_map(|vs| vs.reals.iter().map(move |r| CheckSpec::for_real(vs, r)))
        .collect()
}

fn count_ops(actions: &[ldirectord::director::Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, ldirectord::director::Action::Apply(_)))
        .count()
}

/// Start-up on an empty table and one healthy round; returns the director and its op count.
fn start_and_round(config: Config, specs: &[CheckSpec]) -> (Director, usize) {
    let (mut director, actions) = Director::start(config, &Table::default());
    let mut n = count_ops(&actions);
    for spec in specs {
        n += count_ops(&director.on_check(spec, CheckResult::Up("-"), Duration::from_secs(1)));
    }
    (director, n)
}

fn bench(c: &mut Criterion) {
    let base = config(1);
    let changed = config(5);
    let base_specs = specs(&base);

    let mut group = c.benchmark_group("director_core");
    group.sample_size(10);
    group.bench_function("startup_empty_table", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cfg = base.clone();
                let t = Instant::now();
                let (director, ops) = start_and_round(cfg, &base_specs);
                total += t.elapsed();
                assert_eq!(ops, VIRTUALS + VIRTUALS * REALS);
                drop(director);
            }
            total
        })
    });

    let (mut director, _) = start_and_round(base.clone(), &base_specs);
    let mut flip = false;
    group.bench_function("reload_1pct_weights", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                flip = !flip;
                let cfg = if flip { changed.clone() } else { base.clone() };
                let table = director.believed_table();
                let t = Instant::now();
                let actions = director.reload(cfg, &table, Duration::from_secs(2));
                total += t.elapsed();
                let edits = actions
                    .iter()
                    .filter(|a| matches!(a, ldirectord::director::Action::Apply(Op::EditDest(..))))
                    .count();
                assert_eq!(
                    (edits, count_ops(&actions)),
                    (VIRTUALS * REALS / 100, VIRTUALS * REALS / 100)
                );
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
