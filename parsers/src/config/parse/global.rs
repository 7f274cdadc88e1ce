//! Global directives: the table of directives allowed outside virtual blocks, each with
//! the function that reads its value into [`Globals`](super::super::Globals).

use std::path::{Path, PathBuf};

use crate::config::diag::Diagnostic;
use crate::config::lex;
use crate::config::model::{CheckSpread, EngineName, Family, LogTarget, Protocol};

use super::line::At;
use super::sources::node_address;
use super::state::{Parser, Res};
use super::table::Value::{Plain, Quoted, WholeLine};
use super::table::{Row, Scope, Value};
use super::value::*;

/// What a global directive does with its value.
pub(super) type GlobalFn = fn(&mut Parser<'_, '_>, &At<'_, '_>, &str) -> Res;

const fn row(name: &'static str, value: Value, f: GlobalFn) -> Row<GlobalFn> {
    Row::new(Scope::Global, name, value, Some(f))
}

const SECONDS: &str = "a whole number of seconds greater than 0";

/// The global directives, in the order the help lists them (stock's first, then the
/// extensions).
pub(super) static GLOBAL: &[Row<GlobalFn>] = &[
    row("checktimeout", Plain, |p, at, v| {
        p.globals.checktimeout = Some(positive_timeout(v).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid check timeout value").help(SECONDS)
        })?);
        Ok(())
    })
    .default("5"),
    row("connecttimeout", Plain, |_, at, _| Err(connecttimeout(at))).deprecated(),
    row("negotiatetimeout", Plain, |p, at, v| {
        p.globals.negotiatetimeout = Some(positive_timeout(v).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid negotiate timeout value").help(SECONDS)
        })?);
        Ok(())
    })
    .default("30"),
    row("checkinterval", Plain, |p, at, v| {
        p.globals.checkinterval = nonzero(v).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid check interval value").help(SECONDS)
        })?;
        Ok(())
    })
    .default("10"),
    row("checkcount", Plain, |p, at, v| {
        p.globals.checkcount = nonzero(v)
            .ok_or_else(|| Diagnostic::error(at.value(v), "invalid check count value"))?;
        p.warnings.push(checkcount_warning(at.whole()));
        Ok(())
    })
    .default("1"),
    row("failurecount", Plain, |p, at, v| {
        p.globals.failurecount = nonzero(v).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid failure count value")
                .help("a whole number greater than 0")
        })?;
        Ok(())
    })
    .default("1"),
    row("fallback", Plain, |p, at, v| {
        p.global_fallback(at, v, Family::Inet)
    }),
    row("fallback6", Plain, |p, at, v| {
        p.global_fallback(at, v, Family::Inet6)
    }),
    row("fallbackcommand", Plain, |p, at, v| {
        store(
            &mut p.globals.fallbackcommand,
            given(at, v, "invalid fallback command"),
        )
    }),
    row("autoreload", Plain, |p, at, v| {
        store(&mut p.globals.autoreload, yes_no(at, v))
    })
    .default("no"),
    row("callback", Quoted, |p, _, v| {
        p.globals.callback = Some(v.to_owned());
        Ok(())
    }),
    row("logfile", Quoted, |p, _, v| {
        p.globals.logfile = if v.starts_with('/') {
            LogTarget::File(PathBuf::from(v))
        } else {
            LogTarget::Syslog(v.to_owned())
        };
        Ok(())
    })
    .default("/var/log/ldirectord.log"),
    row("execute", Plain, |p, _, v| {
        if !p.globals.execute.iter().any(|e| e == v) {
            p.globals.execute.push(v.to_owned());
        }
        Ok(())
    }),
    row("supervised", WholeLine, supervised).default("no"),
    row("fork", Plain, |p, at, v| {
        store(&mut p.globals.fork, yes_no(at, v))
    })
    .default("no"),
    row("quiescent", Plain, |p, at, v| {
        store(&mut p.globals.quiescent, yes_no(at, v))
    })
    .default("no"),
    row("readdquiescent", Plain, |p, at, v| {
        store(&mut p.globals.readdquiescent, yes_no(at, v))
    })
    .default("no"),
    row("emailalert", Plain, |p, at, v| {
        store(&mut p.globals.alerts.emailalert, email(at, v))
    }),
    row("emailalertfreq", Plain, |p, at, v| {
        store(&mut p.globals.alerts.emailalertfreq, alert_freq(at, v))
    })
    .default("0"),
    row("emailalertstatus", Plain, |p, at, v| {
        store(&mut p.globals.alerts.emailalertstatus, alert_status(at, v))
    })
    .default("all"),
    row("emailalertfrom", Plain, |p, at, v| {
        store(
            &mut p.globals.emailalertfrom,
            given(at, v, "no email from address specified"),
        )
    }),
    row("cleanstop", Plain, |p, at, v| {
        store(&mut p.globals.cleanstop, yes_no(at, v))
    })
    .default("yes"),
    row("smtp", Plain, |p, at, v| {
        store(&mut p.globals.alerts.smtp, smtp(at, v))
    }),
    row("maintenancedir", Plain, |p, at, v| {
        given(at, v, "maintenance directory not specified")?;
        p.globals.maintenancedir = Some(PathBuf::from(v));
        if p.opts.check_files && !Path::new(v).is_dir() {
            p.warnings.push(Diagnostic::warning(
                at.value(v),
                "maintenance directory does not exist",
            ));
        }
        Ok(())
    }),
    Row::new(Scope::Global, "virtual", Plain, None),
    Row::new(Scope::Global, "virtual6", Plain, None),
    row("risecount", Plain, |p, at, v| {
        p.globals.risecount = nonzero(v).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid rise count")
                .help("a whole number greater than 0 (default 1)")
                .extension()
        })?;
        Ok(())
    })
    .extension()
    .default("1"),
    row("checkjitter", Plain, |p, at, v| {
        p.globals.checkjitter = lex::first_digits(v)
            .map(lex::number)
            .filter(|&n| n <= 100)
            .ok_or_else(|| {
                Diagnostic::error(at.value(v), "invalid check jitter")
                    .help("a percentage of the check interval from 0 to 100, e.g. checkjitter=20")
                    .extension()
            })? as u32;
        Ok(())
    })
    .extension()
    .default("0"),
    row("checkspread", Plain, |p, at, v| {
        let v = v.trim_end();
        p.globals.checkspread = if v.eq_ignore_ascii_case("lockstep") {
            CheckSpread::Lockstep
        } else {
            let percent = lex::first_digits(v)
                .map(lex::number)
                .filter(|&n| n <= 100)
                .ok_or_else(|| {
                    Diagnostic::error(at.value(v), "invalid check spread")
                        .help("a percentage of the check interval from 0 to 100, e.g. checkspread=20, or lockstep")
                        .extension()
                })?;
            CheckSpread::Percent(percent as u32)
        };
        Ok(())
    })
    .extension()
    .default("0"),
    row("nodeaddress", Plain, |p, at, v| {
        let (node, addr) = node_address(v.trim_end(), at.value(v))?;
        p.globals.node_addresses.insert(node, addr);
        Ok(())
    })
    .extension(),
    row("engine", Plain, |p, at, v| {
        p.globals.engine = EngineName::from_word(v.trim_end()).ok_or_else(|| {
            Diagnostic::error(at.value(v), "unknown engine")
                .help("netlink (the default), ipvsadm or userspace")
                .extension()
        })?;
        Ok(())
    })
    .extension()
    .default("netlink"),
    row("timeout", Plain, |_, at, _| Err(timeout(at))).deprecated(),
];

