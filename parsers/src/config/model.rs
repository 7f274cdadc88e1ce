//! The typed model of an `ldirectord.cf`: what the parser produces and what every other
//! part of ldirectord-rs consumes. Every default is resolved here (timeouts per §2.8 of the
//! reference, service by port, request/receive inheritance), so consumers never re-derive
//! ldirectord's rules. Items keep the [`Span`] they were read from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Where an item came from: 1-based line and column, and the byte range in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub len: usize,
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The path the file was read from (as resolved by the caller).
    pub path: PathBuf,
    pub globals: Globals,
    /// Virtual services in file order.
    pub virtuals: Vec<VirtualService>,
}

pub use crate::ipvs::{Family, Forward, Netmask, SyncDaemon, SyncRole};

/// IPVS protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Protocol {
    Tcp,
    Udp,
    /// Firewall-mark service.
    Fwm,
}

impl Protocol {
    /// ldirectord's word: `tcp`, `udp`, `fwm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Fwm => "fwm",
        }
    }
}

/// Extension `checkspread=`: how the checks of one interval are placed in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CheckSpread {
    /// Each check in a slot of its own, spread over the interval; every run starts up to
    /// this percentage of the interval after its slot, at random (`checkspread=P`,
    /// default 0: on the slot).
    Percent(u32),
    /// Every check at the same instant of its interval (`checkspread=lockstep`).
    Lockstep,
}

impl Default for CheckSpread {
    fn default() -> Self {
        CheckSpread::Percent(0)
    }
}

impl std::fmt::Display for CheckSpread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckSpread::Percent(p) => write!(f, "{p}"),
            CheckSpread::Lockstep => f.write_str("lockstep"),
        }
    }
}

/// Extension `engine=`: how the daemon programs IPVS. The command line's `--engine` wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum EngineName {
    /// Generic netlink (the default).
    #[default]
    Netlink,
    /// The `ipvsadm` program, with stock's arguments.
    Ipvsadm,
    /// The embedded TCP forwarder (no IPVS needed).
    Userspace,
}

impl EngineName {
    /// The word in `engine=` and `--engine`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineName::Netlink => "netlink",
            EngineName::Ipvsadm => "ipvsadm",
            EngineName::Userspace => "userspace",
        }
    }

    /// The engine a word names, if any.
    pub fn from_word(word: &str) -> Option<EngineName> {
        [
            EngineName::Netlink,
            EngineName::Ipvsadm,
            EngineName::Userspace,
        ]
        .into_iter()
        .find(|e| e.as_str() == word)
    }
}

/// Extension `checkpath=`: which way a check of a `gate` or `ipip` real travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum CheckPath {
    /// To the real's own address, as stock ldirectord checks (the default).
    #[default]
    Direct,
    /// To the virtual's address and port through a one-real firewall-mark helper
    /// service, so the kernel delivers it as it delivers clients' traffic (to the real's
    /// MAC, or inside an IPIP packet). `masq` reals are still checked directly.
    Forwarding,
}

impl CheckPath {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckPath::Direct => "direct",
            CheckPath::Forwarding => "forwarding",
        }
    }

    /// The path a word names, if any.
    pub fn from_word(word: &str) -> Option<CheckPath> {
        [CheckPath::Direct, CheckPath::Forwarding]
            .into_iter()
            .find(|p| p.as_str() == word)
    }
}

/// The first firewall mark of the helper services of `checkpath=forwarding` when
/// `checkmarkbase=` is not set: 0x6c640000 ("ld"), far above the small marks operators
/// usually give their own fwmark virtuals.
pub const DEFAULT_CHECK_MARK_BASE: u32 = 0x6c64_0000;

/// How many marks from `checkmarkbase=` on belong to the director's helper services.
pub const CHECK_MARK_COUNT: u32 = 0x1_0000;

/// What IPVS is told to balance: an address and port, or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum VirtualAddress {
    Inet { ip: IpAddr, port: u16 },
    Fwmark { mark: u32, family: Family },
}

/// `checktype=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum CheckType {
    Connect,
    Negotiate,
    Ping,
    External,
    ExternalPerl,
    On,
    Off,
    /// `checktype=N`: a negotiate check, then N connect checks after each success.
    Combined(u32),
}

