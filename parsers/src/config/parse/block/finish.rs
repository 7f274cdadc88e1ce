//! Completing a virtual block: what stock resolves after the block, in its order
//! (fallback, virtual address, real servers), the duplicate-virtual check, the §2.8
//! timeout resolution, and the inheritance of global settings into a [`VirtualService`].

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::config::diag::Diagnostic;
use crate::config::lex;
use crate::config::model::*;

use super::super::sources::real_sources;
use super::super::state::{Parser, Res, StockId};
use super::super::value::FallbackTodo;
use super::{Block, RealTodo};

impl Parser<'_, '_> {
    /// Resolve everything stock resolves after a block, in stock's order (fallback,
    /// virtual, reals), check for duplicates, and build the model.
    pub(in crate::config::parse) fn finish_block(&mut self, mut b: Block, end_line: Span) -> Res {
        let fallback = match &b.fallback {
            Some(todo) => Some(self.resolve_fallback(todo, b.protocol, b.family)?),
            None => None,
        };
        let address = match (&b.host_port, &b.fwmark) {
            (Some((host, port)), _) => {
                let ip = self.host(host, b.family);
                let port = self.port(port, b.protocol.as_str());
                match (ip, port) {
                    (Some(ip), Some(port)) => VirtualAddress::Inet { ip, port },
                    _ => {
                        return Err(Diagnostic::error(b.value_span, "invalid address for virtual service").help(
                            "the host did not resolve in this address family, or the port is not a number \
                             from 0 to 65535 nor a service name known for this protocol",
                        ));
                    }
                }
            }
            (None, Some(mark)) => {
                let n = lex::number(mark);
                if n > u64::from(u32::MAX) {
                    return Err(Diagnostic::error(
                        b.value_span,
                        "invalid address for virtual server",
                    )
                    .help("a firewall mark is a number from 1 to 4294967295")
                    .extension());
                }
                VirtualAddress::Fwmark {
                    mark: n as u32,
                    family: b.family,
                }
            }
            (None, None) => unreachable!("a virtual block has an address or a firewall mark"),
        };
        let service = b.service.unwrap_or(match address {
            VirtualAddress::Inet { port, .. } => Service::for_port(port),
            VirtualAddress::Fwmark { .. } => Service::None,
        });
        let mut reals = Vec::with_capacity(b.reals.len());
        for todo in &b.reals {
            self.resolve_real(todo, b.family, &mut reals)?;
        }

        // Stock's duplicate check, by its virtual id string.
        // Stock's duplicate check, by its virtual id (a firewall mark as typed).
        let key = match (&address, &b.fwmark) {
            (VirtualAddress::Fwmark { family, .. }, Some(m)) => StockId::Fwmark(*family, m.clone()),
            (VirtualAddress::Inet { ip, port }, _) => StockId::Inet(b.protocol, *ip, *port),
            _ => unreachable!("a virtual block has an address or a firewall mark"),
        };
        if !self.seen.insert(key.clone()) {
            let stock_id = key.text();
            let first = self
                .virtuals
                .iter()
                .find(|v| v.id() == stock_id || fwm_id_matches(v, &stock_id));
            let mut d = Diagnostic::error(end_line, "duplicate virtual server")
                .label(format!("{stock_id} is defined twice"));
            if let Some(first) = first {
                d = d.help(format!(
                    "the virtual service at line {} has the same protocol and address; give one of them \
                     another port or protocol=, or merge them",
                    first.span.line
                ));
            }
            return Err(d);
        }

        // §2.8 timeout resolution.
        let g = &self.globals;
        let checktimeout = b
            .checktimeout
            .or(b.negotiatetimeout)
            .or(g.checktimeout)
            .or(g.negotiatetimeout)
            .unwrap_or(5);
        let negotiatetimeout = b
            .negotiatetimeout
            .or(b.checktimeout)
            .or(g.negotiatetimeout)
            .or(g.checktimeout)
            .unwrap_or(30);

        let pgsql_role = self.pg_role_check(&b, service)?;
        let real_sources = real_sources(std::mem::take(&mut b.sources))?;
        let global_fallback = match (b.family, b.protocol) {
            (Family::Inet, Protocol::Udp) => self.fallback_udp.clone(),
            (Family::Inet, _) => self.globals.fallback.clone(),
            (Family::Inet6, Protocol::Udp) => self.fallback6_udp.clone(),
            (Family::Inet6, _) => self.globals.fallback6.clone(),
        };
        let fallback = fallback.or_else(|| {
            global_fallback.map(|mut f| {
                if f.port.is_none() {
                    f.port = Some(match address {
                        VirtualAddress::Inet { port, .. } => port,
                        VirtualAddress::Fwmark { .. } => 0,
                    });
                }
                f
            })
        });
        let g = &self.globals;
        let vs = VirtualService {
            span: b.span,
            family: b.family,
            address,
            protocol: b.protocol,
            scheduler: b.scheduler,
            persistent: b.persistent,
            netmask: b.netmask,
            schedflags: b.schedflags,
            ops: b.ops,
            reals,
            fallback,
            fallbackcommand: b.fallbackcommand.or_else(|| g.fallbackcommand.clone()),
            check: CheckSettings {
                checktype: b.checktype,
                service,
                checkport: b.checkport,
                request: b.request,
                receive: b.receive,
                httpmethod: b.httpmethod,
                virtualhost: b.virtualhost,
                login: b.login,
                passwd: b.passwd,
                database: b.database,
                secret: b.secret,
                checkcommand: b.checkcommand,
                checktimeout: Duration::from_secs(u64::from(checktimeout)),
                negotiatetimeout: Duration::from_secs(u64::from(negotiatetimeout)),
                checkcount: b.checkcount.unwrap_or(g.checkcount),
                tls_verify: b.tls_verify.unwrap_or(false),
                tls_sni: b.tls_sni.unwrap_or(false),
                pgsql_role,
                scriptuser: None,
            },
            checkinterval: b.checkinterval.unwrap_or(g.checkinterval),
            checkinterval_set: b.checkinterval.is_some(),
            failurecount: b.failurecount.unwrap_or(g.failurecount),
            risecount: b.risecount.unwrap_or(g.risecount),
            quiescent: b.quiescent.unwrap_or(g.quiescent),
            cleanstop: b.cleanstop.unwrap_or(g.cleanstop),
            alerts: AlertSettings {
                emailalert: b.emailalert.or_else(|| g.alerts.emailalert.clone()),
                emailalertfreq: b.emailalertfreq.unwrap_or(g.alerts.emailalertfreq),
                emailalertstatus: b.emailalertstatus.unwrap_or(g.alerts.emailalertstatus),
                smtp: b.smtp.or_else(|| g.alerts.smtp.clone()),
            },
            monitorfile: b.monitorfile,
            servicename: b.servicename,
            comment: b.comment,
            real_sources,
            checkpath: b.checkpath.unwrap_or(g.checkpath),
        };
        if vs.check.checktype == CheckType::Negotiate
            && vs.check.service == Service::None
            && matches!(vs.address, VirtualAddress::Inet { .. })
            && !vs.reals.is_empty()
        {
            self.warnings.push(
                Diagnostic::warning(b.value_span, format!("virtual {} is never checked", vs.virtual_text()))
                    .extension()
                    .label(format!("port {} has no default service", vs.port()))
                    .help("stock ldirectord treats every real of this virtual as up; set service= (e.g. service=http) or checktype=connect"),
            );
        }
        self.virtuals.push(vs);
        Ok(())
    }

