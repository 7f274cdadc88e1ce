//! Virtual blocks: the raw settings of one `virtual=`/`virtual6=` block as stock holds
//! them while reading it, and the table of directives allowed inside a block, each with
//! the function that reads its value into the block; [`finish`] resolves a complete
//! block into a [`VirtualService`](crate::config::VirtualService).

mod finish;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::diag::Diagnostic;
use crate::config::lex::{self, VirtualForm};
use crate::config::model::*;

use super::line::{At, Line};
use super::sources::{SourcesTodo, host_weights, real_candidates, real_default, real_filter};
use super::state::{Parser, Res};
use super::table::Value::{Plain, Quoted, QuotedOrAll, Trimmed};
use super::table::{Row, Scope, Value};
use super::value::*;

/// A `real=` line kept until the block is complete (stock resolves reals afterwards,
/// when the protocol is known).
pub(super) struct RealTodo {
    value: String,
    value_span: Span,
    span: Span,
}

/// The raw settings of one virtual block, in stock's representation, before resolution.
pub(super) struct Block {
    span: Span,
    family: Family,
    /// (host, port text) for address virtuals.
    host_port: Option<(String, String)>,
    fwmark: Option<String>,
    protocol: Protocol,
    service: Option<Service>,
    /// Span of the `virtual=` value (for resolution errors).
    value_span: Span,
    checktype: CheckType,
    checkcommand: String,
    request: String,
    receive: Option<Receive>,
    login: String,
    passwd: String,
    database: String,
    secret: String,
    checktimeout: Option<u32>,
    negotiatetimeout: Option<u32>,
    checkcount: Option<u32>,
    failurecount: Option<u32>,
    risecount: Option<u32>,
    checkpath: Option<CheckPath>,
    checkinterval: Option<u32>,
    checkport: Option<u16>,
    httpmethod: HttpMethod,
    virtualhost: Option<String>,
    scheduler: String,
    persistent: Option<u32>,
    netmask: Option<NetmaskSetting>,
    schedflags: Option<String>,
    ops: bool,
    fallback: Option<FallbackTodo>,
    fallbackcommand: Option<String>,
    quiescent: Option<bool>,
    cleanstop: Option<bool>,
    emailalert: Option<String>,
    emailalertfreq: Option<u32>,
    emailalertstatus: Option<AlertStatus>,
    smtp: Option<String>,
    monitorfile: Option<PathBuf>,
    servicename: Option<String>,
    comment: Option<String>,
    tls_verify: Option<bool>,
    tls_sni: Option<bool>,
    pg_role: Option<(PgRole, Span)>,
    pg_max_lag: Option<(Duration, Span)>,
    pg_sync: Option<(BTreeSet<SyncState>, Span)>,
    reals: Vec<RealTodo>,
    sources: SourcesTodo,
}

