//! The `ldirectord.cf` reader: stock ldirectord's line loop (global lines, virtual blocks,
//! the "first non-block line is re-read as a global line" rule), its accept/reject
//! decisions and line numbers, with every value resolved into the typed model.
//!
//! Stock stops at the first error; so does this parser, and it reports that error at the
//! same line with the same message. Warnings are collected.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::{ConfigError, Diagnostic};
use super::lex::{self, VirtualForm};
use super::resolve::{Resolver, SystemResolver};
use super::*;

/// How to parse: which resolver, and whether to touch the file system as stock does
/// (`monitorfile` is opened for appending, `maintenancedir` is checked for existence).
pub struct ParseOptions<'r> {
    pub resolver: &'r dyn Resolver,
    pub check_files: bool,
    /// Used for stock's ftp/sip default logins (`ldirectord@HOSTNAME`); `None` = from the
    /// `HOSTNAME` environment variable, else the kernel's host name.
    pub hostname: Option<String>,
}

impl Default for ParseOptions<'_> {
    fn default() -> Self {
        ParseOptions {
            resolver: &SystemResolver,
            check_files: true,
            hostname: None,
        }
    }
}

/// A parsed configuration and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Read and parse `path`. An unreadable file is stock's `can not open file PATH`.
pub fn load(path: &Path) -> Result<Parsed, ConfigError> {
    load_with(path, &ParseOptions::default())
}

/// [`load`] with options.
pub fn load_with(path: &Path, opts: &ParseOptions<'_>) -> Result<Parsed, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => parse_with(&String::from_utf8_lossy(&bytes), path, opts),
        Err(e) => Err(ConfigError {
            path: path.to_owned(),
            error: Box::new(
                Diagnostic::error(
                    Span::default(),
                    format!("can not open file {}", path.display()),
                )
                .help(e.to_string()),
            ),
            warnings: Vec::new(),
        }),
    }
}

/// Parse configuration text that was read from `path`, with the system resolver.
pub fn parse_str(text: &str, path: &Path) -> Result<Parsed, ConfigError> {
    parse_with(text, path, &ParseOptions::default())
}

/// Parse configuration text with options.
pub fn parse_with(text: &str, path: &Path, opts: &ParseOptions<'_>) -> Result<Parsed, ConfigError> {
    let mut p = Parser {
        opts,
        path,
        globals: Globals::default(),
        fallback_udp: None,
        fallback6_udp: None,
        virtuals: Vec::new(),
        warnings: Vec::new(),
        seen: HashSet::new(),
        receive_cache: HashMap::new(),
        hostname: None,
    };
    match p.run(text) {
        Ok(()) => {
            let config = Config {
                path: path.to_owned(),
                globals: p.globals,
                virtuals: p.virtuals,
            };
            Ok(Parsed {
                config,
                warnings: p.warnings,
            })
        }
        Err(error) => Err(ConfigError {
            path: path.to_owned(),
            error: Box::new(error),
            warnings: p.warnings,
        }),
    }
}

/// One physical line: its number, the text without the `\n`, whether it had one, and its
/// byte offset in the file.
#[derive(Clone, Copy)]
struct Line<'a> {
    number: usize,
    text: &'a str,
    newline: bool,
    offset: usize,
}

impl<'a> Line<'a> {
    /// A span over `len` bytes at byte `at` of the line's text.
    fn span(&self, at: usize, len: usize) -> Span {
        let at = at.min(self.text.len());
        let prefix = &self.text[..at];
        let column = if prefix.is_ascii() {
            at
        } else {
            prefix.chars().count()
        } + 1;
        Span {
            line: self.number,
            column,
            offset: self.offset + at,
            len,
        }
    }
    fn whole(&self) -> Span {
        self.span(0, self.text.trim_end().len())
    }
    /// The raw line as Perl holds it, with its newline.
    fn raw(&self) -> String {
        if self.newline {
            format!("{}\n", self.text)
        } else {
            self.text.to_owned()
        }
    }
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    let mut number = 0;
    std::iter::from_fn(move || {
        if offset >= text.len() {
            return None;
        }
        number += 1;
        let rest = &text[offset..];
        let (body, newline) = match rest.find('\n') {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        let line = Line {
            number,
            text: body,
            newline,
            offset,
        };
        offset += body.len() + usize::from(newline);
        Some(line)
    })
}

/// A block line after stock's preprocessing: comment stripped, tabs expanded.
struct BlockLine<'a> {
    line: Line<'a>,
    /// The directive body after stock's preprocessing (`s/#.*//; s/\t/    /g`, then
    /// `^ {4,}(.+)`). Borrowed from the raw line when no TAB follows the indentation,
    /// which is the common case and needs no copy.
    body: std::borrow::Cow<'a, str>,
    /// When `body` is owned (TABs inside the body): the whole expanded line and the
    /// body's offset in it, to map spans back to raw columns.
    expanded_at: usize,
}