impl CheckType {
    /// The word used in ldirectord's real-server identity and in `--probe` output.
    pub fn name(self) -> &'static str {
        match self {
            CheckType::Connect => "connect",
            CheckType::Negotiate => "negotiate",
            CheckType::Ping => "ping",
            CheckType::External => "external",
            CheckType::ExternalPerl => "external-perl",
            CheckType::On => "on",
            CheckType::Off => "off",
            CheckType::Combined(_) => "combined",
        }
    }
}

/// `service=`: the protocol a negotiate check speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Service {
    Dns,
    Ftp,
    Http,
    Https,
    HttpProxy,
    Imap,
    Imaps,
    Ldap,
    Ldaps,
    Mysql,
    Nntp,
    None,
    Oracle,
    Pop,
    Pops,
    Radius,
    Pgsql,
    Simpletcp,
    Sip,
    Smtp,
    Submission,
}

impl Service {
    /// Every service, in the order of ldirectord's error message.
    pub const ALL: [Service; 21] = [
        Service::Dns,
        Service::Ftp,
        Service::Http,
        Service::Https,
        Service::HttpProxy,
        Service::Imap,
        Service::Imaps,
        Service::Ldap,
        Service::Ldaps,
        Service::Mysql,
        Service::Nntp,
        Service::None,
        Service::Oracle,
        Service::Pop,
        Service::Pops,
        Service::Radius,
        Service::Pgsql,
        Service::Simpletcp,
        Service::Sip,
        Service::Smtp,
        Service::Submission,
    ];

    /// ldirectord's word for the service.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Dns => "dns",
            Service::Ftp => "ftp",
            Service::Http => "http",
            Service::Https => "https",
            Service::HttpProxy => "http_proxy",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Ldap => "ldap",
            Service::Ldaps => "ldaps",
            Service::Mysql => "mysql",
            Service::Nntp => "nntp",
            Service::None => "none",
            Service::Oracle => "oracle",
            Service::Pop => "pop",
            Service::Pops => "pops",
            Service::Radius => "radius",
            Service::Pgsql => "pgsql",
            Service::Simpletcp => "simpletcp",
            Service::Sip => "sip",
            Service::Smtp => "smtp",
            Service::Submission => "submission",
        }
    }

    pub fn from_word(word: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// The service ldirectord assumes for a virtual port when `service=` is not given.
    pub fn for_port(port: u16) -> Service {
        match port {
            21 => Service::Ftp,
            25 => Service::Smtp,
            53 => Service::Dns,
            80 => Service::Http,
            110 => Service::Pop,
            119 => Service::Nntp,
            143 => Service::Imap,
            389 => Service::Ldap,
            443 => Service::Https,
            587 => Service::Submission,
            636 => Service::Ldaps,
            993 => Service::Imaps,
            995 => Service::Pops,
            1521 => Service::Oracle,
            1812 => Service::Radius,
            3128 => Service::HttpProxy,
            3306 => Service::Mysql,
            5060 => Service::Sip,
            5432 => Service::Pgsql,
            _ => Service::None,
        }
    }

    /// The default port of the service, used as check port for reals without a port.
    pub fn default_port(self) -> Option<u16> {
        Some(match self {
            Service::Ftp => 21,
            Service::Smtp => 25,
            Service::Dns => 53,
            Service::Http => 80,
            Service::Pop => 110,
            Service::Nntp => 119,
            Service::Imap => 143,
            Service::Ldap => 389,
            Service::Https => 443,
            Service::Submission => 587,
            Service::Ldaps => 636,
            Service::Imaps => 993,
            Service::Pops => 995,
            Service::Oracle => 1521,
            Service::Radius => 1812,
            Service::HttpProxy => 3128,
            Service::Mysql => 3306,
            Service::Sip => 5060,
            Service::Pgsql => 5432,
            Service::None | Service::Simpletcp => return None,
        })
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `httpmethod=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum HttpMethod {
    Get,
    Head,
}

/// A compiled `receive=` pattern: Perl-compatible (PCRE2), matched unanchored and
/// case-sensitively like ldirectord's `/$receive/`. Compared and hashed by its source text.
#[derive(Clone, Serialize)]
pub struct Receive {
    source: String,
    #[serde(skip)]
    regex: std::sync::Arc<pcre2::bytes::Regex>,
}

impl Receive {
    /// Compile `source` with Perl semantics.
    pub fn new(source: &str) -> Result<Receive, pcre2::Error> {
        let regex = pcre2::bytes::RegexBuilder::new().build(source)?;
        Ok(Receive {
            source: source.to_owned(),
            regex: std::sync::Arc::new(regex),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.source
    }
    /// Whether the pattern matches anywhere in `haystack`. A match error (e.g. PCRE2's
    /// backtracking limit) counts as no match: the check then fails, it never panics.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.regex.is_match(haystack).unwrap_or(false)
    }
}

impl fmt::Debug for Receive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Receive({:?})", self.source)
    }
}
impl PartialEq for Receive {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for Receive {}
impl std::hash::Hash for Receive {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.source.hash(state)
    }
}

/// The role a PostgreSQL real server must have to be up (extension `pgsqlrole=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PgRole {
    /// Not in recovery: accepts writes.
    Primary,
    /// In recovery (`pg_is_in_recovery()`): a hot standby.
    Standby,
}

/// A standby's `sync_state` as its primary reports it in `pg_stat_replication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum SyncState {
    Sync,
    Potential,
    Async,
    Quorum,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Sync => "sync",
            SyncState::Potential => "potential",
            SyncState::Async => "async",
            SyncState::Quorum => "quorum",
        }
    }
}

