//! The compatibility corpus: every real-world `ldirectord.cf` in `compat/real-configs/`
//! gets the same verdict as stock ldirectord 4.12 — accepted, or rejected at the same line
//! with the same message (`compat/real-configs/expected.tsv`, from `SOURCES.md`).

use std::path::{Path, PathBuf};

use ldirectord_parsers::config::{Origin, ParseOptions, load_with};

mod common;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../compat/real-configs")
}

struct Expected {
    file: String,
    accept: bool,
    line: Option<usize>,
    message: String,
}

fn expected() -> Vec<Expected> {
    let text = std::fs::read_to_string(corpus_dir().join("expected.tsv")).expect("expected.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Expected {
                file: f[0].to_owned(),
                accept: f[1] == "accept",
                line: f.get(2).and_then(|s| s.parse().ok()),
                message: f.get(3).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

#[test]
fn every_corpus_file_gets_stock_ldirectords_verdict() {
    let cases = expected();
    assert_eq!(cases.len(), 28, "the corpus has 28 files");
    let opts = ParseOptions {
        hostname: Some("director".into()),
        ..ParseOptions::default()
    };
    let mut failures = Vec::new();
    for case in &cases {
        let path = corpus_dir().join(&case.file);
        match (load_with(&path, &opts), case.accept) {
            (Ok(parsed), true) => {
                let stock_warnings: Vec<_> = parsed
                    .warnings
                    .iter()
                    .filter(|w| w.origin == Origin::Stock)
                    .collect();
                match case.line {
                    Some(line) => {
                        if !stock_warnings
                            .iter()
                            .any(|w| w.span.line == line && w.message == case.message)
                        {
                            failures.push(format!(
                                "{}: expected warning at {line}: {}, got {:?}",
                                case.file, case.message, stock_warnings
                            ));
                        }
                    }
                    None => {
                        if !stock_warnings.is_empty() {
                            failures.push(format!(
                                "{}: unexpected stock warnings {:?}",
                                case.file, stock_warnings
                            ));
                        }
                    }
                }
            }
            (Ok(_), false) => failures.push(format!(
                "{}: accepted, stock rejects at line {:?}",
                case.file, case.line
            )),
            (Err(e), true) => failures.push(format!(
                "{}: rejected ({}), stock accepts",
                case.file, e.error
            )),
            (Err(e), false) => {
                let first_line = e.error.message.lines().next().unwrap_or("").trim_end();
                if Some(e.error.span.line) != case.line || first_line != case.message {
                    failures.push(format!(
                        "{}: rejected at line {}: {:?}; stock: line {:?}: {:?}",
                        case.file, e.error.span.line, first_line, case.line, case.message
                    ));
                }
            }
        }
    }
    common::assert_none_differ(&failures, cases.len());
}
