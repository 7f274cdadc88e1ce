//! Shared by the benchmarks: the 10,000 virtuals x 4 reals configuration.

use std::path::Path;

use ldirectord_parsers::config::{Config, ParseOptions, parse_with};

pub const VIRTUALS: usize = 10_000;
pub const REALS: usize = 4;

/// Every 100th real (1%) gets `weight` instead of 1.
pub fn config(weight: u32) -> Config {
    let mut text = String::with_capacity(VIRTUALS * 120);
    for v in 0..VIRTUALS {
        text.push_str(&format!(
            "virtual=10.{}.{}.1:80\n\tchecktype=connect\n",
            v / 250,
            v % 250
        ));
        for r in 0..REALS {
            let w = if (v * REALS + r).is_multiple_of(100) {
                weight
            } else {
                1
            };
            text.push_str(&format!(
                "\treal=172.{}.{}.{}:80 masq {w}\n",
                v / 250,
                v % 250,
                r + 1
            ));
        }
    }
    parse(&text)
}

/// A benchmark's configuration text, parsed (files not checked, host name `bench`).
pub fn parse(text: &str) -> Config {
    let opts = ParseOptions {
        check_files: false,
        hostname: Some("bench".into()),
        ..ParseOptions::default()
    };
    parse_with(text, Path::new("bench.cf"), &opts)
        .expect("bench config parses")
        .config
}