impl<'a> BlockLine<'a> {
    /// Stock's preprocessing of a block line; `None` when the line ends the block.
    fn new(line: Line<'a>) -> Option<BlockLine<'a>> {
        let stripped = match line.text.find('#') {
            Some(i) => &line.text[..i],
            None => line.text,
        };
        let indent_bytes = stripped
            .bytes()
            .take_while(|&c| c == b' ' || c == b'\t')
            .count();
        let rest = &stripped[indent_bytes..];
        if !rest.contains('\t') {
            let width: usize = stripped.as_bytes()[..indent_bytes]
                .iter()
                .map(|&c| if c == b'\t' { 4 } else { 1 })
                .sum();
            let body = if width >= 4 && !rest.is_empty() {
                std::borrow::Cow::Borrowed(rest)
            } else if width >= 5 {
                // Perl backtracks: five or more spaces alone leave one space as the body.
                std::borrow::Cow::Borrowed(" ")
            } else {
                return None;
            };
            return Some(BlockLine {
                line,
                body,
                expanded_at: usize::MAX,
            });
        }
        let expanded = stripped.replace('\t', "    ");
        let at = lex::block_body(&expanded)?;
        Some(BlockLine {
            line,
            body: std::borrow::Cow::Owned(expanded[at..].to_owned()),
            expanded_at: at,
        })
    }

    fn rcmd(&self) -> &str {
        &self.body
    }

    /// Map an offset in the expanded line back to the raw line (a TAB was four columns).
    fn raw_offset(&self, expanded_at: usize) -> usize {
        let mut col = 0;
        for (i, &c) in self.line.text.as_bytes().iter().enumerate() {
            if col >= expanded_at {
                return i;
            }
            col += if c == b'\t' { 4 } else { 1 };
        }
        self.line.text.len()
    }

    /// A span over a value that is a subslice of `rcmd()`.
    fn span_of(&self, value: &str) -> Span {
        let at = (value.as_ptr() as usize)
            .saturating_sub(self.body.as_ptr() as usize)
            .min(self.body.len());
        let (start, end) = match &self.body {
            std::borrow::Cow::Borrowed(b)
                if b.as_ptr() as usize >= self.line.text.as_ptr() as usize
                    && (b.as_ptr() as usize)
                        < self.line.text.as_ptr() as usize + self.line.text.len().max(1) =>
            {
                let base = b.as_ptr() as usize - self.line.text.as_ptr() as usize;
                (base + at, base + at + value.len())
            }
            std::borrow::Cow::Borrowed(_) => {
                // The lone-space body: point at the end of the indentation.
                let n = self.line.text.len();
                (n.saturating_sub(1), n)
            }
            std::borrow::Cow::Owned(_) => {
                let start = self.raw_offset(self.expanded_at + at);
                (
                    start,
                    self.raw_offset(self.expanded_at + at + value.len())
                        .max(start),
                )
            }
        };
        self.line.span(start, (end - start).max(1))
    }

    fn directive_span(&self) -> Span {
        self.span_of(self.rcmd().trim_end())
    }
}

/// A `real=` line kept until the block is complete (stock resolves reals afterwards,
/// when the protocol is known).
struct RealTodo {
    value: String,
    value_span: Span,
    span: Span,
    line: usize,
}

struct FallbackTodo {
    host: String,
    port: Option<String>,
    forward: Forward,
    span: Span,
}

/// The raw settings of one virtual block, in stock's representation, before resolution.
struct Block {
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
    checkinterval: Option<u32>,
    checkport: Option<u16>,
    httpmethod: HttpMethod,
    virtualhost: Option<String>,
    scheduler: String,
    persistent: Option<u32>,
    netmask: Option<String>,
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

/// The `realsource=`/`realfilter=`/`realweights=`/`realdefault=` lines of a block
/// (extension), resolved when the block is complete (weights default to `realdefault=`'s).
#[derive(Default)]
struct SourcesTodo {
    spans: Vec<Span>,
    candidates: Option<RealCandidates>,
    filters: Vec<RealFilter>,
    weights: Vec<(String, Option<u32>)>,
    default: Option<(Forward, Option<u32>)>,
}

struct Parser<'o, 'r> {
    opts: &'o ParseOptions<'r>,
    path: &'o Path,
    globals: Globals,
    /// The global fallbacks resolved for UDP (a service name may differ per protocol).
    fallback_udp: Option<Fallback>,
    fallback6_udp: Option<Fallback>,
    virtuals: Vec<VirtualService>,
    warnings: Vec<Diagnostic>,
    /// Stock's virtual ids seen so far, for `duplicate virtual server`.
    seen: HashSet<StockId>,
    /// Identical `receive=` patterns compile once.
    receive_cache: HashMap<String, Receive>,
    hostname: Option<String>,
}

type Res<T = ()> = Result<T, Diagnostic>;

const SERVICE_LIST: &str = "service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission";
const CHECKTYPE_LIST: &str = "checktype must be \"connect\", \"negotiate\", \"on\", \"off\", \"ping\", \"external\", \"external-perl\" or a positive number";
const GLOBAL_DIRECTIVES: &str = "checktimeout, negotiatetimeout, checkinterval, checkcount, failurecount, fallback, fallback6, fallbackcommand, autoreload, callback, logfile, execute, supervised, fork, quiescent, readdquiescent, emailalert, emailalertfreq, emailalertstatus, emailalertfrom, cleanstop, smtp, maintenancedir, virtual, virtual6 (extensions: risecount, checkjitter, nodeaddress)";
const BLOCK_DIRECTIVES: &str = "real, real6, request, receive, checktype, checkcommand, checktimeout, negotiatetimeout, checkcount, failurecount, checkinterval, checkport, login, passwd, database, secret, load, scheduler, persistent, netmask, schedflags, protocol, ops, service, httpmethod, virtualhost, fallback, fallback6, fallbackcommand, quiescent, emailalert, emailalertfreq, emailalertstatus, monitorfile, cleanstop, smtp, servicename, comment (extensions: risecount, tlsverify, tlssni, pgsqlrole, pgsqlmaxlag, pgsqlsyncstate, realsource, realfilter, realweights, realdefault)";

impl Parser<'_, '_> {
    fn run(&mut self, text: &str) -> Res {
        let mut iter = lines(text);
        let mut pending: Option<Line<'_>> = None;
        while let Some(line) = pending.take().or_else(|| iter.next()) {
            if let Some((inet6, value)) = virtual_head(line.text) {
                pending = self.block(line, inet6, value, &mut iter)?;
                continue;
            }
            let t = line.text;
            if t.chars().all(lex::is_space) || t.trim_start_matches(lex::is_space).starts_with('#')
            {
                continue;
            }
            self.global(line)?;
        }
        self.check_sanity();
        Ok(())
    }

    fn hostname(&mut self) -> String {
        if self.hostname.is_none() {
            let h = self
                .opts
                .hostname
                .clone()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .or_else(|| {
                    std::fs::read_to_string("/proc/sys/kernel/hostname")
                        .ok()
                        .map(|s| s.trim().to_owned())
                })
                .unwrap_or_else(|| "localhost".to_owned());
            self.hostname = Some(h);
        }
        self.hostname.clone().unwrap_or_default()
    }

    // ---- global context -------------------------------------------------------------

