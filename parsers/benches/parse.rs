//! Parse a generated configuration of 10,000 virtual services with 4 real servers each
//! (6 lines each, 60,005 lines, numeric addresses): the size where stock ldirectord needs 477 s
//! (shared/reference/anchors.md). Run: `cargo bench -p ldirectord-parsers --bench parse`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ldirectord_parsers::config::{ParseOptions, parse_with};

/// The generated file: global settings, then `virtuals` blocks of `reals` reals each.
pub fn generate(virtuals: usize, reals: usize) -> String {
    let mut s = String::from("checktimeout=3\ncheckinterval=5\nquiescent=yes\nautoreload=no\n\n");
    for v in 0..virtuals {
        let (a, b) = (v / 250, v % 250);
        s.push_str(&format!("virtual=10.{}.{}.1:80\n", a, b));
        for r in 0..reals {
            s.push_str(&format!(
                "\treal=172.16.{}.{}:8080 masq {}\n",
                v % 250,
                10 + r,
                r + 1
            ));
        }
        s.push('\n');
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = generate(10_000, 4);
    let opts = ParseOptions {
        check_files: false,
        ..ParseOptions::default()
    };
    let lines = text.lines().count();
    let parsed =
        parse_with(&text, Path::new("bench.cf"), &opts).expect("the generated config parses");
    assert_eq!(parsed.config.virtuals.len(), 10_000);
    let mut group = c.benchmark_group("parse");
    group.sample_size(20);
    group.bench_function(format!("10000 virtuals x 4 reals ({lines} lines)"), |b| {
        b.iter(|| parse_with(black_box(&text), Path::new("bench.cf"), &opts).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
