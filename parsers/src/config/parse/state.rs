//! The reader's state (options, the globals read so far, warnings, caches) and the
//! services every directive may use: host, port and service-name resolution, the host
//! name, and compiled `receive=` patterns.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use crate::config::diag::Diagnostic;
use crate::config::lex;
use crate::config::model::{Fallback, Family, Globals, Protocol, Receive, Span, VirtualService};
use crate::config::resolve::{Resolver, SystemResolver};

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

/// The reader's state while it reads one file.
pub(super) struct Parser<'o, 'r> {
    pub(super) opts: &'o ParseOptions<'r>,
    pub(super) globals: Globals,
    /// The global fallbacks resolved for UDP (a service name may differ per protocol).
    pub(super) fallback_udp: Option<Fallback>,
    pub(super) fallback6_udp: Option<Fallback>,
    pub(super) virtuals: Vec<VirtualService>,
    pub(super) warnings: Vec<Diagnostic>,
    /// Stock's virtual ids seen so far, for `duplicate virtual server`.
    pub(super) seen: HashSet<StockId>,
    /// Identical `receive=` patterns compile once.
    pub(super) receive_cache: HashMap<String, Receive>,
    pub(super) hostname: Option<String>,
    /// `syncmaxlen=`, `syncgroup=`, `syncport=`, `syncttl=` as read (they may come before
    /// `syncdaemon=`); joined to it when the file is read.
    pub(super) sync_options: SyncOptions,
}

/// The options of the sync daemon, and where the first of them was given (for the error
/// when there is no `syncdaemon=`).
#[derive(Default)]
pub(super) struct SyncOptions {
    pub(super) maxlen: Option<u16>,
    pub(super) group: Option<IpAddr>,
    pub(super) port: Option<u16>,
    pub(super) ttl: Option<u8>,
    pub(super) first: Option<(&'static str, Span)>,
}

/// A step of the reader: its result, or the error that stops it (stock stops at the first).
pub(super) type Res<T = ()> = Result<T, Diagnostic>;

impl<'o, 'r> Parser<'o, 'r> {
    pub(super) fn new(opts: &'o ParseOptions<'r>) -> Self {
        Parser {
            opts,
            globals: Globals::default(),
            fallback_udp: None,
            fallback6_udp: None,
            virtuals: Vec::new(),
            warnings: Vec::new(),
            seen: HashSet::new(),
            receive_cache: HashMap::new(),
            hostname: None,
            sync_options: SyncOptions::default(),
        }
    }

    /// Stock's `ldirectord@HOSTNAME` host name, looked up once.
    pub(super) fn hostname(&mut self) -> String {
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

    /// A `receive=` pattern, compiled once per distinct text.
    pub(super) fn receive(&mut self, source: &str, span: Span) -> Res<Receive> {
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

    /// `ld_gethostbyname`: a host in `family`, through the resolver.
    pub(super) fn host(&self, name: &str, family: Family) -> Option<IpAddr> {
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

    /// A port number, or a service name through the resolver for `proto`.
    pub(super) fn port(&self, text: &str, proto: &str) -> Option<u16> {
        if !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()) {
            let n = lex::number(text);
            return (n < 65536).then_some(n as u16);
        }
        self.opts.resolver.service(text, proto)
    }
}

/// Stock's virtual id as a value: `tcp:1.2.3.4:80`, `fwm:5` (the mark as typed).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum StockId {
    Inet(Protocol, IpAddr, u16),
    Fwmark(Family, String),
}

impl StockId {
    pub(super) fn text(&self) -> String {
        match self {
            StockId::Inet(proto, ip, port) => {
                format!("{}:{}", proto.as_str(), SocketAddr::new(*ip, *port))
            }
            StockId::Fwmark(Family::Inet, m) => format!("fwm:{m}"),
            StockId::Fwmark(Family::Inet6, m) => format!("fwm6:{m}"),
        }
    }
}
