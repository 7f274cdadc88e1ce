//! The parsers' contract on hostile input, exercised in every test run (the libFuzzer
//! targets in `fuzz/` go deeper): any text gives a config or a diagnostic with a sane
//! span, never a panic.

use std::path::Path;

use ldirectord_parsers::config::resolve::StaticResolver;
use ldirectord_parsers::config::{ParseOptions, parse_with};
use proptest::prelude::*;

/// Lines built from ldirectord.cf's own vocabulary, so the parser gets deep, not just
/// rejected at line 1.
fn line() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "virtual=",
        "virtual6=",
        "real=",
        "real6=",
        "fallback=",
        "request=",
        "receive=",
        "checktype=",
        "service=",
        "scheduler=",
        "netmask=",
        "protocol=",
        "quiescent=",
        "checktimeout=",
        "emailalertstatus=",
        "pgsqlrole=",
        "10.0.0.1:80",
        "[::1]:80",
        "->",
        " gate",
        " masq",
        " 5",
        " l:3",
        " u:9",
        "\"",
        "\"/x\",\"y\"",
        "#",
        "\t",
        "    ",
        " ",
        "yes",
        "no",
        ":",
        "0",
        "65536",
        "(",
        "none,all",
        "[",
        "]",
        "\r",
    ]);
    prop::collection::vec(words, 0..8).prop_map(|w| w.concat())
}

fn check(text: &str) {
    let resolver = StaticResolver::default();
    let opts = ParseOptions {
        resolver: &resolver,
        check_files: false,
        hostname: Some("x".into()),
    };
    match parse_with(text, Path::new("p.cf"), &opts) {
        Ok(p) => {
            for w in &p.warnings {
                assert!(w.span.line <= text.lines().count().max(1));
            }
        }
        Err(e) => {
            assert!(
                e.error.span.line <= text.lines().count().max(1),
                "line {} beyond the text",
                e.error.span.line
            );
            let rendered = e.error.render(Path::new("p.cf"), text);
            assert!(rendered.starts_with("error: "));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn vocabulary_soup_never_panics(lines in prop::collection::vec(line(), 0..12)) {
        check(&lines.join("\n"));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        check(&text);
    }

    #[test]
    fn arbitrary_listings_never_panic(text in "\\PC{0,300}") {
        let _ = ldirectord_parsers::ipvsadm::parse(&text);
    }
}
