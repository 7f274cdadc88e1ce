//! `ipvsadm -L -n` and `ipvsadm -L -n --thresholds` listings: parse, merge, render.
//!
//! Stock ldirectord learns the kernel table only by running these two listings and
//! matching their lines; the `ipvsadm` engine does the same, and test stand-ins print
//! listings with [`render`]. Both read and print the shared [`crate::ipvs`] types; only
//! what is particular to the text (the header, a line's columns, warnings) lives here.
//!
//! The format is ipvsadm 1.31's `printf`s (`shared/reference/deps.md` §1.5):
//! - a version line, then two title lines (they differ between the two listings);
//! - a service line: `"%-4s %s"` (TCP/UDP/SCTP, then `addr:port`, IPv6 in brackets) or
//!   `FWM  <mark>[ IPv6]`, then ` <sched>`, ` (<sched-flags>)` if any, and when persistent
//!   ` persistent <t>[ mask <m>][ pe <name>]`, then ` ops`;
//! - dest lines: `"  -> %-28s %-7s %-6d %-10u %-10u"` (forward, weight, active, inactive),
//!   or with `--thresholds` `"  -> %-28s %-10u %-10u %-10u %-10u"` (upper, lower, active,
//!   inactive). Note the trailing padding: real ipvsadm lines end in spaces.
//!
//! Parsing never fails as a whole: a line it does not understand is skipped and reported
//! in [`Listing::warnings`], because one odd line (an ipvsadm fork's extra flag, a stray
//! stderr message) must not hide the rest of the table from the director.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use crate::ipvs::{
    DestEntry, DestSpec, Family, Forward, IpProto, Netmask, SchedFlags, ServiceEntry, ServiceKey,
    ServiceSpec, SyncDaemon, SyncRole, Table,
};

/// The version line ipvsadm prints when nothing else is known.
pub const DEFAULT_VERSION: &str = "1.2.1";
/// The connection table size ipvsadm prints by default (`size=4096`).
pub const DEFAULT_CONN_TAB_SIZE: u32 = 4096;

/// Which of the two listings a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListingKind {
    /// `ipvsadm -L -n`: forward method and weight per destination.
    Plain,
    /// `ipvsadm -L -n --thresholds`: upper and lower connection thresholds instead.
    Thresholds,
}

/// The word ipvsadm prints for a forwarding method; a real on a local address is `Local`
/// (it was added as `-g`).
fn forward_word(forward: Forward, local: bool) -> &'static str {
    match (local, forward) {
        (true, _) => "Local",
        (false, Forward::Gate) => "Route",
        (false, Forward::Masq) => "Masq",
        (false, Forward::Ipip) => "Tunnel",
    }
}

/// The forwarding method and `local` of a listed word.
fn parse_forward(word: &str) -> Option<(Forward, bool)> {
    Some(match word {
        "Route" => (Forward::Gate, false),
        "Masq" => (Forward::Masq, false),
        "Tunnel" => (Forward::Ipip, false),
        "Local" => (Forward::Gate, true),
        _ => return None,
    })
}

/// The per-listing columns of a destination line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestColumns {
    /// `local`: listed as `Local` (the kernel found the real on a local address).
    Plain {
        forward: Forward,
        local: bool,
        weight: u32,
    },
    Thresholds {
        upper: u32,
        lower: u32,
    },
}

/// One `  -> addr:port ...` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListedDest {
    pub ip: IpAddr,
    pub port: u16,
    pub columns: DestColumns,
    pub active: u32,
    pub inactive: u32,
}

/// One service line with the destination lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedService {
    /// The listed netmask is kept only when the service is persistent (ipvsadm prints
    /// it only then, and only when it is not the default /32 or /128).
    pub spec: ServiceSpec,
    /// Persistence engine (`pe sip`).
    pub pe: Option<String>,
    pub dests: Vec<ListedDest>,
}

/// The version line's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingHeader {
    /// `1.2.1` in `IP Virtual Server version 1.2.1 (size=4096)`.
    pub version: String,
    pub conn_tab_size: u32,
}

impl Default for ListingHeader {
    fn default() -> Self {
        ListingHeader {
            version: DEFAULT_VERSION.to_owned(),
            conn_tab_size: DEFAULT_CONN_TAB_SIZE,
        }
    }
}

/// A line that was skipped or only partly understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingWarning {
    /// 1-based line number in the text.
    pub line_no: usize,
    pub line: String,
    pub reason: String,
}