impl Parser<'_, '_> {
    pub(super) fn block_head(
        &mut self,
        head: Line<'_>,
        family: Family,
        value: &str,
        value_span: Span,
    ) -> Res<Block> {
        let inet6 = family == Family::Inet6;
        let (host_port, fwmark, protocol) = match lex::virtual_form(value, inet6) {
            Some(VirtualForm::HostPort(h, p)) => {
                let udp = p == "53" || p == "domain";
                (
                    Some((h.to_owned(), p.to_owned())),
                    None,
                    if udp { Protocol::Udp } else { Protocol::Tcp },
                )
            }
            Some(VirtualForm::Fwmark(m)) => {
                if !inet6 && value.starts_with(m) && value[m.len()..].starts_with('.') {
                    self.warnings.push(
                        Diagnostic::warning(value_span, format!("virtual={} is read as firewall mark {m}", value.trim_end()))
                            .extension()
                            .label("no port given")
                            .help("stock ldirectord reads an address without a port as a firewall mark; write ADDRESS:PORT"),
                    );
                }
                (None, Some(m.to_owned()), Protocol::Fwm)
            }
            Some(VirtualForm::Bracketed(a, p)) => {
                if !inet6 {
                    return Err(Diagnostic::error(
                        value_span,
                        "cannot specify an IPv6 address here. please use \"virtual6\" instead.",
                    ));
                }
                if a.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(Diagnostic::error(
                        value_span,
                        "invalid ipv6 address for virtual server",
                    ));
                }
                let udp = p == "53" || p == "domain";
                (
                    Some((format!("[{a}]"), p.to_owned())),
                    None,
                    if udp { Protocol::Udp } else { Protocol::Tcp },
                )
            }
            None => {
                return Err(Diagnostic::error(value_span, "invalid address for virtual server").help(
                    "write ADDRESS:PORT (virtual=192.0.2.10:80), HOST:SERVICE, a firewall mark (virtual=5), \
                     or [IPv6]:PORT with virtual6=",
                ));
            }
        };
        let span = head.whole();
        Ok(Block {
            span,
            family,
            service: if fwmark.is_some() {
                Some(Service::None)
            } else {
                None
            },
            host_port,
            fwmark,
            protocol,
            value_span,
            checktype: CheckType::Negotiate,
            checkcommand: "/bin/true".to_owned(),
            request: "/".to_owned(),
            receive: None,
            login: String::new(),
            passwd: String::new(),
            database: String::new(),
            secret: String::new(),
            checktimeout: None,
            negotiatetimeout: None,
            checkcount: None,
            failurecount: None,
            risecount: None,
            checkpath: None,
            checkinterval: None,
            checkport: None,
            httpmethod: HttpMethod::Get,
            virtualhost: None,
            scheduler: "wrr".to_owned(),
            persistent: None,
            netmask: None,
            schedflags: None,
            ops: false,
            fallback: None,
            fallbackcommand: None,
            quiescent: None,
            cleanstop: None,
            emailalert: None,
            emailalertfreq: None,
            emailalertstatus: None,
            smtp: None,
            monitorfile: None,
            servicename: None,
            comment: None,
            tls_verify: None,
            tls_sni: None,
            pg_role: None,
            pg_max_lag: None,
            pg_sync: None,
            reals: Vec::new(),
            sources: SourcesTodo::default(),
        })
    }
}

/// What a virtual-block directive does with its value.
pub(super) type VirtualFn = fn(&mut Parser<'_, '_>, &mut Block, &At<'_, '_>, &str) -> Res;

const fn row(name: &'static str, value: Value, f: VirtualFn) -> Row<VirtualFn> {
    Row::new(Scope::Virtual, name, value, Some(f))
}

const SERVICE_LIST: &str = "service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission";
const CHECKTYPE_LIST: &str = "checktype must be \"connect\", \"negotiate\", \"on\", \"off\", \"ping\", \"external\", \"external-perl\" or a positive number";