    fn pg_role_check(&self, b: &Block, service: Service) -> Res<Option<PgRoleCheck>> {
        let Some((role, span)) = b.pg_role else {
            if let Some((_, span)) = b.pg_max_lag.as_ref() {
                return Err(
                    Diagnostic::error(*span, "pgsqlmaxlag needs pgsqlrole=standby").extension(),
                );
            }
            if let Some((_, span)) = b.pg_sync.as_ref() {
                return Err(
                    Diagnostic::error(*span, "pgsqlsyncstate needs pgsqlrole=standby").extension(),
                );
            }
            return Ok(None);
        };
        if service != Service::Pgsql {
            return Err(Diagnostic::error(span, "pgsqlrole needs service=pgsql").extension());
        }
        let standby_only = b
            .pg_max_lag
            .as_ref()
            .map(|(_, s)| *s)
            .or(b.pg_sync.as_ref().map(|(_, s)| *s));
        if role == PgRole::Primary
            && let Some(s) = standby_only
        {
            return Err(Diagnostic::error(
                s,
                "pgsqlmaxlag and pgsqlsyncstate apply to pgsqlrole=standby only",
            )
            .extension());
        }
        Ok(Some(PgRoleCheck {
            role,
            max_lag: b.pg_max_lag.as_ref().map(|(d, _)| *d),
            sync_states: b
                .pg_sync
                .as_ref()
                .map(|(s, _)| s.clone())
                .unwrap_or_default(),
        }))
    }