impl fmt::Display for ListingWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {:?}", self.line_no, self.reason, self.line)
    }
}

/// A parsed listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Which listing the title lines said this is; `None` when they were missing.
    pub kind: Option<ListingKind>,
    pub header: Option<ListingHeader>,
    pub services: Vec<ListedService>,
    pub warnings: Vec<ListingWarning>,
}

/// Parses the output of `ipvsadm -L -n` or `ipvsadm -L -n --thresholds`.
///
/// Destination lines are read by their columns, so the kind of listing is recognised per
/// line even without the title lines. Unknown lines are skipped and reported.
pub fn parse(text: &str) -> Listing {
    let mut listing = Listing {
        kind: None,
        header: None,
        services: Vec::new(),
        warnings: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let mut warn = |reason: String| {
            listing.warnings.push(ListingWarning {
                line_no,
                line: line.to_owned(),
                reason,
            })
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("IP Virtual Server version ") {
            match parse_version_line(rest) {
                Some(header) => listing.header = Some(header),
                None => warn("unreadable version line".into()),
            }
            continue;
        }
        if trimmed.starts_with("Prot LocalAddress:Port") {
            listing.kind = Some(if trimmed.contains("Uthreshold") {
                ListingKind::Thresholds
            } else {
                ListingKind::Plain
            });
            continue;
        }
        if trimmed.starts_with("-> RemoteAddress:Port") {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("->") {
            match parse_dest(rest) {
                Ok(dest) => match listing.services.last_mut() {
                    Some(service) => service.dests.push(dest),
                    None => warn("destination line before any service".into()),
                },
                Err(reason) => warn(reason),
            }
            continue;
        }
        match parse_service(trimmed) {
            Ok((service, unknown)) => {
                if !unknown.is_empty() {
                    warn(format!(
                        "unknown service option(s) ignored: {}",
                        unknown.join(" ")
                    ));
                }
                listing.services.push(service);
            }
            Err(reason) => warn(reason),
        }
    }
    listing
}

fn parse_version_line(rest: &str) -> Option<ListingHeader> {
    let (version, size) = rest.split_once(' ')?;
    let size = size.trim().strip_prefix("(size=")?.strip_suffix(')')?;
    Some(ListingHeader {
        version: version.to_owned(),
        conn_tab_size: size.parse().ok()?,
    })
}

/// `addr:port` or `[v6]:port`.
pub fn parse_addr_port(text: &str) -> Option<(IpAddr, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, port) = rest.split_once("]:")?;
        return Some((IpAddr::V6(addr.parse().ok()?), port.parse().ok()?));
    }
    let (addr, port) = text.rsplit_once(':')?;
    Some((IpAddr::V4(addr.parse().ok()?), port.parse().ok()?))
}

fn parse_dest(rest: &str) -> Result<ListedDest, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let [addr, second, third, active, inactive] = words[..] else {
        return Err(format!(
            "destination line with {} columns, expected 5",
            words.len()
        ));
    };
    let (ip, port) =
        parse_addr_port(addr).ok_or_else(|| format!("bad destination address {addr:?}"))?;
    let number = |word: &str, what: &str| -> Result<u32, String> {
        word.parse().map_err(|_| format!("bad {what} {word:?}"))
    };
    let columns = match parse_forward(second) {
        Some((forward, local)) => DestColumns::Plain {
            forward,
            local,
            weight: number(third, "weight")?,
        },
        None if second.bytes().all(|b| b.is_ascii_digit()) => DestColumns::Thresholds {
            upper: number(second, "upper threshold")?,
            lower: number(third, "lower threshold")?,
        },
        None => return Err(format!("unknown forwarding method {second:?}")),
    };
    Ok(ListedDest {
        ip,
        port,
        columns,
        active: number(active, "active connection count")?,
        inactive: number(inactive, "inactive connection count")?,
    })
}