/// The PostgreSQL role check (extension directives `pgsqlrole=`, `pgsqlmaxlag=`,
/// `pgsqlsyncstate=`), used instead of the stock SQL row count when `pgsqlrole` is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PgRoleCheck {
    pub role: PgRole,
    /// Standby only: the replay lag must be below this.
    pub max_lag: Option<Duration>,
    /// Standby only: the sync states (as the primary reports them) that count as up.
    /// Empty: any.
    pub sync_states: BTreeSet<SyncState>,
}

/// A whole-value pattern for `realfilter=attribute NAME REGEX` (extension): Perl-compatible
/// (PCRE2, like `receive=`), matched against the entire attribute value, as lvsdr's
/// `grep -Ex`. Compiled when the file is read; compared by its source text.
#[derive(Clone, Serialize)]
pub struct ValuePattern {
    source: String,
    #[serde(skip)]
    regex: std::sync::Arc<pcre2::bytes::Regex>,
}

impl ValuePattern {
    /// Compile `source`, anchored at both ends.
    pub fn new(source: &str) -> Result<ValuePattern, pcre2::Error> {
        let regex = pcre2::bytes::RegexBuilder::new().build(&format!("^(?:{source})$"))?;
        Ok(ValuePattern {
            source: source.to_owned(),
            regex: std::sync::Arc::new(regex),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.source
    }
    /// Whether the pattern matches all of `value` (a match error counts as no match).
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value.as_bytes()).unwrap_or(false)
    }
}

impl fmt::Debug for ValuePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValuePattern({:?})", self.source)
    }
}
impl PartialEq for ValuePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for ValuePattern {}

/// Where a virtual service's dynamic real servers come from (extension `realsource=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RealCandidates {
    /// `resource RSC`: the nodes where the Pacemaker resource runs (`crm_resource --locate`).
    Resource(String),
    /// `partition`: the members of the cluster partition (`crm_node -p`).
    Partition,
    /// `command CMD ARGS...`: the words this shell command prints. Failing or printing
    /// nothing is an error, and the last good set is kept.
    Command(String),
    /// `list HOST[,WEIGHT] ...`: a fixed list; a weight here is that host's weight.
    List(Vec<(String, Option<u32>)>),
}

/// A filter over the candidates (extension `realfilter=`); all filters must keep a
/// candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RealFilter {
    /// `attribute NAME REGEX`: keep a node whose transient (reboot-lifetime) attribute
    /// `NAME` matches `REGEX` as a whole; a node without the attribute is dropped.
    Attribute { name: String, pattern: ValuePattern },
    /// `command CMD ARGS...`: keep a candidate for which `CMD ARGS... CANDIDATE` prints `t`.
    Command(String),
}

