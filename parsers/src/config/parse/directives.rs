//! The directive table at work: dispatching a line to its row in
//! [`GLOBAL`](super::global::GLOBAL) or [`VIRTUAL`](super::block::VIRTUAL), the
//! unknown-directive errors (with the directives of the scope and hints for one in the
//! wrong place, all derived from the tables), and [`directives`], the public listing for
//! documentation.
//!
//! Adding a directive is one row in the table of its scope (a directive allowed in both
//! scopes has a row in each, since its checks, messages and defaults differ).

use crate::config::diag::Diagnostic;
use crate::config::lex;

use super::block::{Block, VIRTUAL};
use super::global::GLOBAL;
use super::line::{At, BlockLine, Line};
use super::state::{Parser, Res};
use super::table::{Directive, Value, find, has, listed};
use super::value::directive_name;

/// Every directive: the global ones, then those of virtual blocks, each in the order the
/// help lists them (stock's, then the extensions).
pub fn directives() -> impl Iterator<Item = &'static Directive> {
    GLOBAL
        .iter()
        .map(|r| &r.directive)
        .chain(VIRTUAL.iter().map(|r| &r.directive))
}

impl Parser<'_, '_> {
    /// A global line (not `virtual=`, which the line loop reads).
    pub(super) fn global(&mut self, line: Line<'_>) -> Res {
        match find(GLOBAL, line.text) {
            Some((name, f, v)) => f(self, &At::global(name, line), v),
            None => Err(unknown_global(line)),
        }
    }

    /// A line of a virtual block.
    pub(super) fn block_line(&mut self, b: &mut Block, bl: &BlockLine<'_>) -> Res {
        match find(VIRTUAL, bl.rcmd()) {
            Some((name, f, v)) => f(self, b, &At::block(name, bl), v),
            None => Err(unknown_in_block(bl)),
        }
    }
}

/// Stock's `Unknown command LINE`, with what would be valid here.
fn unknown_global(line: Line<'_>) -> Diagnostic {
    let t = line.text;
    let indent = t.len() - t.trim_start_matches(lex::is_space).len();
    let word_len = t[indent..]
        .find(|c: char| c == '=' || lex::is_space(c))
        .unwrap_or(t.len() - indent);
    let name = &t[indent..indent + word_len];
    let d = Diagnostic::error(
        line.span(indent, word_len.max(1)),
        format!("Unknown command {} ", line.raw()),
    );
    if indent > 0 {
        d.label("indented line outside a virtual block").help(
            "a blank line (or a line with fewer than 4 spaces of indentation) ends a virtual block; \
             remove the blank line, or un-indent global directives",
        )
    } else if is_block_directive(name) {
        d.label(format!("`{name}` belongs inside a virtual block"))
            .help("indent it with a TAB or at least 4 spaces under a virtual= line")
    } else {
        d.label("not a global directive")
            .help(format!("global directives are: {}", listed(GLOBAL)))
    }
}

/// Stock's `Unknown command "LINE"` inside a block, with what would be valid here.
fn unknown_in_block(bl: &BlockLine<'_>) -> Diagnostic {
    let r = bl.rcmd();
    let name = directive_name(r);
    let d = Diagnostic::error(
        bl.span_of(&r[..name.len().max(1).min(r.len())]),
        format!("Unknown command \"{}\"", bl.line.raw()),
    );
    if let Some(hint) = quote_hint(r) {
        d.label("unterminated or missing quotes").help(hint)
    } else if is_global_only(name) {
        d.label(format!("`{name}` is a global directive"))
            .help("move it above the first virtual= line, without indentation")
    } else if r.trim().is_empty() {
        d.label("whitespace-only line inside a virtual block")
            .help("delete the trailing whitespace")
    } else {
        d.label("not a virtual-block directive")
            .help(format!("virtual-block directives are: {}", listed(VIRTUAL)))
    }
}