/// Returns the service and any option words it did not know.
fn parse_service(line: &str) -> Result<(ListedService, Vec<String>), String> {
    let mut words = line.split_whitespace().peekable();
    let first = words.next().unwrap_or_default();
    let key = match first {
        "TCP" | "UDP" | "SCTP" => {
            let proto = match first {
                "TCP" => IpProto::Tcp,
                "UDP" => IpProto::Udp,
                _ => IpProto::Sctp,
            };
            let addr = words.next().ok_or("service line without address")?;
            let (ip, port) =
                parse_addr_port(addr).ok_or_else(|| format!("bad service address {addr:?}"))?;
            ServiceKey::Inet { proto, ip, port }
        }
        "FWM" => {
            let mark = words.next().ok_or("FWM line without mark")?;
            let mark = mark
                .parse()
                .map_err(|_| format!("bad firewall mark {mark:?}"))?;
            let family = match words.next_if_eq(&"IPv6") {
                Some(_) => Family::Inet6,
                None => Family::Inet,
            };
            ServiceKey::Fwmark { mark, family }
        }
        _ => return Err("not a service or destination line".into()),
    };
    let scheduler = words.next().ok_or("service line without scheduler")?;
    let mut service = ListedService {
        spec: ServiceSpec::new(key, scheduler),
        pe: None,
        dests: Vec::new(),
    };
    let spec = &mut service.spec;
    let mut unknown = Vec::new();
    while let Some(word) = words.next() {
        match word {
            _ if word.starts_with('(') && word.ends_with(')') => {
                spec.sched_flags = SchedFlags::parse(&word[1..word.len() - 1]);
            }
            "persistent" => {
                let value = words.next().ok_or("persistent without timeout")?;
                spec.persistent = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad persistence timeout {value:?}"))?,
                );
            }
            "mask" => {
                let value = words.next().ok_or("mask without value")?;
                let mask = Netmask::parse(value, key.family())
                    .ok_or_else(|| format!("bad persistence mask {value:?}"))?;
                spec.netmask = Some(mask);
            }
            "pe" => service.pe = Some(words.next().ok_or("pe without name")?.to_owned()),
            "ops" => spec.ops = true,
            other => unknown.push(other.to_owned()),
        }
    }
    spec.netmask = spec.persistent.and(spec.netmask);
    Ok((service, unknown))
}

/// Sorts services and destinations the way ipvsadm lists them by default: address
/// services before firewall marks, then by family, protocol, address and port;
/// destinations by family, address and port.
pub fn sort_like_ipvsadm(table: &mut Table) {
    table
        .services
        .sort_by_key(|s| service_sort_key(&s.spec.key));
    for service in &mut table.services {
        service
            .dests
            .sort_by_key(|d| (d.spec.ip.is_ipv6(), d.spec.ip, d.spec.port));
    }
}

/// ipvsadm compares fwmark first (0 for address services), then family, then protocol
/// number, then address and port.
fn service_sort_key(key: &ServiceKey) -> (u32, Family, u8, Option<IpAddr>, u16) {
    match *key {
        ServiceKey::Inet { proto, ip, port } => (0, Family::of(ip), proto.number(), Some(ip), port),
        ServiceKey::Fwmark { mark, family } => (mark, family, 0, None, 0),
    }
}

/// Merges `-L -n` and `-L -n --thresholds` into one table, the way stock ldirectord reads
/// them: by service identity and destination `addr:port`.
///
/// The plain listing is authoritative for what exists (it is read first). Thresholds of a
/// destination missing from the thresholds listing (the table changed between the two
/// runs) are 0, ipvsadm's default; the next read corrects it. Destination lines of the
/// wrong kind in either listing are ignored. The header is the plain listing's.
pub fn merge(plain: &Listing, thresholds: &Listing) -> Table {
    let services = plain
        .services
        .iter()
        .map(|service| {
            let threshold_service = thresholds
                .services
                .iter()
                .find(|t| t.spec.key == service.spec.key);
            let dests = service
                .dests
                .iter()
                .filter_map(|dest| {
                    let DestColumns::Plain {
                        forward,
                        local,
                        weight,
                    } = dest.columns
                    else {
                        return None;
                    };
                    let (upper, lower) = threshold_service
                        .and_then(|t| {
                            t.dests
                                .iter()
                                .find(|d| d.ip == dest.ip && d.port == dest.port)
                        })
                        .and_then(|d| match d.columns {
                            DestColumns::Thresholds { upper, lower } => Some((upper, lower)),
                            DestColumns::Plain { .. } => None,
                        })
                        .unwrap_or((0, 0));
                    Some(DestEntry {
                        spec: DestSpec {
                            upper,
                            lower,
                            ..DestSpec::new(dest.ip, dest.port, forward, weight)
                        },
                        local,
                        active_conns: dest.active,
                        inactive_conns: dest.inactive,
                    })
                })
                .collect();
            ServiceEntry {
                spec: service.spec.clone(),
                pe: service.pe.clone(),
                dests,
            }
        })
        .collect();
    Table { services }
}