    fn global(&mut self, line: Line<'_>) -> Res {
        let t = line.text;
        // Every directive pattern is `^NAME\s*=`: only the one named like the line's first
        // word can match, so compare names before running a parser.
        let name = directive_name(t);
        let d = |n: &str| {
            if name == n {
                lex::directive(t, n)
            } else {
                None
            }
        };
        let span_of = |v: &str| {
            let at = (v.as_ptr() as usize).saturating_sub(t.as_ptr() as usize);
            line.span(at, v.trim_end().len().max(1))
        };
        let g = &mut self.globals;
        if let Some(v) = d("checktimeout") {
            g.checktimeout = Some(positive_timeout(v).ok_or_else(|| {
                Diagnostic::error(span_of(v), "invalid check timeout value")
                    .help("a whole number of seconds greater than 0")
            })?);
        } else if d("connecttimeout").is_some() {
            return Err(Diagnostic::error(
                line.whole(),
                "connecttimeout directive deprecated in favour of negotiatetimeout",
            )
            .help("use negotiatetimeout= (or checktimeout=)"));
        } else if let Some(v) = d("negotiatetimeout") {
            g.negotiatetimeout = Some(positive_timeout(v).ok_or_else(|| {
                Diagnostic::error(span_of(v), "invalid negotiate timeout value")
                    .help("a whole number of seconds greater than 0")
            })?);
        } else if let Some(v) = d("checkinterval") {
            g.checkinterval = nonzero(v).ok_or_else(|| {
                Diagnostic::error(span_of(v), "invalid check interval value")
                    .help("a whole number of seconds greater than 0")
            })?;
        } else if let Some(v) = d("checkcount") {
            g.checkcount = nonzero(v)
                .ok_or_else(|| Diagnostic::error(span_of(v), "invalid check count value"))?;
            self.warnings.push(checkcount_warning(line.whole()));
        } else if let Some(v) = d("failurecount") {
            g.failurecount = nonzero(v).ok_or_else(|| {
                Diagnostic::error(span_of(v), "invalid failure count value")
                    .help("a whole number greater than 0")
            })?;
        } else if let Some((inet6, v)) =
            directive_fallback(t).filter(|_| name == "fallback" || name == "fallback6")
        {
            let family = if inet6 { Family::Inet6 } else { Family::Inet };
            let todo = parse_fallback(v, None, span_of(v))?;
            let tcp = self.resolve_fallback(&todo, Protocol::Tcp, family)?;
            let udp = self.resolve_fallback(&todo, Protocol::Udp, family)?;
            if inet6 {
                self.globals.fallback6 = Some(tcp);
                self.fallback6_udp = Some(udp);
            } else {
                self.globals.fallback = Some(tcp);
                self.fallback_udp = Some(udp);
            }
        } else if let Some(v) = d("fallbackcommand") {
            if v.is_empty() {
                return Err(Diagnostic::error(line.whole(), "invalid fallback command"));
            }
            g.fallbackcommand = Some(v.to_owned());
        } else if let Some(v) = d("autoreload") {
            g.autoreload = yes_no(v, span_of(v), "autoreload")?;
        } else if let Some(v) = d("callback").and_then(lex::quoted_greedy) {
            g.callback = Some(v.to_owned());
        } else if let Some(v) = d("logfile").and_then(lex::quoted_greedy) {
            g.logfile = if v.starts_with('/') {
                LogTarget::File(PathBuf::from(v))
            } else {
                LogTarget::Syslog(v.to_owned())
            };
        } else if let Some(v) = d("execute") {
            if !g.execute.iter().any(|e| e == v) {
                g.execute.push(v.to_owned());
            }
        } else if let Some(v) = d("fork") {
            g.fork = yes_no(v, span_of(v), "fork")?;
        } else if t.starts_with("supervised") {
            match lex::directive(t, "supervised") {
                Some(v) if lex::yes_no(v).is_some() => g.supervised = v == "yes",
                _ if t
                    .strip_prefix("supervised")
                    .is_some_and(|rest| rest.chars().all(lex::is_space)) =>
                {
                    g.supervised = true;
                    self.warnings.push(
                        Diagnostic::warning(
                            line.whole(),
                            "please update your config not to use a bare supervised directive",
                        )
                        .help("write supervised=yes"),
                    );
                }
                _ => {
                    return Err(Diagnostic::error(
                        line.whole(),
                        "supervised must be 'yes' or 'no'",
                    )
                    .help(yes_no_help(t)));
                }
            }
        } else if let Some(v) = d("quiescent") {
            g.quiescent = yes_no(v, span_of(v), "quiescent")?;
        } else if let Some(v) = d("readdquiescent") {
            g.readdquiescent = yes_no(v, span_of(v), "readdquiescent")?;
        } else if let Some(v) = d("emailalert") {
            g.alerts.emailalert = Some(email(v, span_of(v))?);
        } else if let Some(v) = d("emailalertfreq") {
            g.alerts.emailalertfreq = alert_freq(v, span_of(v))?;
        } else if let Some(v) = d("emailalertstatus") {
            g.alerts.emailalertstatus = alert_status(v, span_of(v))?;
        } else if let Some(v) = d("emailalertfrom") {
            if v.is_empty() {
                return Err(Diagnostic::error(
                    line.whole(),
                    "no email from address specified",
                ));
            }
            g.emailalertfrom = Some(v.to_owned());
        } else if let Some(v) = d("cleanstop") {
            g.cleanstop = yes_no(v, span_of(v), "cleanstop")?;
        } else if let Some(v) = d("smtp") {
            g.alerts.smtp = Some(smtp(v, span_of(v))?);
        } else if let Some(v) = d("maintenancedir") {
            if v.is_empty() {
                return Err(Diagnostic::error(
                    line.whole(),
                    "maintenance directory not specified",
                ));
            }
            g.maintenancedir = Some(PathBuf::from(v));
            if self.opts.check_files && !Path::new(v).is_dir() {
                self.warnings.push(Diagnostic::warning(
                    span_of(v),
                    "maintenance directory does not exist",
                ));
            }
        } else if let Some(v) = d("risecount") {
            g.risecount = nonzero(v).ok_or_else(|| {
                Diagnostic::error(span_of(v), "invalid rise count")
                    .help("a whole number greater than 0 (default 1)")
                    .extension()
            })?;
        } else if let Some(v) = d("checkjitter") {
            g.checkjitter =
                lex::first_digits(v)
                    .map(lex::number)
                    .filter(|&n| n <= 100)
                    .ok_or_else(|| {
                        Diagnostic::error(span_of(v), "invalid check jitter")
                    .help("a percentage of the check interval from 0 to 100, e.g. checkjitter=20")
                    .extension()
                    })? as u32;
        } else if let Some(v) = d("nodeaddress") {
            let (node, addr) = node_address(v.trim_end(), span_of(v))?;
            self.globals.node_addresses.insert(node, addr);
        } else if d("timeout").is_some() {
            return Err(Diagnostic::error(
                line.whole(),
                "timeout directive deprecated in favour of checktimeout and negotiatetimeout",
            )
            .help("use checktimeout= (connect, ping, external checks) and negotiatetimeout= (negotiate checks)"));
        } else {
            return Err(self.unknown_global(line));
        }
        Ok(())
    }

