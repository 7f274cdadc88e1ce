//! `ipvsadm -L -n` and `ipvsadm -L -n --thresholds` listings: parse, merge, render.
//!
//! Stock ldirectord learns the kernel table only by running these two listings and
//! matching their lines; the `ipvsadm` engine does the same, and test stand-ins print
//! listings with [`render`]. The types here are this crate's own (no IPVS knowledge
//! beyond the text format), so the daemon maps them onto its engine types.
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
use std::net::{IpAddr, Ipv4Addr};

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

/// Protocol of an address-based virtual service, as listed (`TCP`, `UDP`, `SCTP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListedProto {
    Tcp,
    Udp,
    Sctp,
}

impl ListedProto {
    /// The word ipvsadm prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ListedProto::Tcp => "TCP",
            ListedProto::Udp => "UDP",
            ListedProto::Sctp => "SCTP",
        }
    }
}

/// Identity of a listed virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListedVirtual {
    Inet {
        proto: ListedProto,
        ip: IpAddr,
        port: u16,
    },
    /// `FWM  <mark>`; `ipv6` when the line ends in `IPv6`.
    Fwmark { mark: u32, ipv6: bool },
}

/// Persistence mask as listed: IPv4 dotted, IPv6 prefix length. ipvsadm prints it only
/// when it is not the default (/32, /128), so `None` in a listing means the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListedMask {
    V4(Ipv4Addr),
    V6(u8),
}

impl fmt::Display for ListedMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListedMask::V4(m) => write!(f, "{m}"),
            ListedMask::V6(p) => write!(f, "{p}"),
        }
    }
}

/// Forwarding method as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListedForward {
    /// Direct routing (`-g`).
    Route,
    /// NAT (`-m`).
    Masq,
    /// IP-in-IP (`-i`).
    Tunnel,
    /// The kernel found the real on a local address (it was added as `-g`).
    Local,
}

impl ListedForward {
    /// The word ipvsadm prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ListedForward::Route => "Route",
            ListedForward::Masq => "Masq",
            ListedForward::Tunnel => "Tunnel",
            ListedForward::Local => "Local",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "Route" => ListedForward::Route,
            "Masq" => ListedForward::Masq,
            "Tunnel" => ListedForward::Tunnel,
            "Local" => ListedForward::Local,
            _ => return None,
        })
    }
}

/// The per-listing columns of a destination line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestColumns {
    Plain { forward: ListedForward, weight: u32 },
    Thresholds { upper: u32, lower: u32 },
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
    pub id: ListedVirtual,
    pub scheduler: String,
    /// Scheduler flags as printed in parentheses (`sh-fallback,sh-port`), in listed order.
    pub sched_flags: Vec<String>,
    /// Persistence timeout in seconds, `None` when not persistent.
    pub persistent: Option<u32>,
    /// Non-default persistence mask (only listed when persistent).
    pub netmask: Option<ListedMask>,
    /// Persistence engine (`pe sip`).
    pub pe: Option<String>,
    /// One-packet scheduling (`ops`).
    pub ops: bool,
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

/// ipvsadm's numeric form: `1.2.3.4:80`, `[2001:db8::1]:80`.
pub fn format_addr_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
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
    let columns = match ListedForward::parse(second) {
        Some(forward) => DestColumns::Plain {
            forward,
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
    let id = match first {
        "TCP" | "UDP" | "SCTP" => {
            let proto = match first {
                "TCP" => ListedProto::Tcp,
                "UDP" => ListedProto::Udp,
                _ => ListedProto::Sctp,
            };
            let addr = words.next().ok_or("service line without address")?;
            let (ip, port) =
                parse_addr_port(addr).ok_or_else(|| format!("bad service address {addr:?}"))?;
            ListedVirtual::Inet { proto, ip, port }
        }
        "FWM" => {
            let mark = words.next().ok_or("FWM line without mark")?;
            let mark = mark
                .parse()
                .map_err(|_| format!("bad firewall mark {mark:?}"))?;
            let ipv6 = words.next_if_eq(&"IPv6").is_some();
            ListedVirtual::Fwmark { mark, ipv6 }
        }
        _ => return Err("not a service or destination line".into()),
    };
    let scheduler = words
        .next()
        .ok_or("service line without scheduler")?
        .to_owned();
    let mut service = ListedService {
        id,
        scheduler,
        sched_flags: Vec::new(),
        persistent: None,
        netmask: None,
        pe: None,
        ops: false,
        dests: Vec::new(),
    };
    let mut unknown = Vec::new();
    let is_v6 = match id {
        ListedVirtual::Inet { ip, .. } => ip.is_ipv6(),
        ListedVirtual::Fwmark { ipv6, .. } => ipv6,
    };
    while let Some(word) = words.next() {
        match word {
            _ if word.starts_with('(') && word.ends_with(')') => {
                let inner = &word[1..word.len() - 1];
                service.sched_flags = inner
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "persistent" => {
                let value = words.next().ok_or("persistent without timeout")?;
                service.persistent = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad persistence timeout {value:?}"))?,
                );
            }
            "mask" => {
                let value = words.next().ok_or("mask without value")?;
                let mask = if is_v6 {
                    value.parse().ok().map(ListedMask::V6)
                } else {
                    value.parse().ok().map(ListedMask::V4)
                };
                service.netmask =
                    Some(mask.ok_or_else(|| format!("bad persistence mask {value:?}"))?);
            }
            "pe" => service.pe = Some(words.next().ok_or("pe without name")?.to_owned()),
            "ops" => service.ops = true,
            other => unknown.push(other.to_owned()),
        }
    }
    Ok((service, unknown))
}

/// A destination with both listings' columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableDest {
    pub ip: IpAddr,
    pub port: u16,
    pub forward: ListedForward,
    pub weight: u32,
    pub upper: u32,
    pub lower: u32,
    pub active: u32,
    pub inactive: u32,
}