/// Prints a table exactly as ipvsadm 1.31 prints `-L -n` ([`ListingKind::Plain`]) or
/// `-L -n --thresholds`, trailing padding included. Services and destinations are printed
/// in the order given; call [`sort_like_ipvsadm`] first to get ipvsadm's order.
pub fn render(table: &Table, header: &ListingHeader, kind: ListingKind) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        header.version, header.conn_tab_size
    );
    match kind {
        ListingKind::Plain => {
            out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
            out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
        }
        ListingKind::Thresholds => {
            let _ = writeln!(
                out,
                "{:<33} {:<10} {:<10} {:<10} {:<10}",
                "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
            );
            out.push_str("  -> RemoteAddress:Port\n");
        }
    }
    for service in &table.services {
        render_service_line(&mut out, service);
        for dest in &service.dests {
            let spec = &dest.spec;
            // `{:<28}` pads only a string, not a SocketAddr's Display.
            let name = spec.addr().to_string();
            let _ = match kind {
                ListingKind::Plain => writeln!(
                    out,
                    "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                    name,
                    forward_word(spec.forward, dest.local),
                    spec.weight,
                    dest.active_conns,
                    dest.inactive_conns
                ),
                ListingKind::Thresholds => writeln!(
                    out,
                    "  -> {:<28} {:<10} {:<10} {:<10} {:<10}",
                    name, spec.upper, spec.lower, dest.active_conns, dest.inactive_conns
                ),
            };
        }
    }
    out
}

fn render_service_line(out: &mut String, service: &ServiceEntry) {
    let spec = &service.spec;
    let _ = match spec.key {
        ServiceKey::Inet { proto, ip, port } => {
            write!(out, "{:<4} {}", proto.as_str(), SocketAddr::new(ip, port))
        }
        ServiceKey::Fwmark { mark, family } => {
            let v6 = if family == Family::Inet6 { " IPv6" } else { "" };
            write!(out, "FWM  {mark}{v6}")
        }
    };
    let _ = write!(out, " {}", spec.scheduler);
    if !spec.sched_flags.is_empty() {
        let _ = write!(out, " ({})", spec.sched_flags);
    }
    if let Some(timeout) = spec.persistent {
        let _ = write!(out, " persistent {timeout}");
        if let Some(mask) = spec.netmask {
            let _ = write!(out, " mask {mask}");
        }
        if let Some(pe) = &service.pe {
            let _ = write!(out, " pe {pe}");
        }
    }
    if spec.ops {
        out.push_str(" ops");
    }
    out.push('\n');
}

/// The sync daemons of an `ipvsadm --list-daemon` listing, one per line in
/// [`SyncDaemon`]'s display form (`master sync daemon (mcast=eth0, syncid=0, ...)`).
/// Lines it does not understand are skipped: ipvsadm prints nothing when none runs.
pub fn parse_daemons(text: &str) -> Vec<SyncDaemon> {
    text.lines().filter_map(parse_daemon_line).collect()
}