    fn unknown_global(&self, line: Line<'_>) -> Diagnostic {
        let t = line.text;
        let indent = t.len() - t.trim_start_matches(lex::is_space).len();
        let word_len = t[indent..]
            .find(|c: char| c == '=' || lex::is_space(c))
            .unwrap_or(t.len() - indent);
        let name = &t[indent..indent + word_len];
        let mut d = Diagnostic::error(
            line.span(indent, word_len.max(1)),
            format!("Unknown command {} ", line.raw()),
        );
        if indent > 0 {
            d = d.label("indented line outside a virtual block").help(
                "a blank line (or a line with fewer than 4 spaces of indentation) ends a virtual block; \
                 remove the blank line, or un-indent global directives",
            );
        } else if is_block_directive(name) {
            d = d
                .label(format!("`{name}` belongs inside a virtual block"))
                .help("indent it with a TAB or at least 4 spaces under a virtual= line");
        } else {
            d = d
                .label("not a global directive")
                .help(format!("global directives are: {GLOBAL_DIRECTIVES}"));
        }
        d
    }

    // ---- virtual blocks -------------------------------------------------------------

    /// Read one virtual block starting at `head`. Returns the line that ended it (to be
    /// re-read as a global line), if any.
    fn block<'t>(
        &mut self,
        head: Line<'t>,
        inet6: bool,
        value: &'t str,
        iter: &mut impl Iterator<Item = Line<'t>>,
    ) -> Res<Option<Line<'t>>> {
        let family = if inet6 { Family::Inet6 } else { Family::Inet };
        let value_at = value.as_ptr() as usize - head.text.as_ptr() as usize;
        let value_span = head.span(value_at, value.trim_end().len().max(1));
        let mut b = self.block_head(head, family, value, value_span)?;
        let mut current = head.number;
        let mut ended_by = None;
        for line in iter.by_ref() {
            current = line.number;
            if line.text.trim_start_matches(lex::is_space).starts_with('#') {
                continue;
            }
            let Some(bl) = BlockLine::new(line) else {
                ended_by = Some(line);
                break;
            };
            self.block_line(&mut b, &bl)?;
        }
        // The line stock's `$line` points at when it checks for duplicates: the line that
        // ended the block, or the last line read.
        let end_line = Span {
            line: current,
            column: 1,
            offset: 0,
            len: 1,
        };
        self.finish_block(b, end_line)?;
        Ok(ended_by)
    }