    fn resolve_real(&mut self, todo: &RealTodo, family: Family, out: &mut Vec<RealServer>) -> Res {
        let line_span = todo.span;
        let Some(parts) = lex::real_parts(&todo.value) else {
            return Err(Diagnostic::error(
                todo.value_span,
                "invalid address for real server (wrong format)",
            )
            .help("write ADDRESS[:PORT] gate|masq|ipip [WEIGHT], e.g. real=192.0.2.1:80 gate 2"));
        };
        let host_span = offset_span(todo.value_span, &todo.value, parts.ip1);
        let ip1 = self.host(parts.ip1, family).ok_or_else(|| {
            Diagnostic::error(
                host_span,
                format!(
                    "invalid address ({}) for real server (could not resolve host)",
                    parts.ip1
                ),
            )
        })?;
        let port_text = parts.port.unwrap_or("0");
        let port = self.port(port_text, "").ok_or_else(|| {
            Diagnostic::error(
                parts
                    .port
                    .map(|p| offset_span(todo.value_span, &todo.value, p))
                    .unwrap_or(host_span),
                format!("invalid port ({port_text}) for real server (could not resolve port)"),
            )
        })?;
        let ips: Vec<IpAddr> = match parts.ip2 {
            None => vec![ip1],
            Some(h2) => {
                let ip2 = self.host(h2, family).ok_or_else(|| {
                    Diagnostic::error(
                        offset_span(todo.value_span, &todo.value, h2),
                        format!(
                            "invalid address ({h2}) for real server (could not resolve end host)"
                        ),
                    )
                })?;
                match (ip1, ip2) {
                    (IpAddr::V4(a), IpAddr::V4(z)) => {
                        let (a, z) = (u32::from(a), u32::from(z));
                        if a > z {
                            return Err(Diagnostic::error(
                                todo.value_span,
                                format!(
                                    "Invalid Range: {}-{}: First value must be greater than or equal to the second value",
                                    Ipv4Addr::from(a),
                                    Ipv4Addr::from(z)
                                ),
                            )
                            .help("write the lower address first: real=192.0.2.1->192.0.2.5:80 gate"));
                        }
                        (a..=z).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect()
                    }
                    _ => {
                        return Err(Diagnostic::error(
                            todo.value_span,
                            "Address range for IPv6 is not supported yet",
                        ));
                    }
                }
            }
        };
        let flags_span = |s: &str| offset_span(todo.value_span, &todo.value, s);
        // Forwarding method: the first word.
        let flags = parts.flags;
        let fwd_word = lex::first_word(flags);
        let forward = match fwd_word {
            Some("gate") => Forward::Gate,
            Some("masq") => Forward::Masq,
            Some("ipip") => Forward::Ipip,
            _ => {
                return Err(Diagnostic::error(
                    flags_span(fwd_word.unwrap_or(flags)),
                    "forward method must be gate, masq or ipip",
                )
                .help("gate = direct routing, masq = NAT, ipip = tunnelling"));
            }
        };
        let fwd = fwd_word.unwrap_or_default();
        let mut rest = &flags[(fwd.as_ptr() as usize - flags.as_ptr() as usize) + fwd.len()..];
        let mut weight = 1u32;
        if let Some((d, after)) = lex::ws_digits(rest) {
            weight = lex::number(d).min(u64::from(u32::MAX)) as u32;
            rest = after;
        }
        let mut request = None;
        let mut receive = None;
        let mut lenient = false;
        if let Some((req, rec, after, _)) = lex::request_receive(rest) {
            let slash = req.starts_with('/');
            request = Some(if slash {
                req.to_owned()
            } else {
                format!("/{req}")
            });
            let rec_span = flags_span(rec);
            receive = Some(self.receive(rec, rec_span)?);
            rest = after;
            if slash {
                // Stock loses this receive string, the real's URL and anything after the
                // pair when the request starts with `/` (defect §7.2-1). We honour them.
                lenient = true;
                self.warnings.push(
                    Diagnostic::warning(flags_span(req), "stock ldirectord ignores this real's receive string and what follows it")
                        .extension()
                        .label("request starts with /")
                        .help("ldirectord-rs honours the per-real request and receive (compat/DEVIATIONS.md); stock used the virtual's"),
                );
            } else if rec.starts_with("u:") || req.starts_with("l:") {
                self.warnings.push(
                    Diagnostic::warning(
                        flags_span(req),
                        "quoted thresholds are read as a request/receive pair",
                    )
                    .extension()
                    .help("write thresholds unquoted: l:10 u:100"),
                );
            }
        }
        let (lower, upper, leftover) = lex::thresholds(rest);
        let lower = lower
            .map(|d| lex::number(d).min(u64::from(u32::MAX)) as u32)
            .unwrap_or(0);
        let upper = upper
            .map(|d| lex::number(d).min(u64::from(u32::MAX)) as u32)
            .unwrap_or(0);
        if leftover.chars().any(|c| !lex::is_space(c)) {
            if lenient {
                self.warnings.push(
                    Diagnostic::warning(
                        flags_span(leftover.trim()),
                        format!("ignored: \"{leftover}\""),
                    )
                    .extension()
                    .help("stock ignores text after a request starting with /"),
                );
            } else {
                return Err(Diagnostic::error(flags_span(leftover.trim()), format!("Invalid real server line, around \"{leftover}\""))
                    .help("after the forwarding method come an optional weight, an optional \"request\",\"receive\" pair, and optional l:N u:N thresholds"));
            }
        }
        for ip in ips {
            out.push(RealServer {
                span: line_span,
                ip,
                port,
                forward,
                weight,
                request: request.clone(),
                receive: receive.clone(),
                lower,
                upper,
            });
        }
        Ok(())
    }

