//! Render a [`Config`] back to `ldirectord.cf` text that stock ldirectord and this parser
//! read as the same configuration. Every per-virtual setting is written out explicitly
//! (the model holds merged values), so the text does not depend on global defaults.
//!
//! Values that the file format cannot carry (a `#` anywhere in a block value, a `"` in a
//! quoted value before the closing quote is fine, newlines) are written as they are; the
//! renderer does not invent an escaping ldirectord does not have.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::model::*;

/// The configuration as `ldirectord.cf` text.
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    globals(&mut out, &config.globals);
    for v in &config.virtuals {
        out.push('\n');
        virtual_block(&mut out, v, &config.globals);
    }
    out
}

fn yn(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn globals(out: &mut String, g: &Globals) {
    let d = Globals::default();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    if let Some(t) = g.checktimeout {
        line(format!("checktimeout={t}"));
    }
    if let Some(t) = g.negotiatetimeout {
        line(format!("negotiatetimeout={t}"));
    }
    line(format!("checkinterval={}", g.checkinterval));
    if g.checkcount != d.checkcount {
        line(format!("checkcount={}", g.checkcount));
    }
    line(format!("failurecount={}", g.failurecount));
    if let Some(f) = &g.fallback {
        line(format!("fallback={}", fallback_text(f)));
    }
    if let Some(f) = &g.fallback6 {
        line(format!("fallback6={}", fallback_text(f)));
    }
    if let Some(c) = &g.fallbackcommand {
        line(format!("fallbackcommand={c}"));
    }
    line(format!("autoreload={}", yn(g.autoreload)));
    if let Some(c) = &g.callback {
        line(format!("callback=\"{c}\""));
    }
    match &g.logfile {
        LogTarget::File(p) => line(format!("logfile=\"{}\"", p.display())),
        LogTarget::Syslog(f) => line(format!("logfile=\"{f}\"")),
    }
    for e in &g.execute {
        line(format!("execute={e}"));
    }
    line(format!("supervised={}", yn(g.supervised)));
    line(format!("fork={}", yn(g.fork)));
    line(format!("quiescent={}", yn(g.quiescent)));
    line(format!("readdquiescent={}", yn(g.readdquiescent)));
    line(format!("cleanstop={}", yn(g.cleanstop)));
    if let Some(m) = &g.maintenancedir {
        line(format!("maintenancedir={}", m.display()));
    }
    for l in alert_lines(&g.alerts) {
        line(l);
    }
    if let Some(f) = &g.emailalertfrom {
        line(format!("emailalertfrom={f}"));
    }
    if let Some(s) = &g.alerts.smtp {
        line(format!("smtp={s}"));
    }
    if g.risecount != d.risecount {
        line(format!("risecount={}", g.risecount));
    }
    if g.checkjitter != d.checkjitter {
        line(format!("checkjitter={}", g.checkjitter));
    }
    if g.checkspread != d.checkspread {
        line(format!("checkspread={}", g.checkspread));
    }
    for (node, addr) in &g.node_addresses {
        line(format!("nodeaddress={node} {addr}"));
    }
    if g.checkpath != d.checkpath {
        line(format!("checkpath={}", g.checkpath.as_str()));
    }
    if g.checkmarkbase != d.checkmarkbase {
        line(format!("checkmarkbase={:#x}", g.checkmarkbase));
    }
    if g.engine != d.engine {
        line(format!("engine={}", g.engine.as_str()));
    }
    if let Some(sync) = &g.syncdaemon {
        line(format!("syncdaemon={} {}", sync.interface, sync.syncid));
        let names = ["syncmaxlen", "syncgroup", "syncport", "syncttl"];
        for (name, value) in names.iter().zip(sync.option_values()) {
            if let Some(value) = value {
                line(format!("{name}={value}"));
            }
        }
    }
    if g.fallbackcommandonstop != d.fallbackcommandonstop {
        line(format!(
            "fallbackcommandonstop={}",
            yn(g.fallbackcommandonstop)
        ));
    }
    if let Some(group) = &g.controlgroup {
        line(format!("controlgroup={group}"));
    }
    if let Some(addr) = g.metrics {
        line(format!("metrics={addr}"));
    }
    if let Some(user) = &g.scriptuser {
        line(format!("scriptuser={user}"));
    }
    if g.keepcapabilities != d.keepcapabilities {
        line(format!("keepcapabilities={}", yn(g.keepcapabilities)));
    }
}

/// A command or expression as the parser reads it back: quotes around the whole value are
/// removed once, so a value that itself starts and ends with one gets another pair.
fn maybe_quoted(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        format!("\"{v}\"")
    } else {
        v.to_owned()
    }
}