/// The directives of a virtual block, in the order the help lists them (stock's first,
/// then the extensions).
pub(super) static VIRTUAL: &[Row<VirtualFn>] = &[
    row("real", Plain, real),
    row("real6", Plain, real),
    row("request", Quoted, |_, b, at, v| {
        if v.is_empty() {
            return Err(Diagnostic::error(
                at.value(v),
                "no request string specified",
            ));
        }
        b.request = if v.starts_with('/') {
            v.to_owned()
        } else {
            format!("/{v}")
        };
        Ok(())
    })
    .default("/"),
    row("receive", Quoted, |p, b, at, v| {
        if v.is_empty() {
            return Err(Diagnostic::error(at.value(v), "invalid receive string"));
        }
        b.receive = Some(p.receive(v, at.value(v))?);
        Ok(())
    }),
    row("checktype", Plain, |_, b, at, v| {
        if let Some(d) = lex::first_digits(v) {
            b.checktype = CheckType::Combined(lex::number(d).min(u64::from(u32::MAX)) as u32);
            return Ok(());
        }
        b.checktype = match lex::first_word_dash(v) {
            Some("connect") => CheckType::Connect,
            Some("negotiate") => CheckType::Negotiate,
            Some("ping") => CheckType::Ping,
            Some("off") => CheckType::Off,
            Some("on") => CheckType::On,
            Some("external") => CheckType::External,
            Some("external-perl") => CheckType::ExternalPerl,
            _ => {
                return Err(
                    Diagnostic::error(at.value(v), CHECKTYPE_LIST).label("not a check type")
                );
            }
        };
        Ok(())
    })
    .default("negotiate"),
    row("checkcommand", QuotedOrAll, |_, b, at, v| {
        store(&mut b.checkcommand, given(at, v, "invalid check command"))
    })
    .default("/bin/true"),
    row("checktimeout", Plain, |_, b, at, v| {
        b.checktimeout = Some(count(at, v, "invalid check timeout")?);
        Ok(())
    }),
    row("connecttimeout", Plain, |_, _, at, _| {
        Err(connecttimeout(at))
    })
    .deprecated(),
    row("negotiatetimeout", Plain, |_, b, at, v| {
        b.negotiatetimeout = Some(count(at, v, "invalid negotiate timeout")?);
        Ok(())
    }),
    row("checkcount", Plain, |p, b, at, v| {
        b.checkcount = Some(count(at, v, "invalid check count")?);
        p.warnings.push(checkcount_warning(at.whole()));
        Ok(())
    }),
    row("failurecount", Plain, |_, b, at, v| {
        b.failurecount = Some(count(at, v, "invalid failure count")?);
        Ok(())
    }),
    row("checkinterval", Plain, |_, b, at, v| {
        b.checkinterval = Some(count(at, v, "invalid checkinterval")?);
        Ok(())
    }),
    row("checkport", Plain, |_, b, at, v| {
        let d =
            lex::first_digits(v).ok_or_else(|| Diagnostic::error(at.value(v), "invalid port"))?;
        let n = lex::number(d);
        if n == 0 || n >= 65536 {
            return Err(
                Diagnostic::error(at.value(v), "checkport must be in range 1..65536")
                    .help("a port from 1 to 65535"),
            );
        }
        b.checkport = Some(n as u16);
        Ok(())
    }),
    row("login", Quoted, |_, b, at, v| {
        store(&mut b.login, non_empty(at, v, "invalid login string"))
    }),
    row("passwd", Quoted, |_, b, at, v| {
        store(&mut b.passwd, non_empty(at, v, "invalid password"))
    }),
    row("database", Quoted, |_, b, at, v| {
        store(&mut b.database, non_empty(at, v, "invalid database"))
    }),
    row("secret", Quoted, |_, b, at, v| {
        store(&mut b.secret, non_empty(at, v, "invalid secret"))
    }),
    row("load", Quoted, |_, _, at, v| {
        if lex::first_word(v).is_none() {
            return Err(Diagnostic::error(
                at.value(v),
                "invalid string for load testing",
            ));
        }
        Ok(())
    }),
    row("scheduler", Plain, |_, b, at, v| {
        b.scheduler = lex::first_lower(v)
            .ok_or_else(|| {
                Diagnostic::error(
                    at.value(v),
                    "invalid scheduler, should be only lowercase letters (a-z)",
                )
                .help("e.g. rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh")
            })?
            .to_owned();
        Ok(())
    })
    .default("wrr"),
    row("persistent", Plain, |_, b, at, v| {
        let d = lex::first_digits(v)
            .ok_or_else(|| Diagnostic::error(at.value(v), "invalid persistent timeout"))?;
        b.persistent = Some(lex::number(d).min(u64::from(u32::MAX)) as u32);
        Ok(())
    }),
    row("netmask", Plain, |_, b, at, v| {
        let setting = NetmaskSetting::parse(v, b.family).ok_or_else(|| {
            let msg = if b.family == Family::Inet6 {
                "invalid netmask: a prefix length between 1 and 128 is required"
            } else {
                "invalid netmask: dotted quad notation is required"
            };
            Diagnostic::error(at.value(v), msg)
        })?;
        b.netmask = Some(setting);
        Ok(())
    }),
    row("schedflags", Plain, |_, b, at, v| {
        let tok = v
            .split(lex::is_space)
            .find(|s| !s.is_empty())
            .ok_or_else(|| {
                Diagnostic::error(at.whole(), "invalid sched-flags")
                    .help("e.g. schedflags=sh-port,sh-fallback")
            })?;
        b.schedflags = Some(tok.to_owned());
        Ok(())
    }),
    row("protocol", Plain, protocol).default("tcp"),
    row("ops", Plain, |_, b, at, v| store(&mut b.ops, yes_no(at, v))).default("no"),
    row("service", Plain, |p, b, at, v| {
        let s = lex::first_word(v).and_then(Service::from_word).ok_or_else(|| {
            Diagnostic::error(at.value(v), SERVICE_LIST).label("not a known service").help(
                "for a service ldirectord has no check for, use checktype=connect, or checktype=external \
                 with your own checkcommand",
            )
        })?;
        b.service = Some(s);
        if s == Service::Ftp && b.login.is_empty() {
            b.login = "anonymous".to_owned();
        } else if s == Service::Sip && b.login.is_empty() {
            b.login = format!("ldirectord@{}", p.hostname());
        }
        if s == Service::Ftp && b.passwd.is_empty() {
            b.passwd = format!("ldirectord@{}", p.hostname());
        }
        Ok(())
    }),
    row("httpmethod", Plain, |_, b, at, v| {
        b.httpmethod = match lex::first_word(v)
            .map(|w| w.to_ascii_uppercase())
            .as_deref()
        {
            Some("GET") => HttpMethod::Get,
            Some("HEAD") => HttpMethod::Head,
            _ => {
                return Err(Diagnostic::error(
                    at.value(v),
                    "httpmethod must be GET or HEAD",
                ));
            }
        };
        Ok(())
    })
    .default("GET"),
    row("virtualhost", Plain, |_, b, _, v| {
        b.virtualhost = Some(lex::optionally_quoted(v).to_owned());
        Ok(())
    }),
    row("fallback", Plain, fallback),
    row("fallback6", Plain, fallback),
    row("fallbackcommand", QuotedOrAll, |_, b, at, v| {
        store(
            &mut b.fallbackcommand,
            given(at, v, "invalid fallback command"),
        )
    }),
    row("quiescent", Plain, |_, b, at, v| {
        store(&mut b.quiescent, yes_no(at, v))
    }),
    row("emailalert", Plain, |_, b, at, v| {
        store(&mut b.emailalert, email(at, v))
    }),
    row("emailalertfreq", Plain, |_, b, at, v| {
        store(&mut b.emailalertfreq, alert_freq(at, v))
    }),
    row("emailalertstatus", Plain, |_, b, at, v| {
        store(&mut b.emailalertstatus, alert_status(at, v))
    }),
    row("monitorfile", QuotedOrAll, |p, b, at, v| {
        if p.opts.check_files
            && let Err(e) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(v)
        {
            return Err(Diagnostic::error(
                at.value(v),
                format!("unable to open monitorfile {v}: {}", errno_text(&e)),
            ));
        }
        b.monitorfile = Some(PathBuf::from(v));
        Ok(())
    }),
    row("cleanstop", Plain, |_, b, at, v| {
        store(&mut b.cleanstop, yes_no(at, v))
    }),
    row("smtp", Plain, |_, b, at, v| store(&mut b.smtp, smtp(at, v))),
    row("servicename", Plain, |_, b, _, v| {
        b.servicename = Some(v.to_owned());
        Ok(())
    }),
    row("comment", Plain, |_, b, _, v| {
        b.comment = Some(v.to_owned());
        Ok(())
    }),
    row("risecount", Plain, |_, b, at, v| {
        b.risecount = Some(nonzero(v).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid rise count")
                .help("a whole() number greater than 0 (default 1)")
                .extension()
        })?);
        Ok(())
    })
    .extension(),
    row("tlsverify", Plain, |_, b, at, v| {
        b.tls_verify = Some(yes_no(at, v).map_err(Diagnostic::extension)?);
        Ok(())
    })
    .extension()
    .default("no"),
    row("tlssni", Plain, |_, b, at, v| {
        b.tls_sni = Some(yes_no(at, v).map_err(Diagnostic::extension)?);
        Ok(())
    })
    .extension()
    .default("no"),
    row("pgsqlrole", Plain, |_, b, at, v| {
        let role = match v.trim_end() {
            "primary" => PgRole::Primary,
            "standby" => PgRole::Standby,
            _ => {
                return Err(Diagnostic::error(
                    at.value(v),
                    "pgsqlrole must be 'primary' or 'standby'",
                )
                .extension());
            }
        };
        b.pg_role = Some((role, at.value(v)));
        Ok(())
    })
    .extension(),
    row("pgsqlmaxlag", Plain, |_, b, at, v| {
        let lag = parse_duration(v.trim_end()).ok_or_else(|| {
            Diagnostic::error(at.value(v), "invalid pgsqlmaxlag")
                .help("a duration such as 500ms, 10s or 1m (a bare number is seconds)")
                .extension()
        })?;
        b.pg_max_lag = Some((lag, at.value(v)));
        Ok(())
    })
    .extension(),
    row("pgsqlsyncstate", Plain, pgsql_sync_state).extension(),
    row("realsource", Trimmed, realsource).extension(),
    row("realfilter", Trimmed, |_, b, at, v| {
        b.sources
            .filters
            .push(real_filter("realfilter", v, at.value(v))?);
        b.sources.spans.push(at.whole());
        Ok(())
    })
    .extension(),
    row("realfallback", Trimmed, |_, b, at, v| {
        let f = real_filter("realfallback", v, at.value(v))?;
        b.sources.fallback_filters.push((f, at.whole()));
        b.sources.spans.push(at.whole());
        Ok(())
    })
    .extension(),
    row("realweights", Trimmed, |_, b, at, v| {
        b.sources.weights = host_weights(v, at.value(v), "realweights")?;
        b.sources.spans.push(at.whole());
        Ok(())
    })
    .extension(),
    row("realdefault", Trimmed, |_, b, at, v| {
        b.sources.default = Some(real_default(v, at.value(v))?);
        b.sources.spans.push(at.whole());
        Ok(())
    })
    .extension()
    .default("gate 1"),
    row("checkpath", Plain, |_, b, at, v| {
        b.checkpath = Some(check_path(at, v)?);
        Ok(())
    })
    .extension(),
];