    fn block_head(
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

    fn receive(&mut self, source: &str, span: Span) -> Res<Receive> {
        if let Some(r) = self.receive_cache.get(source) {
            return Ok(r.clone());
        }
        let r = Receive::new(source).map_err(|e| {
            Diagnostic::error(span, format!("invalid receive regular expression: {e}"))
                .extension()
                .help("receive is a Perl regular expression: escape metacharacters such as ( ) [ ] . * + ? with a backslash")
        })?;
        self.receive_cache.insert(source.to_owned(), r.clone());
        Ok(r)
    }

    fn block_line(&mut self, b: &mut Block, bl: &BlockLine<'_>) -> Res {
        let r = bl.rcmd();
        let name = directive_name(r);
        let d = |n: &str| {
            if name == n {
                lex::directive(r, n)
            } else {
                None
            }
        };
        let whole = || bl.directive_span();
        let sp = |v: &str| bl.span_of(v);
        if let Some((name, v6, v)) =
            directive_pair(r, "real").filter(|_| name == "real" || name == "real6")
        {
            if v6 != (b.family == Family::Inet6) {
                return Err(family_error(whole(), name, "real", b.family));
            }
            b.reals.push(RealTodo {
                value: v.to_owned(),
                value_span: sp(v),
                span: whole(),
                line: bl.line.number,
            });
        } else if let Some(v) = d("request").and_then(lex::quoted_greedy) {
            if v.is_empty() {
                return Err(Diagnostic::error(sp(v), "no request string specified"));
            }
            b.request = if v.starts_with('/') {
                v.to_owned()
            } else {
                format!("/{v}")
            };
        } else if let Some(v) = d("receive").and_then(lex::quoted_greedy) {
            if v.is_empty() {
                return Err(Diagnostic::error(sp(v), "invalid receive string"));
            }
            b.receive = Some(self.receive(v, sp(v))?);
        } else if let Some(v) = d("checktype") {
            if let Some(d) = lex::first_digits(v) {
                b.checktype = CheckType::Combined(lex::number(d).min(u64::from(u32::MAX)) as u32);
            } else {
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
                            Diagnostic::error(sp(v), CHECKTYPE_LIST).label("not a check type")
                        );
                    }
                };
            }
        } else if let Some(v) = d("checkcommand").map(quoted_or_all) {
            if v.is_empty() {
                return Err(Diagnostic::error(whole(), "invalid check command"));
            }
            b.checkcommand = v.to_owned();
        } else if let Some(v) = d("checktimeout") {
            b.checktimeout = Some(
                nonzero_any(v).ok_or_else(|| Diagnostic::error(sp(v), "invalid check timeout"))?,
            );
        } else if d("connecttimeout").is_some() {
            return Err(Diagnostic::error(
                whole(),
                "connecttimeout directive deprecated in favour of negotiatetimeout",
            )
            .help("use negotiatetimeout= (or checktimeout=)"));
        } else if let Some(v) = d("negotiatetimeout") {
            b.negotiatetimeout = Some(
                nonzero_any(v)
                    .ok_or_else(|| Diagnostic::error(sp(v), "invalid negotiate timeout"))?,
            );
        } else if let Some(v) = d("checkcount") {
            b.checkcount = Some(
                nonzero_any(v).ok_or_else(|| Diagnostic::error(sp(v), "invalid check count"))?,
            );
            self.warnings.push(checkcount_warning(whole()));
        } else if let Some(v) = d("failurecount") {
            b.failurecount = Some(
                nonzero_any(v).ok_or_else(|| Diagnostic::error(sp(v), "invalid failure count"))?,
            );
        } else if let Some(v) = d("checkinterval") {
            b.checkinterval = Some(
                nonzero_any(v).ok_or_else(|| Diagnostic::error(sp(v), "invalid checkinterval"))?,
            );
        } else if let Some(v) = d("checkport") {
            let d = lex::first_digits(v).ok_or_else(|| Diagnostic::error(sp(v), "invalid port"))?;
            let n = lex::number(d);
            if n == 0 || n >= 65536 {
                return Err(
                    Diagnostic::error(sp(v), "checkport must be in range 1..65536")
                        .help("a port from 1 to 65535"),
                );
            }
            b.checkport = Some(n as u16);
        } else if let Some(v) = d("login").and_then(lex::quoted_greedy) {
            b.login = non_empty(v, sp(v), "invalid login string")?;
        } else if let Some(v) = d("passwd").and_then(lex::quoted_greedy) {
            b.passwd = non_empty(v, sp(v), "invalid password")?;
        } else if let Some(v) = d("database").and_then(lex::quoted_greedy) {
            b.database = non_empty(v, sp(v), "invalid database")?;
        } else if let Some(v) = d("secret").and_then(lex::quoted_greedy) {
            b.secret = non_empty(v, sp(v), "invalid secret")?;
        } else if let Some(v) = d("load").and_then(lex::quoted_greedy) {
            if lex::first_word(v).is_none() {
                return Err(Diagnostic::error(sp(v), "invalid string for load testing"));
            }
        } else if let Some(v) = d("scheduler") {
            b.scheduler = lex::first_lower(v)
                .ok_or_else(|| {
                    Diagnostic::error(
                        sp(v),
                        "invalid scheduler, should be only lowercase letters (a-z)",
                    )
                    .help("e.g. rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh")
                })?
                .to_owned();
        } else if let Some(v) = d("persistent") {
            let d = lex::first_digits(v)
                .ok_or_else(|| Diagnostic::error(sp(v), "invalid persistent timeout"))?;
            b.persistent = Some(lex::number(d).min(u64::from(u32::MAX)) as u32);
        } else if let Some(v) = d("netmask") {
            let ok = if b.family == Family::Inet6 {
                v.bytes().all(|c| c.is_ascii_digit())
                    && !v.is_empty()
                    && (1..=128).contains(&lex::number(v))
            } else {
                v.parse::<Ipv4Addr>().is_ok() || is_loose_dotted_quad(v)
            };
            if !ok {
                let msg = if b.family == Family::Inet6 {
                    "invalid netmask: a prefix length between 1 and 128 is required"
                } else {
                    "invalid netmask: dotted quad notation is required"
                };
                return Err(Diagnostic::error(sp(v), msg));
            }
            b.netmask = Some(v.to_owned());
        } else if let Some(v) = d("schedflags") {
            let tok = v
                .split(lex::is_space)
                .find(|s| !s.is_empty())
                .ok_or_else(|| {
                    Diagnostic::error(whole(), "invalid sched-flags")
                        .help("e.g. schedflags=sh-port,sh-fallback")
                })?;
            b.schedflags = Some(tok.to_owned());
        } else if let Some(v) = d("protocol") {
            let Some(w) = lex::first_word(v) else {
                return Err(Diagnostic::error(sp(v), "invalid protocol"));
            };
            if b.protocol == Protocol::Fwm {
                if w != "fwm" {
                    return Err(Diagnostic::error(
                        sp(v),
                        "protocol must be fwm if the virtual service is a fwmark (a number)",
                    ));
                }
            } else {
                b.protocol = match w {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    _ => {
                        return Err(Diagnostic::error(
                            sp(v),
                            "protocol must be tcp or udp if the virtual service is an address and port",
                        ));
                    }
                };
            }
        } else if let Some(v) = d("ops") {
            b.ops = yes_no(v, sp(v), "ops")?;
        } else if let Some(v) = d("service") {
            let s = lex::first_word(v).and_then(Service::from_word).ok_or_else(|| {
                Diagnostic::error(sp(v), SERVICE_LIST).label("not a known service").help(
                    "for a service ldirectord has no check for, use checktype=connect, or checktype=external \
                     with your own checkcommand",
                )
            })?;
            b.service = Some(s);
            if s == Service::Ftp && b.login.is_empty() {
                b.login = "anonymous".to_owned();
            } else if s == Service::Sip && b.login.is_empty() {
                b.login = format!("ldirectord@{}", self.hostname());
            }
            if s == Service::Ftp && b.passwd.is_empty() {
                b.passwd = format!("ldirectord@{}", self.hostname());
            }
        } else if let Some(v) = d("httpmethod") {
            b.httpmethod = match lex::first_word(v)
                .map(|w| w.to_ascii_uppercase())
                .as_deref()
            {
                Some("GET") => HttpMethod::Get,
                Some("HEAD") => HttpMethod::Head,
                _ => return Err(Diagnostic::error(sp(v), "httpmethod must be GET or HEAD")),
            };
        } else if let Some(v) = d("virtualhost") {
            b.virtualhost = Some(lex::optionally_quoted(v).to_owned());
        } else if let Some((name, v6, v)) =
            directive_pair(r, "fallback").filter(|_| name == "fallback" || name == "fallback6")
        {
            if v6 != (b.family == Family::Inet6) {
                return Err(family_error(whole(), name, "fallback", b.family));
            }
            let port = b
                .host_port
                .as_ref()
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| "0".to_owned());
            b.fallback = Some(parse_fallback(v, Some(port), sp(v))?);
        } else if let Some(v) = d("fallbackcommand").map(quoted_or_all) {
            if v.is_empty() {
                return Err(Diagnostic::error(whole(), "invalid fallback command"));
            }
            b.fallbackcommand = Some(v.to_owned());
        } else if let Some(v) = d("quiescent") {
            b.quiescent = Some(yes_no(v, sp(v), "quiescent")?);
        } else if let Some(v) = d("emailalert") {
            b.emailalert = Some(email(v, sp(v))?);
        } else if let Some(v) = d("emailalertfreq") {
            b.emailalertfreq = Some(alert_freq(v, sp(v))?);
        } else if let Some(v) = d("emailalertstatus") {
            b.emailalertstatus = Some(alert_status(v, sp(v))?);
        } else if let Some(v) = d("monitorfile").map(quoted_or_all) {
            if self.opts.check_files
                && let Err(e) = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(v)
            {
                return Err(Diagnostic::error(
                    sp(v),
                    format!("unable to open monitorfile {v}: {}", errno_text(&e)),
                ));
            }
            b.monitorfile = Some(PathBuf::from(v));
        } else if let Some(v) = d("cleanstop") {
            b.cleanstop = Some(yes_no(v, sp(v), "cleanstop")?);
        } else if let Some(v) = d("smtp") {
            b.smtp = Some(smtp(v, sp(v))?);
        } else if let Some(v) = d("servicename") {
            b.servicename = Some(v.to_owned());
        } else if let Some(v) = d("comment") {
            b.comment = Some(v.to_owned());
        } else if let Some(v) = d("risecount") {
            b.risecount = Some(nonzero(v).ok_or_else(|| {
                Diagnostic::error(sp(v), "invalid rise count")
                    .help("a whole() number greater than 0 (default 1)")
                    .extension()
            })?);
        } else if let Some(v) = d("tlsverify") {
            b.tls_verify = Some(yes_no(v, sp(v), "tlsverify").map_err(Diagnostic::extension)?);
        } else if let Some(v) = d("tlssni") {
            b.tls_sni = Some(yes_no(v, sp(v), "tlssni").map_err(Diagnostic::extension)?);
        } else if let Some(v) = d("pgsqlrole") {
            let role = match v.trim_end() {
                "primary" => PgRole::Primary,
                "standby" => PgRole::Standby,
                _ => {
                    return Err(Diagnostic::error(
                        sp(v),
                        "pgsqlrole must be 'primary' or 'standby'",
                    )
                    .extension());
                }
            };
            b.pg_role = Some((role, sp(v)));
        } else if let Some(v) = d("pgsqlmaxlag") {
            let lag = parse_duration(v.trim_end()).ok_or_else(|| {
                Diagnostic::error(sp(v), "invalid pgsqlmaxlag")
                    .help("a duration such as 500ms, 10s or 1m (a bare number is seconds)")
                    .extension()
            })?;
            b.pg_max_lag = Some((lag, sp(v)));
        } else if let Some(v) = d("pgsqlsyncstate") {
            let mut set = BTreeSet::new();
            for word in v.split(',').map(|w| w.trim_matches(lex::is_space)) {
                set.insert(match word {
                    "sync" => SyncState::Sync,
                    "potential" => SyncState::Potential,
                    "async" => SyncState::Async,
                    "quorum" => SyncState::Quorum,
                    _ => {
                        return Err(Diagnostic::error(
                            sp(v),
                            format!("invalid pgsqlsyncstate \"{word}\""),
                        )
                        .help("a comma-separated list of sync, potential, async, quorum")
                        .extension());
                    }
                });
            }
            b.pg_sync = Some((set, sp(v)));
        } else if let Some(v) = d("realsource").map(str::trim_end) {
            if b.sources.candidates.is_some() {
                return Err(Diagnostic::error(whole(), "only one realsource= per virtual block")
                    .extension()
                    .label("a second source")
                    .help("a virtual service takes its dynamic real servers from one source; use realfilter= to narrow it, or another virtual block"));
            }
            b.sources.candidates = Some(real_candidates(v, sp(v))?);
            b.sources.spans.push(whole());
        } else if let Some(v) = d("realfilter").map(str::trim_end) {
            b.sources.filters.push(real_filter(v, sp(v))?);
            b.sources.spans.push(whole());
        } else if let Some(v) = d("realweights").map(str::trim_end) {
            b.sources.weights = host_weights(v, sp(v), "realweights")?;
            b.sources.spans.push(whole());
        } else if let Some(v) = d("realdefault").map(str::trim_end) {
            b.sources.default = Some(real_default(v, sp(v))?);
            b.sources.spans.push(whole());
        } else {
            let name_len = r
                .find(|c: char| c == '=' || lex::is_space(c))
                .unwrap_or(r.len());
            let name = &r[..name_len];
            let mut d = Diagnostic::error(
                bl.span_of(&r[..name_len.max(1).min(r.len())]),
                format!("Unknown command \"{}\"", bl.line.raw()),
            );
            d = if let Some(hint) = quote_hint(r) {
                d.label("unterminated or missing quotes").help(hint)
            } else if is_global_only(name) {
                d.label(format!("`{name}` is a global directive"))
                    .help("move it above the first virtual= line, without indentation")
            } else if r.trim().is_empty() {
                d.label("whitespace-only line inside a virtual block")
                    .help("delete the trailing whitespace")
            } else {
                d.label("not a virtual-block directive")
                    .help(format!("virtual-block directives are: {BLOCK_DIRECTIVES}"))
            };
            return Err(d);
        }
        Ok(())
    }

    /// Resolve everything stock resolves after a block, in stock's order (fallback,
    /// virtual, reals), check for duplicates, and build the model.
    fn finish_block(&mut self, mut b: Block, end_line: Span) -> Res {
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
        let _ = todo.line;
        Ok(())
    }

    fn resolve_fallback(
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

    fn host(&self, name: &str, family: Family) -> Option<IpAddr> {
        // ld_gethostbyname: `[...]` brackets are stripped first.
        let bytes = name.as_bytes();
        let name = if bytes.contains(&b'[') {
            match (name.find('['), name.rfind(']')) {
                (Some(a), Some(z)) if a < z => &name[a + 1..z],
                _ => name,
            }
        } else {
            name
        };
        self.opts.resolver.host(name, family)
    }

    fn port(&self, text: &str, proto: &str) -> Option<u16> {
        if !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()) {
            let n = lex::number(text);
            return (n < 65536).then_some(n as u16);
        }
        self.opts.resolver.service(text, proto)
    }

    /// Stock's warnings that need the whole file.
    fn check_sanity(&mut self) {
        let _ = self.path;
    }
}