/// A virtual service with both listings merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableService {
    pub id: ListedVirtual,
    pub scheduler: String,
    pub sched_flags: Vec<String>,
    pub persistent: Option<u32>,
    pub netmask: Option<ListedMask>,
    pub pe: Option<String>,
    pub ops: bool,
    pub dests: Vec<TableDest>,
}

/// The whole table as the two listings show it together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpvsTable {
    pub header: ListingHeader,
    pub services: Vec<TableService>,
}

impl IpvsTable {
    /// Sorts services and destinations the way ipvsadm lists them by default: address
    /// services before firewall marks, then by family, protocol, address and port;
    /// destinations by family, address and port.
    pub fn sort_like_ipvsadm(&mut self) {
        self.services.sort_by_key(|s| service_sort_key(&s.id));
        for service in &mut self.services {
            service
                .dests
                .sort_by_key(|d| (d.ip.is_ipv6(), d.ip, d.port));
        }
    }
}

/// ipvsadm compares fwmark first (0 for address services), then family, then protocol
/// number, then address and port.
fn service_sort_key(id: &ListedVirtual) -> (u32, bool, u8, Option<IpAddr>, u16) {
    match *id {
        ListedVirtual::Inet { proto, ip, port } => {
            let proto = match proto {
                ListedProto::Tcp => 6,
                ListedProto::Udp => 17,
                ListedProto::Sctp => 132,
            };
            (0, ip.is_ipv6(), proto, Some(ip), port)
        }
        ListedVirtual::Fwmark { mark, ipv6 } => (mark, ipv6, 0, None, 0),
    }
}

/// Merges `-L -n` and `-L -n --thresholds` into one table, the way stock ldirectord reads
/// them: by service identity and destination `addr:port`.
///
/// The plain listing is authoritative for what exists (it is read first). Thresholds of a
/// destination missing from the thresholds listing (the table changed between the two
/// runs) are 0, ipvsadm's default; the next read corrects it. Destination lines of the
/// wrong kind in either listing are ignored.
pub fn merge(plain: &Listing, thresholds: &Listing) -> IpvsTable {
    let services = plain
        .services
        .iter()
        .map(|service| {
            let threshold_service = thresholds.services.iter().find(|t| t.id == service.id);
            let dests = service
                .dests
                .iter()
                .filter_map(|dest| {
                    let DestColumns::Plain { forward, weight } = dest.columns else {
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
                    Some(TableDest {
                        ip: dest.ip,
                        port: dest.port,
                        forward,
                        weight,
                        upper,
                        lower,
                        active: dest.active,
                        inactive: dest.inactive,
                    })
                })
                .collect();
            TableService {
                id: service.id,
                scheduler: service.scheduler.clone(),
                sched_flags: service.sched_flags.clone(),
                persistent: service.persistent,
                netmask: service.netmask,
                pe: service.pe.clone(),
                ops: service.ops,
                dests,
            }
        })
        .collect();
    IpvsTable {
        header: plain.header.clone().unwrap_or_default(),
        services,
    }
}

/// Prints a table exactly as ipvsadm 1.31 prints `-L -n` ([`ListingKind::Plain`]) or
/// `-L -n --thresholds`, trailing padding included. Services and destinations are printed
/// in the order given; call [`IpvsTable::sort_like_ipvsadm`] first to get ipvsadm's order.
pub fn render(table: &IpvsTable, kind: ListingKind) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        table.header.version, table.header.conn_tab_size
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
            let name = format_addr_port(dest.ip, dest.port);
            let _ = match kind {
                ListingKind::Plain => writeln!(
                    out,
                    "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                    name,
                    dest.forward.as_str(),
                    dest.weight,
                    dest.active,
                    dest.inactive
                ),
                ListingKind::Thresholds => writeln!(
                    out,
                    "  -> {:<28} {:<10} {:<10} {:<10} {:<10}",
                    name, dest.upper, dest.lower, dest.active, dest.inactive
                ),
            };
        }
    }
    out
}

