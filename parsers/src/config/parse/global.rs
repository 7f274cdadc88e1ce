//! Global directives: the table of directives allowed outside virtual blocks, each with
//! the function that reads its value into [`Globals`](super::super::Globals).

use std::path::{Path, PathBuf};

use crate::config::diag::Diagnostic;
use crate::config::lex;
use std::net::IpAddr;

use crate::config::model::{
    CHECK_MARK_COUNT, CheckSpread, EngineName, Family, LogTarget, Protocol, ScriptUser, SyncDaemon,
    SyncRole,
};
use crate::ipvs::{SYNC_MAXLEN_MASTER, valid_interface_name};

use super::line::At;
use super::sources::node_address;
use super::state::{Parser, Res, SyncOptions};
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
    row("syncdaemon", Plain, sync_daemon).extension(),
    row("syncmaxlen", Plain, |p, at, v| {
        let n = sync_number(at, v, 1, u32::from(SYNC_MAXLEN_MASTER), "syncmaxlen")?;
        p.sync_option(at, |o| o.maxlen = Some(n as u16))
    })
    .extension(),
    row("syncgroup", Plain, |p, at, v| {
        let group: IpAddr = v.trim_end().parse().ok().filter(IpAddr::is_multicast).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid sync multicast group")
                .help("an IPv4 or IPv6 multicast address, e.g. syncgroup=224.0.0.81 (the kernel's default)")
                .extension()
        })?;
        p.sync_option(at, |o| o.group = Some(group))
    })
    .extension(),
    row("syncport", Plain, |p, at, v| {
        let n = sync_number(at, v, 1, 65535, "syncport")?;
        p.sync_option(at, |o| o.port = Some(n as u16))
    })
    .extension(),
    row("syncttl", Plain, |p, at, v| {
        let n = sync_number(at, v, 1, 255, "syncttl")?;
        p.sync_option(at, |o| o.ttl = Some(n as u8))
    })
    .extension(),
    row("fallbackcommandonstop", Plain, |p, at, v| {
        store(&mut p.globals.fallbackcommandonstop, yes_no(at, v))
    })
    .extension()
    .default("no"),
    row("controlgroup", Plain, |p, at, v| {
        let name = v.trim_end();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Diagnostic::error(at.value(v), "invalid control group")
                .help("a group name or number, e.g. controlgroup=lvsadmin")
                .extension());
        }
        p.globals.controlgroup = Some(name.to_owned());
        Ok(())
    })
    .extension(),
    row("metrics", Plain, |p, at, v| {
        p.globals.metrics = Some(metrics_address(v.trim_end()).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid metrics address")
                .help("ADDRESS:PORT to serve /metrics on, e.g. metrics=127.0.0.1:9595 or metrics=[::1]:9595")
                .extension()
        })?);
        Ok(())
    })
    .extension(),
    row("scriptuser", Plain, |p, at, v| {
        p.globals.scriptuser = Some(script_user(p, at, v.trim_end())?);
        Ok(())
    })
    .extension(),
    row("keepcapabilities", Plain, |p, at, v| {
        store(&mut p.globals.keepcapabilities, yes_no(at, v))
    })
    .extension()
    .default("no"),
    row("checkpath", Plain, |p, at, v| {
        store(&mut p.globals.checkpath, check_path(at, v))
    })
    .extension()
    .default("direct"),
    row("checkmarkbase", Plain, |p, at, v| {
        p.globals.checkmarkbase = check_mark_base(v.trim_end()).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid check mark base")
                .help(format!(
                    "the first of {CHECK_MARK_COUNT} firewall marks for checkpath=forwarding, \
                     decimal or 0x hexadecimal, at most {:#x}, e.g. checkmarkbase=0x6c640000",
                    u32::MAX - (CHECK_MARK_COUNT - 1)
                ))
                .extension()
        })?;
        Ok(())
    })
    .extension()
    .default("0x6c640000"),
    row("timeout", Plain, |_, at, _| Err(timeout(at))).deprecated(),
];