/// `timeout=`: stock refuses it.
fn timeout(at: &At<'_, '_>) -> Diagnostic {
    Diagnostic::error(
        at.whole(),
        "timeout directive deprecated in favour of checktimeout and negotiatetimeout",
    )
    .help("use checktimeout= (connect, ping, external checks) and negotiatetimeout= (negotiate checks)")
}

/// `supervised=yes|no`, or a bare `supervised` (stock warns and takes it as yes).
fn supervised(p: &mut Parser<'_, '_>, at: &At<'_, '_>, t: &str) -> Res {
    match lex::directive(t, "supervised") {
        Some(v) if lex::yes_no(v).is_some() => p.globals.supervised = v == "yes",
        _ if t
            .strip_prefix("supervised")
            .is_some_and(|rest| rest.chars().all(lex::is_space)) =>
        {
            p.globals.supervised = true;
            p.warnings.push(
                Diagnostic::warning(
                    at.whole(),
                    "please update your config not to use a bare supervised directive",
                )
                .help("write supervised=yes"),
            );
        }
        _ => {
            return Err(
                Diagnostic::error(at.whole(), "supervised must be 'yes' or 'no'")
                    .help(yes_no_help(t)),
            );
        }
    }
    Ok(())
}

impl Parser<'_, '_> {
    /// A global `fallback=`/`fallback6=`, resolved at once for TCP and for UDP (a service
    /// name may differ per protocol).
    fn global_fallback(&mut self, at: &At<'_, '_>, v: &str, family: Family) -> Res {
        let todo = parse_fallback(v, None, at.value(v))?;
        let tcp = self.resolve_fallback(&todo, Protocol::Tcp, family)?;
        let udp = self.resolve_fallback(&todo, Protocol::Udp, family)?;
        if family == Family::Inet6 {
            self.globals.fallback6 = Some(tcp);
            self.fallback6_udp = Some(udp);
        } else {
            self.globals.fallback = Some(tcp);
            self.fallback_udp = Some(udp);
        }
        Ok(())
    }
}