/// A value that must be quoted, given without (or cut by a `#`).
fn quote_hint(r: &str) -> Option<&'static str> {
    let name = directive_name(r);
    let quoted = VIRTUAL
        .iter()
        .any(|row| row.name() == name && row.value == Value::Quoted);
    (quoted && lex::directive(r, name).is_some()).then_some(
        "this value must be in double quotes, and a # inside quotes starts a comment in stock ldirectord (it truncates the value)",
    )
}

/// Listed for virtual blocks and not for the global scope.
fn is_block_directive(name: &str) -> bool {
    has(VIRTUAL, name, true) && !has(GLOBAL, name, true)
}

/// A global directive (deprecated ones included, `virtual=` not) unknown in blocks.
fn is_global_only(name: &str) -> bool {
    GLOBAL.iter().any(|r| r.name() == name && r.apply.is_some()) && !has(VIRTUAL, name, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::AlertStatus;
    use crate::config::parse::table::Scope;

    #[test]
    fn the_help_lists_are_the_ones_users_know() {
        assert_eq!(
            listed(GLOBAL),
            "checktimeout, negotiatetimeout, checkinterval, checkcount, failurecount, fallback, fallback6, fallbackcommand, autoreload, callback, logfile, execute, supervised, fork, quiescent, readdquiescent, emailalert, emailalertfreq, emailalertstatus, emailalertfrom, cleanstop, smtp, maintenancedir, virtual, virtual6 (extensions: risecount, checkjitter, checkspread, nodeaddress, engine, syncdaemon, syncmaxlen, syncgroup, syncport, syncttl, fallbackcommandonstop, controlgroup, metrics, scriptuser, keepcapabilities, checkpath, checkmarkbase)"
        );
        assert_eq!(
            listed(VIRTUAL),
            "real, real6, request, receive, checktype, checkcommand, checktimeout, negotiatetimeout, checkcount, failurecount, checkinterval, checkport, login, passwd, database, secret, load, scheduler, persistent, netmask, schedflags, protocol, ops, service, httpmethod, virtualhost, fallback, fallback6, fallbackcommand, quiescent, emailalert, emailalertfreq, emailalertstatus, monitorfile, cleanstop, smtp, servicename, comment (extensions: risecount, tlsverify, tlssni, pgsqlrole, pgsqlmaxlag, pgsqlsyncstate, realsource, realfilter, realfallback, realweights, realdefault, checkpath)"
        );
    }

    #[test]
    fn wrong_scope_hints() {
        let global_only: Vec<_> = GLOBAL
            .iter()
            .map(|r| r.name())
            .filter(|n| is_global_only(n))
            .collect();
        assert_eq!(
            global_only,
            [
                "autoreload",
                "callback",
                "logfile",
                "execute",
                "supervised",
                "fork",
                "readdquiescent",
                "emailalertfrom",
                "maintenancedir",
                "checkjitter",
                "checkspread",
                "nodeaddress",
                "engine",
                "syncdaemon",
                "syncmaxlen",
                "syncgroup",
                "syncport",
                "syncttl",
                "fallbackcommandonstop",
                "controlgroup",
                "metrics",
                "scriptuser",
                "keepcapabilities",
                "checkmarkbase",
                "timeout"
            ]
        );
        let quoted: Vec<_> = VIRTUAL
            .iter()
            .filter(|r| r.value == Value::Quoted)
            .map(|r| r.name())
            .collect();
        assert_eq!(
            quoted,
            [
                "request", "receive", "login", "passwd", "database", "secret", "load"
            ]
        );
        assert!(is_block_directive("real") && !is_block_directive("checktimeout"));
    }

    #[test]
    fn one_row_per_name_and_scope() {
        for (i, d) in directives().enumerate() {
            assert!(
                directives()
                    .skip(i + 1)
                    .all(|e| (e.name(), e.scope()) != (d.name(), d.scope())),
                "{} twice",
                d.name()
            );
        }
    }

    /// The documented defaults are what the parser gives a directive left out.
    #[test]
    fn documented_defaults_are_the_parsers() {
        use crate::config::model::{HttpMethod, LogTarget};
        use crate::config::resolve::StaticResolver;
        use crate::config::{ParseOptions, parse_with};
        let opts = ParseOptions {
            resolver: &StaticResolver::default(),
            check_files: false,
            hostname: Some("director".into()),
        };
        let text = "virtual=192.0.2.1:80\n\trealsource=partition\n";
        let c = parse_with(text, std::path::Path::new("t.cf"), &opts)
            .unwrap()
            .config;
        let (g, v) = (&c.globals, &c.virtuals[0]);
        let yn = |b: bool| if b { "yes" } else { "no" }.to_owned();
        for d in directives() {
            let Some(documented) = d.default_value() else {
                continue;
            };
            let actual = match (d.scope(), d.name()) {
                (Scope::Global, "checktimeout") => v.check.checktimeout.as_secs().to_string(),
                (Scope::Global, "negotiatetimeout") => {
                    v.check.negotiatetimeout.as_secs().to_string()
                }
                (Scope::Global, "checkinterval") => g.checkinterval.to_string(),
                (Scope::Global, "checkcount") => g.checkcount.to_string(),
                (Scope::Global, "failurecount") => g.failurecount.to_string(),
                (Scope::Global, "autoreload") => yn(g.autoreload),
                (Scope::Global, "logfile") => match &g.logfile {
                    LogTarget::File(p) => p.display().to_string(),
                    LogTarget::Syslog(f) => f.clone(),
                },
                (Scope::Global, "supervised") => yn(g.supervised),
                (Scope::Global, "fork") => yn(g.fork),
                (Scope::Global, "quiescent") => yn(g.quiescent),
                (Scope::Global, "readdquiescent") => yn(g.readdquiescent),
                (Scope::Global, "emailalertfreq") => g.alerts.emailalertfreq.to_string(),
                (Scope::Global, "emailalertstatus") => {
                    assert_eq!(g.alerts.emailalertstatus, AlertStatus::ALL);
                    "all".to_owned()
                }
                (Scope::Global, "cleanstop") => yn(g.cleanstop),
                (Scope::Global, "risecount") => g.risecount.to_string(),
                (Scope::Global, "checkjitter") => g.checkjitter.to_string(),
                (Scope::Global, "checkspread") => g.checkspread.to_string(),
                (Scope::Global, "engine") => g.engine.as_str().to_owned(),
                (Scope::Global, "fallbackcommandonstop") => yn(g.fallbackcommandonstop),
                (Scope::Global, "keepcapabilities") => yn(g.keepcapabilities),
                (Scope::Global, "checkpath") => v.checkpath.as_str().to_owned(),
                (Scope::Global, "checkmarkbase") => format!("{:#x}", g.checkmarkbase),
                (Scope::Virtual, "request") => v.check.request.clone(),
                (Scope::Virtual, "checktype") => v.check.checktype.name().to_owned(),
                (Scope::Virtual, "checkcommand") => v.check.checkcommand.clone(),
                (Scope::Virtual, "scheduler") => v.scheduler.clone(),
                (Scope::Virtual, "protocol") => v.protocol.as_str().to_owned(),
                (Scope::Virtual, "ops") => yn(v.ops),
                (Scope::Virtual, "httpmethod") => {
                    assert_eq!(v.check.httpmethod, HttpMethod::Get);
                    "GET".to_owned()
                }
                (Scope::Virtual, "tlsverify") => yn(v.check.tls_verify),
                (Scope::Virtual, "tlssni") => yn(v.check.tls_sni),
                (Scope::Virtual, "realdefault") => {
                    let s = v.real_sources.as_ref().unwrap();
                    format!("{} {}", s.forward.as_str(), s.default_weight)
                }
                (scope, name) => panic!("{name} ({scope:?}): check its documented default here"),
            };
            assert_eq!(documented, actual, "{} ({:?})", d.name(), d.scope());
        }
    }
}