/// `real=`/`real6=`: kept until the block is complete (stock resolves reals afterwards).
fn real(_: &mut Parser<'_, '_>, b: &mut Block, at: &At<'_, '_>, v: &str) -> Res {
    if at.name.ends_with('6') != (b.family == Family::Inet6) {
        return Err(family_error(at.whole(), at.name, "real", b.family));
    }
    b.reals.push(RealTodo {
        value: v.to_owned(),
        value_span: at.value(v),
        span: at.whole(),
    });
    Ok(())
}

/// `fallback=`/`fallback6=` in a block: the port defaults to the virtual's.
fn fallback(_: &mut Parser<'_, '_>, b: &mut Block, at: &At<'_, '_>, v: &str) -> Res {
    if at.name.ends_with('6') != (b.family == Family::Inet6) {
        return Err(family_error(at.whole(), at.name, "fallback", b.family));
    }
    let port = b
        .host_port
        .as_ref()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| "0".to_owned());
    b.fallback = Some(parse_fallback(v, Some(port), at.value(v))?);
    Ok(())
}

/// A block counter: [`nonzero_any`], or `message` at the value.
fn count(at: &At<'_, '_>, v: &str, message: &str) -> Res<u32> {
    nonzero_any(v).ok_or_else(|| Diagnostic::error(at.value(v), message))
}