/// `scriptuser=USER[:GROUP]`: names or numbers from the system's user database.
fn script_user(p: &Parser<'_, '_>, at: &At<'_, '_>, v: &str) -> Res<ScriptUser> {
    const HELP: &str = "scriptuser=USER[:GROUP], a user (and group) this system knows, e.g. scriptuser=nobody:nogroup";
    let (user, group) = match v.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (v, None),
    };
    if user.is_empty() || v.contains(char::is_whitespace) || group == Some("") {
        return Err(Diagnostic::error(at.value(v), "invalid script user")
            .help(HELP)
            .extension());
    }
    let (uid, primary) = p.opts.resolver.user(user).ok_or_else(|| {
        Diagnostic::error(at.value(user), format!("unknown user {user}"))
            .help(HELP)
            .extension()
    })?;
    let gid = match group {
        None => primary,
        Some(g) => p.opts.resolver.group(g).ok_or_else(|| {
            Diagnostic::error(at.value(g), format!("unknown group {g}"))
                .help(HELP)
                .extension()
        })?,
    };
    Ok(ScriptUser {
        written: v.to_owned(),
        uid,
        gid,
    })
}

/// `syncdaemon=IFACE [SYNCID]`: the master sync daemon on IFACE with id SYNCID (0-255,
/// default 0).
fn sync_daemon(p: &mut Parser<'_, '_>, at: &At<'_, '_>, v: &str) -> Res {
    let mut words = v.split_whitespace();
    let (Some(interface), syncid, None) = (words.next(), words.next(), words.next()) else {
        return Err(Diagnostic::error(at.value(v), "invalid sync daemon")
            .help("syncdaemon=INTERFACE [SYNCID], e.g. syncdaemon=eth1 or syncdaemon=eth1 5")
            .extension());
    };
    if !valid_interface_name(interface) {
        return Err(
            Diagnostic::error(at.value(interface), "invalid sync daemon interface name")
                .help(
                    "a network interface name: 1 to 15 characters without white space, '/' or ':'",
                )
                .extension(),
        );
    }
    let syncid = match syncid {
        None => 0,
        Some(id) => id
            .parse::<u8>()
            .ok()
            .filter(|_| id.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                Diagnostic::error(at.value(id), "sync id out of range")
                    .help("a whole number from 0 to 255 (default 0); masters and backups must use the same")
                    .extension()
            })?,
    };
    p.globals.syncdaemon = Some(SyncDaemon::new(SyncRole::Master, interface, syncid));
    Ok(())
}

/// A whole number in `min..=max` for a sync daemon option.
fn sync_number(at: &At<'_, '_>, v: &str, min: u32, max: u32, name: &str) -> Res<u32> {
    let t = v.trim_end();
    t.parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n) && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            Diagnostic::error(at.value(v), format!("invalid {name} value"))
                .help(format!("a whole number from {min} to {max}"))
                .extension()
        })
}

impl Parser<'_, '_> {
    fn sync_option(&mut self, at: &At<'_, '_>, set: impl FnOnce(&mut SyncOptions)) -> Res {
        set(&mut self.sync_options);
        self.sync_options.first.get_or_insert((at.name, at.whole()));
        Ok(())
    }

    /// After the last line: the options join `syncdaemon=`; options without it are an
    /// error (they would silently do nothing).
    pub(super) fn finish_sync_daemon(&mut self) -> Res {
        let o = std::mem::take(&mut self.sync_options);
        match (&mut self.globals.syncdaemon, o.first) {
            (Some(d), _) => {
                d.maxlen = o.maxlen;
                d.group = o.group;
                d.port = o.port;
                d.ttl = o.ttl;
                Ok(())
            }
            (None, None) => Ok(()),
            (None, Some((name, span))) => Err(Diagnostic::error(
                span,
                format!("{name}= without syncdaemon="),
            )
            .help("add syncdaemon=INTERFACE [SYNCID], or remove the sync daemon options")
            .extension()),
        }
    }
}

/// `metrics=`: an IP address (IPv6 in brackets) and a port other than 0.
fn metrics_address(v: &str) -> Option<std::net::SocketAddr> {
    v.parse::<std::net::SocketAddr>()
        .ok()
        .filter(|a| a.port() != 0)
}

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

/// `checkmarkbase=`: decimal or `0x` hexadecimal, greater than 0, with room for the whole
/// range of helper marks below 2^32.
fn check_mark_base(v: &str) -> Option<u32> {
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => v.parse::<u32>().ok()?,
    };
    (n > 0 && n <= u32::MAX - (CHECK_MARK_COUNT - 1)).then_some(n)
}