fn host_weights(items: impl Iterator<Item = (String, Option<u32>)>) -> String {
    items
        .map(|(h, w)| match w {
            Some(w) => format!("{h},{w}"),
            None => h,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `realsource=` lines of a virtual block (extension).
fn real_sources(s: &RealSources) -> Vec<String> {
    let mut out = vec![match &s.candidates {
        RealCandidates::Resource(r) => format!("realsource=resource {r}"),
        RealCandidates::Partition => "realsource=partition".to_owned(),
        RealCandidates::Command(c) => format!("realsource=command {}", maybe_quoted(c)),
        RealCandidates::List(items) => {
            format!("realsource=list {}", host_weights(items.iter().cloned()))
        }
    }];
    let filters = s.filters.iter().map(|f| ("realfilter", f));
    for (directive, f) in filters.chain(s.fallback_filters.iter().map(|f| ("realfallback", f))) {
        out.push(match f {
            RealFilter::Attribute { name, pattern } => {
                format!(
                    "{directive}=attribute {name} {}",
                    maybe_quoted(pattern.as_str())
                )
            }
            RealFilter::Command(c) => format!("{directive}=command {}", maybe_quoted(c)),
        });
    }
    if !s.weights.is_empty() {
        out.push(format!(
            "realweights={}",
            host_weights(s.weights.iter().map(|(h, w)| (h.clone(), Some(*w))))
        ));
    }
    out.push(format!(
        "realdefault={} {}",
        s.forward.as_str(),
        s.default_weight
    ));
    out
}

/// Block timeouts: stock accepts `00` (a true string in Perl) but not `0`.
fn seconds(d: std::time::Duration) -> String {
    match d.as_secs() {
        0 => "00".to_owned(),
        n => n.to_string(),
    }
}

/// `emailalert=` (when set), `emailalertfreq=` and `emailalertstatus=`, for either scope.
fn alert_lines(a: &AlertSettings) -> Vec<String> {
    let mut lines: Vec<String> = a
        .emailalert
        .iter()
        .map(|a| format!("emailalert={a}"))
        .collect();
    lines.push(format!("emailalertfreq={}", a.emailalertfreq));
    lines.push(format!(
        "emailalertstatus={}",
        status_text(a.emailalertstatus)
    ));
    lines
}

fn status_text(s: AlertStatus) -> String {
    if s == AlertStatus::ALL {
        return "all".to_owned();
    }
    let names = [
        (s.starting, "starting"),
        (s.running, "running"),
        (s.stopping, "stopping"),
        (s.reloading, "reloading"),
    ];
    let list: Vec<&str> = names
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(",")
    }
}

fn addr_port(ip: IpAddr, port: Option<u16>) -> String {
    match port {
        Some(p) => SocketAddr::new(ip, p).to_string(),
        None => ip_text(ip),
    }
}

fn fallback_text(f: &Fallback) -> String {
    format!("{} {}", addr_port(f.ip, f.port), f.forward.as_str())
}

fn virtual_block(out: &mut String, v: &VirtualService, g: &Globals) {
    let six = if v.family == Family::Inet6 { "6" } else { "" };
    match v.address {
        VirtualAddress::Inet { ip, port } => {
            let _ = writeln!(out, "virtual{six}={}", SocketAddr::new(ip, port));
        }
        VirtualAddress::Fwmark { mark, .. } => {
            let _ = writeln!(out, "virtual{six}={mark}");
        }
    }
    let mut line = |s: String| {
        out.push_str("    ");
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("protocol={}", v.protocol.as_str()));
    for r in &v.reals {
        let mut s = format!(
            "real{six}={} {}",
            addr_port(r.ip, Some(r.port)),
            r.forward.as_str()
        );
        let _ = write!(s, " {}", r.weight);
        if let (Some(req), Some(rec)) = (&r.request, &r.receive) {
            let _ = write!(s, " \"{}\",\"{}\"", req, rec.as_str());
        }
        if r.lower > 0 {
            let _ = write!(s, " l:{}", r.lower);
        }
        if r.upper > 0 {
            let _ = write!(s, " u:{}", r.upper);
        }
        line(s);
    }
    let c = &v.check;
    // Credentials before `service=`: an explicit ftp/sip service fills in default
    // credentials only where none were given.
    if !c.login.is_empty() {
        line(format!("login=\"{}\"", c.login));
    }
    if !c.passwd.is_empty() {
        line(format!("passwd=\"{}\"", c.passwd));
    }
    if !c.database.is_empty() {
        line(format!("database=\"{}\"", c.database));
    }
    if !c.secret.is_empty() {
        line(format!("secret=\"{}\"", c.secret));
    }
    let derived = match v.address {
        VirtualAddress::Inet { port, .. } => Service::for_port(port),
        VirtualAddress::Fwmark { .. } => Service::None,
    };
    if c.service != derived {
        line(format!("service={}", c.service.as_str()));
    }
    line(match c.checktype {
        CheckType::Combined(n) => format!("checktype={n}"),
        other => format!("checktype={}", other.name()),
    });
    if let Some(p) = c.checkport {
        line(format!("checkport={p}"));
    }
    line(format!("request=\"{}\"", c.request));
    if let Some(r) = &c.receive {
        line(format!("receive=\"{}\"", r.as_str()));
    }
    line(format!(
        "httpmethod={}",
        match c.httpmethod {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        }
    ));
    if let Some(h) = &c.virtualhost {
        line(format!("virtualhost=\"{h}\""));
    }
    line(format!("checkcommand=\"{}\"", c.checkcommand));
    line(format!("checktimeout={}", seconds(c.checktimeout)));
    line(format!("negotiatetimeout={}", seconds(c.negotiatetimeout)));
    if c.checkcount != g.checkcount {
        line(format!("checkcount={}", c.checkcount));
    }
    if c.tls_verify {
        line("tlsverify=yes".to_owned());
    }
    if c.tls_sni {
        line("tlssni=yes".to_owned());
    }
    if let Some(pg) = &c.pgsql_role {
        line(format!(
            "pgsqlrole={}",
            match pg.role {
                PgRole::Primary => "primary",
                PgRole::Standby => "standby",
            }
        ));
        if let Some(lag) = pg.max_lag {
            line(format!("pgsqlmaxlag={}ms", lag.as_millis()));
        }
        if !pg.sync_states.is_empty() {
            let list: Vec<&str> = pg.sync_states.iter().map(|s| s.as_str()).collect();
            line(format!("pgsqlsyncstate={}", list.join(",")));
        }
    }
    line(format!("failurecount={}", v.failurecount));
    line(format!("risecount={}", v.risecount));
    if v.checkpath != g.checkpath {
        line(format!("checkpath={}", v.checkpath.as_str()));
    }
    if v.checkinterval_set {
        line(format!("checkinterval={}", v.checkinterval));
    }
    line(format!("scheduler={}", v.scheduler));
    if let Some(p) = v.persistent {
        line(format!("persistent={p}"));
    }
    if let Some(m) = &v.netmask {
        line(format!("netmask={m}"));
    }
    if let Some(f) = &v.schedflags {
        line(format!("schedflags={f}"));
    }
    line(format!("ops={}", yn(v.ops)));
    if let Some(f) = &v.fallback {
        line(format!("fallback{six}={}", fallback_text(f)));
    }
    if let Some(c) = &v.fallbackcommand {
        line(format!("fallbackcommand=\"{c}\""));
    }
    line(format!("quiescent={}", yn(v.quiescent)));
    line(format!("cleanstop={}", yn(v.cleanstop)));
    for l in alert_lines(&v.alerts) {
        line(l);
    }
    if let Some(s) = &v.alerts.smtp {
        line(format!("smtp={s}"));
    }
    if let Some(m) = &v.monitorfile {
        line(format!("monitorfile=\"{}\"", m.display()));
    }
    if let Some(s) = &v.servicename {
        line(format!("servicename={s}"));
    }
    if let Some(s) = &v.comment {
        line(format!("comment={s}"));
    }
    if let Some(s) = &v.real_sources {
        for l in real_sources(s) {
            line(l);
        }
    }
}