fn protocol(_: &mut Parser<'_, '_>, b: &mut Block, at: &At<'_, '_>, v: &str) -> Res {
    let Some(w) = lex::first_word(v) else {
        return Err(Diagnostic::error(at.value(v), "invalid protocol"));
    };
    if b.protocol == Protocol::Fwm {
        if w != "fwm" {
            return Err(Diagnostic::error(
                at.value(v),
                "protocol must be fwm if the virtual service is a fwmark (a number)",
            ));
        }
    } else {
        b.protocol = match w {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => {
                return Err(Diagnostic::error(
                    at.value(v),
                    "protocol must be tcp or udp if the virtual service is an address and port",
                ));
            }
        };
    }
    Ok(())
}

/// `realsource=`: one per block.
fn realsource(_: &mut Parser<'_, '_>, b: &mut Block, at: &At<'_, '_>, v: &str) -> Res {
    if b.sources.candidates.is_some() {
        return Err(Diagnostic::error(at.whole(), "only one realsource= per virtual block")
                .extension()
                .label("a second source")
                .help("a virtual service takes its dynamic real servers from one source; use realfilter= to narrow it, or another virtual block"));
    }
    b.sources.candidates = Some(real_candidates(v, at.value(v))?);
    b.sources.spans.push(at.whole());
    Ok(())
}

fn pgsql_sync_state(_: &mut Parser<'_, '_>, b: &mut Block, at: &At<'_, '_>, v: &str) -> Res {
    let mut set = BTreeSet::new();
    for word in v.split(',').map(|w| w.trim_matches(lex::is_space)) {
        set.insert(match word {
            "sync" => SyncState::Sync,
            "potential" => SyncState::Potential,
            "async" => SyncState::Async,
            "quorum" => SyncState::Quorum,
            _ => {
                return Err(Diagnostic::error(
                    at.value(v),
                    format!("invalid pgsqlsyncstate \"{word}\""),
                )
                .help("a comma-separated list of sync, potential, async, quorum")
                .extension());
            }
        });
    }
    b.pg_sync = Some((set, at.value(v)));
    Ok(())
}

fn family_error(span: Span, written: &str, base: &str, family: Family) -> Diagnostic {
    let want = if family == Family::Inet {
        base.to_owned()
    } else {
        format!("{base}6")
    };
    Diagnostic::error(
        span,
        format!("cannot specify \"{written}\" here.  please use \"{want}\" instead"),
    )
}
