//! The man pages document everything there is: every directive the parser knows is in
//! `ldirectord.cf(5)`, and every option and action of the command line in `ldirectord(8)`
//! (sources `compat/man/*.scd`, made into the package's pages by `compat/deb/build`).
//! Adding a directive or an option without documenting it fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn page(name: &str) -> String {
    std::fs::read_to_string(repo(&format!("compat/man/{name}.scd"))).unwrap()
}

/// Every directive name the configuration parser accepts (or rejects by name, such as the
/// deprecated `timeout`): the parser's own directive table, global and block rows alike.
fn parser_directives() -> BTreeSet<String> {
    let names: BTreeSet<String> = ldirectord_parsers::config::directives()
        .map(|d| d.name().to_owned())
        .collect();
    assert!(names.len() > 50, "only {} directives", names.len());
    names
}

/// Every option of the command line as its usage text (`ldirectord --help`) names them,
/// plus the actions.
fn cli_words() -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for token in ldirectord::cli::USAGE.split(|c: char| c.is_whitespace() || "[]|,".contains(c)) {
        let token = token
            .split('=')
            .next()
            .unwrap()
            .trim_end_matches([':', '.']);
        let long = token.starts_with("--") && token.len() > 2;
        let short = token.len() == 2 && token.starts_with('-');
        if long || short {
            words.insert(token.to_owned());
        }
    }
    for action in [
        "start",
        "stop",
        "restart",
        "try-restart",
        "reload",
        "force-reload",
        "status",
        "realserver",
        "monitor",
        "sync-backup",
    ] {
        words.insert(action.to_owned());
    }
    assert!(
        words.contains("--engine") && words.contains("-d"),
        "{words:?}"
    );
    words
}

#[test]
fn ldirectord_cf_5_documents_every_directive() {
    let text = page("ldirectord.cf.5");
    let directives = parser_directives();
    println!("{} directives: {directives:?}", directives.len());
    let missing: Vec<String> = directives
        .into_iter()
        .filter(|d| !text.contains(&format!("*{d}=")) && !text.contains(&format!("*{d}*")))
        .collect();
    assert!(
        missing.is_empty(),
        "compat/man/ldirectord.cf.5.scd does not document: {missing:?}"
    );
}

#[test]
fn ldirectord_8_documents_every_option_and_action() {
    let text = page("ldirectord.8");
    let missing: Vec<String> = cli_words()
        .into_iter()
        .filter(|w| !text.contains(&format!("*{w}*")))
        .collect();
    assert!(
        missing.is_empty(),
        "compat/man/ldirectord.8.scd does not document: {missing:?}"
    );
}

#[test]
fn the_pages_name_their_sections() {
    for (name, head) in [
        ("ldirectord.8", "LDIRECTORD(8)"),
        ("ldirectord.cf.5", "LDIRECTORD.CF(5)"),
    ] {
        let text = page(name);
        assert!(text.starts_with(head), "{name}");
        for section in ["# NAME", "# DESCRIPTION", "# SEE ALSO"] {
            assert!(text.contains(section), "{name} has no {section}");
        }
    }
    let eight = page("ldirectord.8");
    for section in ["# EXIT STATUS", "# SIGNALS", "# FILES"] {
        assert!(eight.contains(section), "ldirectord.8 has no {section}");
    }
}