    pub(in crate::config::parse) fn resolve_fallback(
        &mut self,
        todo: &FallbackTodo,
        protocol: Protocol,
        family: Family,
    ) -> Res<Fallback> {
        let ip = self.host(&todo.host, family).ok_or_else(|| {
            let v = if family == Family::Inet {
                "IPv4"
            } else {
                "IPv6"
            };
            Diagnostic::error(
                todo.span,
                format!(
                    "invalid {v} address or could not resolve for fallback server: {}",
                    todo.host
                ),
            )
        })?;
        let port = match todo.port.as_deref() {
            None => None,
            // `unless($fallback->{port})`: "0" is false in Perl, so it stays 0 unresolved.
            Some("0") | Some("") => Some(0),
            Some(p) => {
                let n = self.port(p, protocol.as_str());
                Some(n.ok_or_else(|| {
                    Diagnostic::error(todo.span, "invalid port for fallback server")
                })?)
            }
        };
        Ok(Fallback {
            span: todo.span,
            ip,
            port,
            forward: todo.forward,
        })
    }
}

fn fwm_id_matches(v: &VirtualService, stock_id: &str) -> bool {
    match v.address {
        VirtualAddress::Fwmark { mark, family } => {
            let prefix = if family == Family::Inet6 {
                "fwm6:"
            } else {
                "fwm:"
            };
            stock_id.strip_prefix(prefix).map(lex::number) == Some(u64::from(mark))
        }
        _ => false,
    }
}

/// A span inside a real's value, given a subslice of it.
fn offset_span(value_span: Span, value: &str, part: &str) -> Span {
    let at = (part.as_ptr() as usize)
        .saturating_sub(value.as_ptr() as usize)
        .min(value.len());
    Span {
        line: value_span.line,
        column: value_span.column + value[..at].chars().count(),
        offset: value_span.offset + at,
        len: part.len().max(1),
    }
}
