//! Fuzz the ldirectord.cf parser: any bytes must give a config or a diagnostic, never a
//! panic, and an accepted config must render to text that parses to the same number of
//! virtual services. Run: `cargo fuzz run parse_config` (see fuzz/README.md).
#![no_main]

use std::path::Path;

use ldirectord_parsers::config::render::render;
use ldirectord_parsers::config::resolve::StaticResolver;
use ldirectord_parsers::config::{ParseOptions, parse_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // No DNS and no file system from the fuzzer: numeric addresses and ports only.
    let resolver = StaticResolver::default();
    let opts = ParseOptions {
        resolver: &resolver,
        check_files: false,
        hostname: Some("fuzz".into()),
    };
    match parse_with(&text, Path::new("fuzz.cf"), &opts) {
        Ok(parsed) => {
            let again = parse_with(&render(&parsed.config), Path::new("fuzz.cf"), &opts);
            if let Ok(again) = again {
                assert_eq!(again.config.virtuals.len(), parsed.config.virtuals.len());
            }
        }
        Err(e) => {
            let _ = e.error.render(Path::new("fuzz.cf"), &text);
            let _ = e.error.stock_format(1, Path::new("fuzz.cf"));
        }
    }
});