fn render_service_line(out: &mut String, service: &TableService) {
    let _ = match service.id {
        ListedVirtual::Inet { proto, ip, port } => {
            write!(out, "{:<4} {}", proto.as_str(), format_addr_port(ip, port))
        }
        ListedVirtual::Fwmark { mark, ipv6: false } => write!(out, "FWM  {mark}"),
        ListedVirtual::Fwmark { mark, ipv6: true } => write!(out, "FWM  {mark} IPv6"),
    };
    let _ = write!(out, " {}", service.scheduler);
    if !service.sched_flags.is_empty() {
        let _ = write!(out, " ({})", service.sched_flags.join(","));
    }
    if let Some(timeout) = service.persistent {
        let _ = write!(out, " persistent {timeout}");
        if let Some(mask) = service.netmask {
            let _ = write!(out, " mask {mask}");
        }
        if let Some(pe) = &service.pe {
            let _ = write!(out, " pe {pe}");
        }
    }
    if service.ops {
        out.push_str(" ops");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

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
            web.id,
            ListedVirtual::Inet {
                proto: ListedProto::Tcp,
                ip: v4("192.0.2.10"),
                port: 80
            }
        );
        assert_eq!(web.scheduler, "wrr");
        assert_eq!(web.persistent, None);
        assert_eq!(
            web.dests[1],
            ListedDest {
                ip: v4("10.0.0.3"),
                port: 80,
                columns: DestColumns::Plain {
                    forward: ListedForward::Route,
                    weight: 0
                },
                active: 3,
                inactive: 12,
            }
        );
        let https = &listing.services[1];
        assert_eq!(https.persistent, Some(600));
        assert_eq!(
            https.netmask,
            Some(ListedMask::V4(Ipv4Addr::new(255, 255, 255, 0)))
        );
        let dns = &listing.services[2];
        assert_eq!(
            dns.id,
            ListedVirtual::Inet {
                proto: ListedProto::Udp,
                ip: v4("2001:db8::10"),
                port: 53
            }
        );
        assert_eq!(dns.dests[0].ip, v4("2001:db8::a"));
        assert_eq!(
            dns.dests[0].columns,
            DestColumns::Plain {
                forward: ListedForward::Tunnel,
                weight: 1
            }
        );
        assert_eq!(
            listing.services[3].id,
            ListedVirtual::Fwmark {
                mark: 1,
                ipv6: false
            }
        );
        assert_eq!(
            listing.services[4].id,
            ListedVirtual::Fwmark {
                mark: 2,
                ipv6: true
            }
        );
        assert_eq!(listing.services[4].scheduler, "rr");
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
            (first.forward, first.weight, first.upper, first.lower),
            (ListedForward::Route, 1, 100, 10)
        );
        assert_eq!(table.services[0].dests[1].upper, 0);
        assert_eq!(table.services.len(), 5);
    }

    #[test]
    fn ipvsadm_render_reproduces_both_listings_byte_for_byte() {
        let table = merge(&parse(PLAIN), &parse(THRESHOLDS));
        assert_eq!(render(&table, ListingKind::Plain), PLAIN);
        assert_eq!(render(&table, ListingKind::Thresholds), THRESHOLDS);
    }

    #[test]
    fn ipvsadm_round_trip_of_every_service_option() {
        let table = IpvsTable {
            header: ListingHeader {
                version: "1.2.1".into(),
                conn_tab_size: 1048576,
            },
            services: vec![
                TableService {
                    id: ListedVirtual::Inet {
                        proto: ListedProto::Sctp,
                        ip: v4("2001:db8::5"),
                        port: 80,
                    },
                    scheduler: "sh".into(),
                    sched_flags: vec!["sh-fallback".into(), "sh-port".into()],
                    persistent: Some(60),
                    netmask: Some(ListedMask::V6(64)),
                    pe: Some("sip".into()),
                    ops: true,
                    dests: vec![TableDest {
                        ip: v4("2001:db8:0:1::4"),
                        port: 80,
                        forward: ListedForward::Local,
                        weight: 2147483647,
                        upper: 65535,
                        lower: 1,
                        active: 4294967295,
                        inactive: 7,
                    }],
                },
                TableService {
                    id: ListedVirtual::Fwmark {
                        mark: 12,
                        ipv6: true,
                    },
                    scheduler: "wrr".into(),
                    sched_flags: vec![],
                    persistent: Some(300),
                    netmask: None,
                    pe: None,
                    ops: false,
                    dests: vec![TableDest {
                        ip: v4("10.1.2.3"),
                        port: 0,
                        forward: ListedForward::Tunnel,
                        weight: 0,
                        upper: 0,
                        lower: 0,
                        active: 0,
                        inactive: 0,
                    }],
                },
            ],
        };
        let plain = render(&table, ListingKind::Plain);
        assert!(plain.contains(
            "SCTP [2001:db8::5]:80 sh (sh-fallback,sh-port) persistent 60 mask 64 pe sip ops\n"
        ));
        assert!(plain.contains("FWM  12 IPv6 wrr persistent 300\n"));
        let back = merge(
            &parse(&plain),
            &parse(&render(&table, ListingKind::Thresholds)),
        );
        assert_eq!(back, table);
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
        table.sort_like_ipvsadm();
        assert_eq!(render(&table, ListingKind::Plain), PLAIN);
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
        assert_eq!(format_addr_port(v4("2001:db8::1"), 80), "[2001:db8::1]:80");
    }
}