/// The dynamic real servers of one virtual service (extension directives `realsource=`,
/// `realfilter=`, `realfallback=`, `realweights=`, `realdefault=`): lvsdr-style real servers chosen by the
/// cluster, refreshed while running, added next to the block's static `real=` lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealSources {
    /// The directive lines, in file order (the first is the `realsource=`'s or the first
    /// of them).
    pub spans: Vec<Span>,
    pub candidates: RealCandidates,
    pub filters: Vec<RealFilter>,
    /// `realfallback=` (extension): the filters that choose the pool instead when
    /// `filters` keep none of the candidates (e.g. PostgreSQL standbys that stream none of
    /// them, `HS:alone`, while a primary is elected). Empty: an empty pool stays empty.
    pub fallback_filters: Vec<RealFilter>,
    /// `realweights=HOST,WEIGHT ...`: weights by host (node name or address as printed).
    pub weights: Vec<(String, u32)>,
    /// `realdefault=FORWARD [WEIGHT]`: the weight of a host without one (default 1)...
    pub default_weight: u32,
    /// ...and the forwarding method of every dynamic real (default gate, as lvsdr).
    pub forward: Forward,
}

impl RealSources {
    /// The weight of `host`: its weight in a `list` source, else `realweights=`, else the
    /// default.
    pub fn weight_of(&self, host: &str) -> u32 {
        if let RealCandidates::List(items) = &self.candidates
            && let Some(w) = items.iter().find(|(h, _)| h == host).and_then(|(_, w)| *w)
        {
            return w;
        }
        self.weights
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, w)| *w)
            .unwrap_or(self.default_weight)
    }
}

/// How one virtual service checks its real servers, with every default resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CheckSettings {
    pub checktype: CheckType,
    /// The service a negotiate check speaks (`none` = always up).
    pub service: Service,
    /// `checkport=`; `None` means the real's port, else the service's default port.
    pub checkport: Option<u16>,
    /// `request=`, always starting with `/` (default `/`).
    pub request: String,
    /// `receive=`, `None` when not set.
    pub receive: Option<Receive>,
    pub httpmethod: HttpMethod,
    /// `virtualhost=`: the HTTP Host header (default: the real's address).
    pub virtualhost: Option<String>,
    /// `login=` (ftp: `anonymous`, sip: `ldirectord@HOSTNAME` when `service=` is explicit).
    pub login: String,
    pub passwd: String,
    pub database: String,
    pub secret: String,
    /// `checkcommand=` (default `/bin/true`).
    pub checkcommand: String,
    /// Effective check timeout (§2.8).
    pub checktimeout: Duration,
    /// Effective negotiate timeout (§2.8).
    pub negotiatetimeout: Duration,
    /// `checkcount=` (ping attempts; deprecated).
    pub checkcount: u32,
    /// Extension: verify HTTPS certificates against the system roots (default no, as
    /// ldirectord intends).
    pub tls_verify: bool,
    /// Extension: send `virtualhost` as TLS SNI (default no, as ldirectord).
    pub tls_sni: bool,
    /// Extension: PostgreSQL role check.
    pub pgsql_role: Option<PgRoleCheck>,
    /// The global `scriptuser=`, which `external` checks run as.
    pub scriptuser: Option<ScriptUser>,
}

/// One `real=`/`real6=` entry (a range gives one per address).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RealServer {
    pub span: Span,
    pub ip: IpAddr,
    /// 0 when the line gives no port.
    pub port: u16,
    pub forward: Forward,
    /// Default 1.
    pub weight: u32,
    /// Per-real `"request"` (starting with `/`), when given and honoured.
    pub request: Option<String>,
    /// Per-real `"receive"`, when given and honoured.
    pub receive: Option<Receive>,
    /// `l:N`: lower connection threshold (ipvsadm `-y`), 0 = none.
    pub lower: u32,
    /// `u:N`: upper connection threshold (ipvsadm `-x`), 0 = none.
    pub upper: u32,
}