fn parse_daemon_line(line: &str) -> Option<SyncDaemon> {
    let line = line.trim();
    let (state, rest) = line.split_once(" sync daemon (")?;
    let role = match state {
        "master" => SyncRole::Master,
        "backup" => SyncRole::Backup,
        _ => return None,
    };
    let options = rest.strip_suffix(')')?;
    let mut interface = None;
    let mut daemon = SyncDaemon::new(role, "", 0);
    for option in options.split(", ") {
        let (key, value) = option.split_once('=')?;
        match key {
            "mcast" => interface = Some(value.to_owned()),
            "syncid" => daemon.syncid = value.parse().ok()?,
            "maxlen" => daemon.maxlen = Some(value.parse().ok()?),
            "group" => daemon.group = Some(value.parse().ok()?),
            "port" => daemon.port = Some(value.parse().ok()?),
            "ttl" => daemon.ttl = Some(value.parse().ok()?),
            _ => {}
        }
    }
    daemon.interface = interface?;
    Some(daemon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{SchedFlag, ServiceEntry};
    use std::net::Ipv4Addr;

    /// The example of `shared/reference/deps.md` §1.5, with ipvsadm's trailing padding.
    const PLAIN: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.10:80 wrr
  -> 10.0.0.2:80                  Route   1      0          0         
  -> 10.0.0.3:80                  Route   0      3          12        
TCP  192.0.2.10:443 wlc persistent 600 mask 255.255.255.0
  -> 10.0.0.2:443                 Masq    1      0          0         
UDP  [2001:db8::10]:53 rr
  -> [2001:db8::a]:53             Tunnel  1      0          0         
FWM  1 wlc
FWM  2 IPv6 rr
";

    const THRESHOLDS: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  192.0.2.10:80 wrr
  -> 10.0.0.2:80                  100        10         0          0         
  -> 10.0.0.3:80                  0          0          3          12        
TCP  192.0.2.10:443 wlc persistent 600 mask 255.255.255.0
  -> 10.0.0.2:443                 0          0          0          0         
UDP  [2001:db8::10]:53 rr
  -> [2001:db8::a]:53             0          0          0          0         
FWM  1 wlc
FWM  2 IPv6 rr
";

    fn v4(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipvsadm_plain_listing_parses_services_and_dests() {
        let listing = parse(PLAIN);
        assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
        assert_eq!(listing.kind, Some(ListingKind::Plain));
        assert_eq!(listing.header, Some(ListingHeader::default()));
        assert_eq!(listing.services.len(), 5);
        let web = &listing.services[0];
        assert_eq!(
            web.spec.key,
            ServiceKey::Inet {
                proto: IpProto::Tcp,
                ip: v4("192.0.2.10"),
                port: 80
            }
        );
        assert_eq!(web.spec.scheduler, "wrr");
        assert_eq!(web.spec.persistent, None);
        assert_eq!(
            web.dests[1],
            ListedDest {
                ip: v4("10.0.0.3"),
                port: 80,
                columns: DestColumns::Plain {
                    forward: Forward::Gate,
                    local: false,
                    weight: 0
                },
                active: 3,
                inactive: 12,
            }
        );
        let https = &listing.services[1];
        assert_eq!(https.spec.persistent, Some(600));
        assert_eq!(
            https.spec.netmask,
            Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)))
        );
        let dns = &listing.services[2];
        assert_eq!(
            dns.spec.key,
            ServiceKey::Inet {
                proto: IpProto::Udp,
                ip: v4("2001:db8::10"),
                port: 53
            }
        );
        assert_eq!(dns.dests[0].ip, v4("2001:db8::a"));
        assert_eq!(
            dns.dests[0].columns,
            DestColumns::Plain {
                forward: Forward::Ipip,
                local: false,
                weight: 1
            }
        );
        assert_eq!(
            listing.services[3].spec.key,
            ServiceKey::Fwmark {
                mark: 1,
                family: Family::Inet
            }
        );
        assert_eq!(
            listing.services[4].spec.key,
            ServiceKey::Fwmark {
                mark: 2,
                family: Family::Inet6
            }
        );
        assert_eq!(listing.services[4].spec.scheduler, "rr");
    }

    #[test]
    fn ipvsadm_thresholds_listing_parses_and_merges() {
        let thresholds = parse(THRESHOLDS);
        assert!(thresholds.warnings.is_empty(), "{:?}", thresholds.warnings);
        assert_eq!(thresholds.kind, Some(ListingKind::Thresholds));
        assert_eq!(
            thresholds.services[0].dests[0].columns,
            DestColumns::Thresholds {
                upper: 100,
                lower: 10
            }
        );
        let table = merge(&parse(PLAIN), &thresholds);
        let first = table.services[0].dests[0];
        assert_eq!(
            (
                first.spec.forward,
                first.local,
                first.spec.weight,
                first.spec.upper,
                first.spec.lower
            ),
            (Forward::Gate, false, 1, 100, 10)
        );
        assert_eq!(table.services[0].dests[1].spec.upper, 0);
        assert_eq!(table.services.len(), 5);
    }

    #[test]
    fn ipvsadm_render_reproduces_both_listings_byte_for_byte() {
        let table = merge(&parse(PLAIN), &parse(THRESHOLDS));
        let header = ListingHeader::default();
        assert_eq!(render(&table, &header, ListingKind::Plain), PLAIN);
        assert_eq!(render(&table, &header, ListingKind::Thresholds), THRESHOLDS);
    }

    #[test]
    fn ipvsadm_round_trip_of_every_service_option() {
        let header = ListingHeader {
            version: "1.2.1".into(),
            conn_tab_size: 1048576,
        };
        let sctp = ServiceKey::Inet {
            proto: IpProto::Sctp,
            ip: v4("2001:db8::5"),
            port: 80,
        };
        let fwm = ServiceKey::Fwmark {
            mark: 12,
            family: Family::Inet6,
        };
        let table = Table {
            services: vec![
                ServiceEntry {
                    spec: ServiceSpec {
                        sched_flags: [SchedFlag::ShFallback, SchedFlag::ShPort]
                            .into_iter()
                            .collect(),
                        persistent: Some(60),
                        netmask: Some(Netmask::V6(64)),
                        ops: true,
                        ..ServiceSpec::new(sctp, "sh")
                    },
                    pe: Some("sip".into()),
                    dests: vec![DestEntry {
                        spec: DestSpec {
                            upper: 65535,
                            lower: 1,
                            ..DestSpec::new(v4("2001:db8:0:1::4"), 80, Forward::Gate, 2147483647)
                        },
                        local: true,
                        active_conns: 4294967295,
                        inactive_conns: 7,
                    }],
                },
                ServiceEntry {
                    spec: ServiceSpec {
                        persistent: Some(300),
                        ..ServiceSpec::new(fwm, "wrr")
                    },
                    pe: None,
                    dests: vec![DestEntry {
                        spec: DestSpec::new(v4("10.1.2.3"), 0, Forward::Ipip, 0),
                        local: false,
                        active_conns: 0,
                        inactive_conns: 0,
                    }],
                },
            ],
        };
        let plain = render(&table, &header, ListingKind::Plain);
        assert!(plain.contains(
            "SCTP [2001:db8::5]:80 sh (sh-fallback,sh-port) persistent 60 mask 64 pe sip ops\n"
        ));
        assert!(plain.contains("FWM  12 IPv6 wrr persistent 300\n"));
        let back = merge(
            &parse(&plain),
            &parse(&render(&table, &header, ListingKind::Thresholds)),
        );
        assert_eq!((parse(&plain).header, back), (Some(header), table));
    }

    #[test]
    fn ipvsadm_unknown_lines_are_skipped_and_reported() {
        let text = "\
Can't initialize ipvs: nothing
  -> 10.0.0.9:80                  Route   1      0          0
TCP  192.0.2.1:80 wlc synproxy
  -> 10.0.0.1:80                  FullNat 1      0          0
  -> 10.0.0.2:80                  Masq    3      0          0
  -> garbage
";
        let listing = parse(text);
        let reasons: Vec<(usize, &str)> = listing
            .warnings
            .iter()
            .map(|w| (w.line_no, w.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (1, "not a service or destination line"),
                (2, "destination line before any service"),
                (3, "unknown service option(s) ignored: synproxy"),
                (4, "unknown forwarding method \"FullNat\""),
                (6, "destination line with 1 columns, expected 5"),
            ]
        );
        assert_eq!(listing.services.len(), 1);
        assert_eq!(listing.services[0].dests.len(), 1);
        assert_eq!(listing.services[0].dests[0].ip, v4("10.0.0.2"));
        assert_eq!(listing.kind, None);
    }

    #[test]
    fn ipvsadm_sort_matches_ipvsadm_order() {
        let mut table = merge(&parse(PLAIN), &parse(THRESHOLDS));
        table.services.reverse();
        for service in &mut table.services {
            service.dests.reverse();
        }
        sort_like_ipvsadm(&mut table);
        assert_eq!(
            render(&table, &ListingHeader::default(), ListingKind::Plain),
            PLAIN
        );
    }

    #[test]
    fn ipvsadm_addr_port_forms() {
        assert_eq!(parse_addr_port("[::1]:0"), Some((v4("::1"), 0)));
        assert_eq!(
            parse_addr_port("1.2.3.4:65535"),
            Some((v4("1.2.3.4"), 65535))
        );
        assert_eq!(parse_addr_port("1.2.3.4"), None);
        assert_eq!(parse_addr_port("[::1]"), None);
        assert_eq!(
            SocketAddr::new(v4("2001:db8::1"), 80).to_string(),
            "[2001:db8::1]:80"
        );
    }

    #[test]
    fn daemon_listings_read_back_what_they_print() {
        let master = SyncDaemon {
            maxlen: Some(1472),
            group: Some("224.0.0.81".parse().unwrap()),
            port: Some(8848),
            ttl: Some(1),
            ..SyncDaemon::new(SyncRole::Master, "eth0", 0)
        };
        let backup = SyncDaemon {
            group: Some("ff02::81".parse().unwrap()),
            ..SyncDaemon::new(SyncRole::Backup, "br0", 255)
        };
        let text = format!("{master}\n{backup}\nnonsense\n");
        assert_eq!(parse_daemons(&text), vec![master, backup]);
        assert!(parse_daemons("").is_empty());
        assert!(parse_daemons("master sync daemon (syncid=1)").is_empty());
    }
}