/// Stock's virtual id as a value: `tcp:1.2.3.4:80`, `fwm:5` (the mark as typed).
#[derive(Clone, PartialEq, Eq, Hash)]
enum StockId {
    Inet(Protocol, IpAddr, u16),
    Fwmark(Family, String),
}

impl StockId {
    fn text(&self) -> String {
        match self {
            StockId::Inet(proto, ip, port) => format!("{}:{}:{port}", proto.as_str(), ip_text(*ip)),
            StockId::Fwmark(Family::Inet, m) => format!("fwm:{m}"),
            StockId::Fwmark(Family::Inet6, m) => format!("fwm6:{m}"),
        }
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

/// `^virtual(6)?\s*=\s*(.*)`.
fn virtual_head(line: &str) -> Option<(bool, &str)> {
    if let Some(v) = lex::directive(line, "virtual6") {
        return Some((true, v));
    }
    lex::directive(line, "virtual").map(|v| (false, v))
}

/// `^(NAME(6)?)\s*=\s*(.*)`: (name as written, has 6, value).
fn directive_pair<'a>(r: &'a str, name: &'static str) -> Option<(&'a str, bool, &'a str)> {
    let rest = r.strip_prefix(name)?;
    if let Some(after) = rest.strip_prefix('6') {
        return lex::directive(after, "").map(|v| (&r[..name.len() + 1], true, v));
    }
    lex::directive(rest, "").map(|v| (&r[..name.len()], false, v))
}

fn directive_fallback(t: &str) -> Option<(bool, &str)> {
    directive_pair(t, "fallback").map(|(_, six, v)| (six, v))
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

/// `^NAME\s*=\s*\"(.*)\"` or else `^NAME\s*=\s*(.*)`, given the value.
fn quoted_or_all(v: &str) -> &str {
    lex::quoted_greedy(v).unwrap_or(v)
}

/// The leading word of a line: up to the first space or `=`.
fn directive_name(line: &str) -> &str {
    let end = line
        .find(|c: char| c == '=' || lex::is_space(c))
        .unwrap_or(line.len());
    &line[..end]
}

/// Global `checktimeout`/`negotiatetimeout`: `$1 =~ /(\d+)/ && $1 && $1 > 0`.
fn positive_timeout(v: &str) -> Option<u32> {
    let d = lex::first_digits(v)?;
    let n = lex::number(d);
    (n > 0).then(|| n.min(u64::from(u32::MAX)) as u32)
}

/// `$1 =~ /(\d+)/ && $1` with the value > 0 (globals).
fn nonzero(v: &str) -> Option<u32> {
    positive_timeout(v)
}

/// Block counters: `$1 =~ /(\d+)/ && $1` — Perl's string truthiness lets "00" through.
fn nonzero_any(v: &str) -> Option<u32> {
    let d = lex::first_digits(v)?;
    lex::truthy(d).then(|| lex::number(d).min(u64::from(u32::MAX)) as u32)
}

fn non_empty(v: &str, span: Span, message: &str) -> Res<String> {
    if v.is_empty() {
        Err(Diagnostic::error(span, message))
    } else {
        Ok(v.to_owned())
    }
}

fn yes_no(v: &str, span: Span, name: &str) -> Res<bool> {
    lex::yes_no(v).ok_or_else(|| {
        Diagnostic::error(span, format!("{name} must be 'yes' or 'no'"))
            .label("not exactly yes or no")
            .help(yes_no_help(v))
    })
}

fn yes_no_help(v: &str) -> String {
    let trimmed = v.trim_end_matches(|c: char| lex::is_space(c));
    if trimmed != v || v.contains('#') {
        "stock ldirectord compares this value exactly: remove trailing spaces, carriage returns (CRLF line ends) and inline # comments".to_owned()
    } else {
        "write yes or no".to_owned()
    }
}

fn email(v: &str, span: Span) -> Res<String> {
    let a = lex::strip_enclosing_quotes(v);
    if a.is_empty() {
        Err(Diagnostic::error(span, "no email address specified"))
    } else {
        Ok(a.to_owned())
    }
}

/// `^emailalertfreq\s*=\s*(\d*)`: digits must start the value.
fn alert_freq(v: &str, span: Span) -> Res<u32> {
    let d: String = v.chars().take_while(char::is_ascii_digit).collect();
    if d.is_empty() {
        return Err(Diagnostic::error(span, "invalid email alert frequency")
            .help("a number of seconds, 0 to disable reminders"));
    }
    Ok(lex::number(&d).min(u64::from(u32::MAX)) as u32)
}

fn alert_status(v: &str, span: Span) -> Res<AlertStatus> {
    let items: Vec<&str> = split_commas(v);
    let none = items.iter().filter(|&&i| i == "none").count();
    let mut s = AlertStatus::NONE;
    for i in items {
        match i {
            "none" => continue,
            "all" => s = AlertStatus::ALL,
            "starting" => s.starting = true,
            "stopping" => s.stopping = true,
            "running" => s.running = true,
            "reloading" => s.reloading = true,
            other => {
                return Err(Diagnostic::error(
                    span,
                    format!("invalid email alert status at: \"{other}\""),
                )
                .help(
                    "a comma-separated list of all, none, starting, running, stopping, reloading",
                ));
            }
        }
        if none > 0 {
            return Err(Diagnostic::error(
                span,
                format!("invalid email alert status: \"{i}\" specified with \"none\""),
            ));
        }
    }
    Ok(s)
}

/// Perl's `split /\s*,\s*/` (trailing empty fields dropped).
fn split_commas(v: &str) -> Vec<&str> {
    let mut items: Vec<&str> = v
        .split(',')
        .enumerate()
        .map(|(n, s)| {
            if n == 0 {
                s.trim_end_matches(lex::is_space)
            } else {
                s.trim_matches(lex::is_space)
            }
        })
        .collect();
    while items.last() == Some(&"") {
        items.pop();
    }
    items
}

fn smtp(v: &str, span: Span) -> Res<String> {
    let host: String = v
        .chars()
        .take_while(|&c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        .collect();
    if host.is_empty() {
        return Err(Diagnostic::error(span, "invalid SMTP server address")
            .help("a host name or IP address, without quotes"));
    }
    Ok(host)
}

fn parse_fallback(v: &str, inherit_port: Option<String>, span: Span) -> Res<FallbackTodo> {
    let (addr, fwd) = lex::fallback_tokens(v).unwrap_or((v, None));
    let forward = match fwd {
        None | Some("gate") => Forward::Gate,
        Some("masq") => Forward::Masq,
        Some("ipip") => Forward::Ipip,
        Some(_) => {
            return Err(
                Diagnostic::error(span, "forward method must be gate, masq or ipip")
                    .help("fallback=ADDRESS[:PORT] [gate|masq|ipip]"),
            );
        }
    };
    let (host, port) = lex::split_host_port(addr);
    Ok(FallbackTodo {
        host: host.to_owned(),
        port: port.map(str::to_owned).or(inherit_port),
        forward,
        span,
    })
}

fn checkcount_warning(span: Span) -> Diagnostic {
    Diagnostic::warning(
        span,
        "checkcount option is deprecated and slated for removal.  please see 'failurecount'",
    )
}

/// `\d+\.\d+\.\d+\.\d+` exactly (stock accepts octets over 255 here).
fn is_loose_dotted_quad(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

fn parse_duration(v: &str) -> Option<Duration> {
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        return Some(Duration::from_secs(lex::number(v)));
    }
    humantime::parse_duration(v).ok()
}

fn errno_text(e: &std::io::Error) -> String {
    // Perl's `$!` is the bare strerror text; std adds " (os error N)".
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
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

fn quote_hint(r: &str) -> Option<&'static str> {
    let name = r
        .split(|c: char| c == '=' || lex::is_space(c))
        .next()
        .unwrap_or("");
    let quoted = [
        "request", "receive", "login", "passwd", "database", "secret", "load",
    ];
    if quoted.contains(&name) && lex::directive(r, name).is_some() {
        Some(
            "this value must be in double quotes, and a # inside quotes starts a comment in stock ldirectord (it truncates the value)",
        )
    } else {
        None
    }
}

fn is_block_directive(name: &str) -> bool {
    BLOCK_DIRECTIVES
        .split([',', ' ', '(', ')', ':'])
        .any(|d| !d.is_empty() && d == name)
        && !GLOBAL_DIRECTIVES
            .split([',', ' ', '(', ')', ':'])
            .any(|d| d == name)
}

fn is_global_only(name: &str) -> bool {
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
        "nodeaddress",
        "timeout",
    ]
    .contains(&name)
}

// ---- dynamic real servers (extension) --------------------------------------------------

const REALSOURCE_HELP: &str = "realsource=resource RSC (nodes where a Pacemaker resource runs), realsource=partition (the partition's members), realsource=command CMD ARGS... (the words it prints), or realsource=list HOST[,WEIGHT] ...";

/// `"..."` around a whole value is removed (commands and expressions may be quoted).
fn unquote(v: &str) -> &str {
    let v = v.trim_matches(lex::is_space);
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// The first word of `v` and the rest, trimmed.
fn word_and_rest(v: &str) -> (&str, &str) {
    match v.split_once(lex::is_space) {
        Some((w, r)) => (w, r.trim_matches(lex::is_space)),
        None => (v, ""),
    }
}

fn real_candidates(v: &str, span: Span) -> Res<RealCandidates> {
    Ok(match word_and_rest(v) {
        ("resource", r) if !r.is_empty() && !r.contains(lex::is_space) => {
            RealCandidates::Resource(r.to_owned())
        }
        ("partition", "") => RealCandidates::Partition,
        ("command", c) if !unquote(c).is_empty() => RealCandidates::Command(unquote(c).to_owned()),
        ("list", l) if !l.is_empty() => {
            RealCandidates::List(host_weights(l, span, "realsource=list")?)
        }
        _ => {
            return Err(Diagnostic::error(
                span,
                format!("realsource={v}: expected resource RSC, partition, command CMD... or list HOST[,WEIGHT]..."),
            )
            .extension()
            .help(REALSOURCE_HELP));
        }
    })
}

fn real_filter(v: &str, span: Span) -> Res<RealFilter> {
    let help = "realfilter=attribute NAME REGEX (keep nodes whose transient attribute NAME matches REGEX as a whole), or realfilter=command CMD ARGS... (keep a candidate when CMD ARGS... CANDIDATE prints t)";
    match word_and_rest(v) {
        ("attribute", rest) => {
            let (name, regex) = word_and_rest(rest);
            let regex = unquote(regex);
            if name.is_empty() || regex.is_empty() {
                return Err(Diagnostic::error(
                    span,
                    format!("realfilter={v}: expected attribute NAME REGEX"),
                )
                .extension()
                .help(help));
            }
            let pattern = ValuePattern::new(regex).map_err(|e| {
                Diagnostic::error(span, format!("invalid realfilter regular expression: {e}"))
                    .extension()
                    .help("REGEX is a Perl-compatible regular expression matched against the whole attribute value, e.g. HS:sync|HS:potential|HS:async")
            })?;
            Ok(RealFilter::Attribute {
                name: name.to_owned(),
                pattern,
            })
        }
        ("command", c) if !unquote(c).is_empty() => Ok(RealFilter::Command(unquote(c).to_owned())),
        _ => Err(Diagnostic::error(
            span,
            format!("realfilter={v}: expected attribute NAME REGEX or command CMD..."),
        )
        .extension()
        .help(help)),
    }
}

/// `HOST[,WEIGHT] ...` (lvsdr's `weight_of_realservers`).
fn host_weights(v: &str, span: Span, what: &str) -> Res<Vec<(String, Option<u32>)>> {
    let bad = |item: &str| {
        Diagnostic::error(span, format!("{what}: bad item \"{item}\""))
            .extension()
            .help("a space-separated list of HOST or HOST,WEIGHT, WEIGHT a whole number (e.g. node2,3 10.0.0.9,0)")
    };
    let items: Vec<&str> = v.split(lex::is_space).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Err(bad(v));
    }
    items
        .into_iter()
        .map(|item| match item.split_once(',') {
            None => Ok((item.to_owned(), None)),
            Some((h, w))
                if !h.is_empty() && !w.is_empty() && w.bytes().all(|c| c.is_ascii_digit()) =>
            {
                let n = lex::number(w);
                u32::try_from(n)
                    .map(|n| (h.to_owned(), Some(n)))
                    .map_err(|_| bad(item))
            }
            Some(_) => Err(bad(item)),
        })
        .collect()
}

fn real_default(v: &str, span: Span) -> Res<(Forward, Option<u32>)> {
    let err = || {
        Diagnostic::error(span, format!("realdefault={v}: expected FORWARD [WEIGHT]"))
            .extension()
            .help("FORWARD is gate, masq or ipip (the forwarding method of the dynamic real servers, default gate); WEIGHT the weight of a host without one (default 1)")
    };
    let mut words = v.split(lex::is_space).filter(|s| !s.is_empty());
    let forward = match words.next() {
        Some("gate") => Forward::Gate,
        Some("masq") => Forward::Masq,
        Some("ipip") => Forward::Ipip,
        _ => return Err(err()),
    };
    let weight = match words.next() {
        None => None,
        Some(w) if w.bytes().all(|c| c.is_ascii_digit()) => {
            Some(u32::try_from(lex::number(w)).map_err(|_| err())?)
        }
        Some(_) => return Err(err()),
    };
    if words.next().is_some() {
        return Err(err());
    }
    Ok((forward, weight))
}

fn real_sources(todo: SourcesTodo) -> Res<Option<RealSources>> {
    let Some(candidates) = todo.candidates else {
        return match todo.spans.first() {
            None => Ok(None),
            Some(span) => Err(Diagnostic::error(
                *span,
                "realfilter=, realweights= and realdefault= need a realsource= in the same virtual block",
            )
            .extension()
            .help(REALSOURCE_HELP)),
        };
    };
    let (forward, default_weight) = todo.default.unwrap_or((Forward::Gate, None));
    let default_weight = default_weight.unwrap_or(1);
    Ok(Some(RealSources {
        spans: todo.spans,
        candidates,
        filters: todo.filters,
        weights: todo
            .weights
            .into_iter()
            .map(|(h, w)| (h, w.unwrap_or(default_weight)))
            .collect(),
        default_weight,
        forward,
    }))
}

/// `nodeaddress=NODE ADDRESS`.
fn node_address(v: &str, span: Span) -> Res<(String, IpAddr)> {
    let err = |m: String| {
        Diagnostic::error(span, m)
            .extension()
            .help("nodeaddress=NODE ADDRESS, e.g. nodeaddress=node2 10.0.0.2 (one line per node)")
    };
    let words: Vec<&str> = v.split(lex::is_space).filter(|s| !s.is_empty()).collect();
    let [node, addr] = words[..] else {
        return Err(err(format!("nodeaddress={v}: expected NODE ADDRESS")));
    };
    let ip = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map_err(|_| err(format!("nodeaddress: \"{addr}\" is not an IP address")))?;
    Ok((node.to_owned(), ip))
}