/// A fallback ("sorry") server: weight 1, no thresholds, never quiesced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Fallback {
    pub span: Span,
    pub ip: IpAddr,
    /// `None`: the global fallback was given without port (each virtual uses its own).
    pub port: Option<u16>,
    pub forward: Forward,
}

/// `emailalertstatus=`: the daemon states in which alerts are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AlertStatus {
    pub starting: bool,
    pub running: bool,
    pub stopping: bool,
    pub reloading: bool,
}

impl AlertStatus {
    pub const ALL: AlertStatus = AlertStatus {
        starting: true,
        running: true,
        stopping: true,
        reloading: true,
    };
    pub const NONE: AlertStatus = AlertStatus {
        starting: false,
        running: false,
        stopping: false,
        reloading: false,
    };
}

/// Where log lines go (`logfile=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum LogTarget {
    /// A path starting with `/`: appended to.
    File(PathBuf),
    /// Anything else: a syslog facility name such as `local0` or `daemon`.
    Syslog(String),
}

/// Settings that may be given globally and overridden per virtual, already merged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AlertSettings {
    /// Recipients (`emailalert=`), `None` = no alerts.
    pub emailalert: Option<String>,
    /// Reminder period in seconds, 0 = none.
    pub emailalertfreq: u32,
    pub emailalertstatus: AlertStatus,
    /// `smtp=` server, `None` = local sendmail.
    pub smtp: Option<String>,
}

/// Global directives. Per-virtual overridable values are also resolved into each
/// [`VirtualService`]; the global value is kept here for reference and for reload diffs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Globals {
    /// `checktimeout=` as written, `None` = unset.
    pub checktimeout: Option<u32>,
    pub negotiatetimeout: Option<u32>,
    /// `checkinterval=` in seconds (default 10).
    pub checkinterval: u32,
    pub checkcount: u32,
    pub failurecount: u32,
    pub fallback: Option<Fallback>,
    pub fallback6: Option<Fallback>,
    pub fallbackcommand: Option<String>,
    pub autoreload: bool,
    pub callback: Option<String>,
    pub logfile: LogTarget,
    /// `execute=` sub-instances, in file order, without duplicates.
    pub execute: Vec<String>,
    pub supervised: bool,
    pub fork: bool,
    pub quiescent: bool,
    pub readdquiescent: bool,
    pub cleanstop: bool,
    pub maintenancedir: Option<PathBuf>,
    pub alerts: AlertSettings,
    pub emailalertfrom: Option<String>,
    /// Extension: successes needed before a down real comes back (default 1 = stock).
    pub risecount: u32,
    /// Extension: run each check first after a random delay of up to this fraction of the
    /// interval and keep that phase (`checkjitter=`, percent); default 0: the check gets
    /// an evenly spread slot of its own instead.
    pub checkjitter: u32,
    /// Extension `checkspread=` (default `0`).
    pub checkspread: CheckSpread,
    /// Extension `nodeaddress=NODE ADDRESS`: the address of a cluster node named by a
    /// real-server source (names not listed go through the resolver).
    pub node_addresses: BTreeMap<String, IpAddr>,
    /// Extension `engine=` (default netlink); `--engine` on the command line wins.
    pub engine: EngineName,
    /// Extension `syncdaemon=IFACE [SYNCID]` (with `syncmaxlen=`, `syncgroup=`,
    /// `syncport=`, `syncttl=`): the kernel's master sync daemon that runs while the
    /// director does. `None` (the default): no connection synchronisation.
    pub syncdaemon: Option<SyncDaemon>,
    /// Extension `fallbackcommandonstop=` (default no): at shutdown, run each virtual's
    /// `fallbackcommand` with `start`, as if every real had failed.
    pub fallbackcommandonstop: bool,
    /// Extension `controlgroup=`: the group (name or number) that may use the control
    /// socket besides root; `None` = root only.
    pub controlgroup: Option<String>,
    /// Extension `metrics=ADDR:PORT`: serve Prometheus metrics there (default: off).
    pub metrics: Option<std::net::SocketAddr>,
    /// Extension `checkpath=` (default direct); a block's own value wins.
    pub checkpath: CheckPath,
    /// Extension `checkmarkbase=`: the first of the [`CHECK_MARK_COUNT`] firewall marks
    /// the forwarding-path helper services use (default [`DEFAULT_CHECK_MARK_BASE`]).
    pub checkmarkbase: u32,
    /// Extension `scriptuser=USER[:GROUP]`: who external checks, `fallbackcommand` and
    /// `callback` run as (default: the daemon's user, root). Whole-file: every virtual's
    /// [`CheckSettings::scriptuser`] is this, wherever the line is.
    pub scriptuser: Option<ScriptUser>,
    /// Extension `keepcapabilities=` (default no): a daemon started as root keeps all of
    /// root's capabilities instead of dropping to the few it needs after start-up.
    /// Read at start only.
    pub keepcapabilities: bool,
}

/// A `scriptuser=` value, resolved through the system's user database when the file is
/// read (an unknown user or group is a configuration error).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ScriptUser {
    /// As written: `USER` or `USER:GROUP`.
    pub written: String,
    pub uid: u32,
    /// GROUP's id, else USER's primary group.
    pub gid: u32,
}

impl fmt::Display for ScriptUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            checktimeout: None,
            negotiatetimeout: None,
            checkinterval: 10,
            checkcount: 1,
            failurecount: 1,
            fallback: None,
            fallback6: None,
            fallbackcommand: None,
            autoreload: false,
            callback: None,
            logfile: LogTarget::File(PathBuf::from("/var/log/ldirectord.log")),
            execute: Vec::new(),
            supervised: false,
            fork: false,
            quiescent: false,
            readdquiescent: false,
            cleanstop: true,
            maintenancedir: None,
            alerts: AlertSettings {
                emailalert: None,
                emailalertfreq: 0,
                emailalertstatus: AlertStatus::ALL,
                smtp: None,
            },
            emailalertfrom: None,
            risecount: 1,
            checkjitter: 0,
            checkspread: CheckSpread::default(),
            node_addresses: BTreeMap::new(),
            engine: EngineName::Netlink,
            syncdaemon: None,
            fallbackcommandonstop: false,
            controlgroup: None,
            metrics: None,
            scriptuser: None,
            keepcapabilities: false,
            checkpath: CheckPath::Direct,
            checkmarkbase: DEFAULT_CHECK_MARK_BASE,
        }
    }
}

/// A `netmask=` value the parser accepted: the mask it names, kept with the text as written
/// (rendered and serialized back as written). Stock accepts any four dot-separated digit
/// runs for IPv4 (`999.0.0.0`, `255.255.255.000`) and only ipvsadm refuses them later;
/// such a value has no [`mask`](Self::mask), and no mask reaches the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetmaskSetting {
    written: String,
    mask: Option<Netmask>,
}

impl NetmaskSetting {
    /// Stock's decision for `family`: IPv4 four dot-separated digit runs, IPv6 a prefix
    /// length of digits in 1..=128. `None` when stock rejects `text`.
    pub fn parse(text: &str, family: Family) -> Option<NetmaskSetting> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        let mask = match family {
            Family::Inet6 if !digits(text) => return None,
            Family::Inet6 => {
                let prefix = text.parse::<u8>().ok().filter(|p| (1..=128).contains(p))?;
                Some(Netmask::V6(prefix))
            }
            Family::Inet => match text.parse::<Ipv4Addr>() {
                Ok(mask) => Some(Netmask::V4(mask)),
                Err(_) if text.split('.').count() == 4 && text.split('.').all(digits) => None,
                Err(_) => return None,
            },
        };
        Some(NetmaskSetting {
            written: text.to_owned(),
            mask,
        })
    }

    /// The mask for the kernel; `None` for a dotted quad only stock's parser accepts.
    pub fn mask(&self) -> Option<Netmask> {
        self.mask
    }

    /// The value as written in the file.
    pub fn as_written(&self) -> &str {
        &self.written
    }
}

impl fmt::Display for NetmaskSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl Serialize for NetmaskSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

/// One `virtual=`/`virtual6=` block with every setting resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualService {
    /// The `virtual=` line.
    pub span: Span,
    pub family: Family,
    pub address: VirtualAddress,
    pub protocol: Protocol,
    /// `scheduler=` (default `wrr`); any lower-case word, the kernel decides.
    pub scheduler: String,
    /// `persistent=` timeout in seconds.
    pub persistent: Option<u32>,
    /// `netmask=` (dotted quad for IPv4, prefix length for IPv6).
    pub netmask: Option<NetmaskSetting>,
    /// `schedflags=` (ipvsadm `-b`), extension of the reference's list.
    pub schedflags: Option<String>,
    /// `ops=yes`: one-packet scheduling (UDP only).
    pub ops: bool,
    pub reals: Vec<RealServer>,
    /// The block's own fallback, or the global one of its family (with this virtual's
    /// port when the global one has none).
    pub fallback: Option<Fallback>,
    pub fallbackcommand: Option<String>,
    pub check: CheckSettings,
    /// Effective `checkinterval` (the block's value is honoured only with `fork=yes`
    /// in stock; ldirectord-rs schedules per virtual and honours it always).
    pub checkinterval: u32,
    /// Whether the block set `checkinterval=` itself.
    pub checkinterval_set: bool,
    pub failurecount: u32,
    pub risecount: u32,
    pub quiescent: bool,
    pub cleanstop: bool,
    pub alerts: AlertSettings,
    pub monitorfile: Option<PathBuf>,
    pub servicename: Option<String>,
    pub comment: Option<String>,
    /// Extension: real servers chosen by the cluster, in addition to `reals`.
    pub real_sources: Option<RealSources>,
    /// Extension `checkpath=` (the global value unless the block sets it).
    pub checkpath: CheckPath,
}

impl VirtualService {
    /// ldirectord's virtual id: `tcp:1.2.3.4:80`, `udp:[2001:db8::5]:53`, `fwm:5`, `fwm6:5`.
    pub fn id(&self) -> String {
        match self.address {
            VirtualAddress::Fwmark {
                mark,
                family: Family::Inet,
            } => format!("fwm:{mark}"),
            VirtualAddress::Fwmark {
                mark,
                family: Family::Inet6,
            } => format!("fwm6:{mark}"),
            VirtualAddress::Inet { .. } => {
                format!("{}:{}", self.protocol.as_str(), self.virtual_text())
            }
        }
    }

    /// ldirectord's "virtual" text in logs: `1.2.3.4:80`, `[2001:db8::5]:80`, or the mark.
    pub fn virtual_text(&self) -> String {
        match self.address {
            VirtualAddress::Inet { ip, port } => SocketAddr::new(ip, port).to_string(),
            VirtualAddress::Fwmark { mark, .. } => mark.to_string(),
        }
    }

    /// The port of the virtual service (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match self.address {
            VirtualAddress::Inet { port, .. } => port,
            VirtualAddress::Fwmark { .. } => 0,
        }
    }

    /// The port a real server is checked on (§3.2): `checkport`, else the real's port,
    /// else the service's default port.
    pub fn check_port(&self, real: &RealServer) -> Option<u16> {
        self.check
            .checkport
            .or(if real.port > 0 { Some(real.port) } else { None })
            .or(self.check.service.default_port())
    }
}

/// An address as ldirectord prints it: IPv4 dotted, IPv6 in brackets.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmask_by_family() {
        let cases: &[(&str, Family, Option<Netmask>)] = &[
            (
                "255.255.255.0",
                Family::Inet,
                Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))),
            ),
            (
                " 255.255.0.0 ",
                Family::Inet,
                Some(Netmask::V4(Ipv4Addr::new(255, 255, 0, 0))),
            ),
            ("64", Family::Inet6, Some(Netmask::V6(64))),
            ("128", Family::Inet6, Some(Netmask::V6(128))),
            ("0", Family::Inet6, None),
            ("129", Family::Inet6, None),
            ("64", Family::Inet, None),
            ("255.255.255.0", Family::Inet6, None),
        ];
        for (text, family, want) in cases {
            // The directive's value reaches the parser without surrounding blanks.
            let mask = NetmaskSetting::parse(text.trim(), *family).and_then(|s| s.mask());
            assert_eq!(mask, *want, "{text} {family:?}");
        }
    }
}
