//! The IPVS vocabulary: one model of the kernel's table that every other part speaks.
//!
//! The config names the forwarding method and family with these types, the `ipvsadm`
//! listing parser and renderer read and print them, the director computes [`Op`]s over
//! them, and each engine (netlink, ipvsadm, userspace) programs and dumps them. Nothing
//! here does I/O.
//!
//! Display forms are ipvsadm's, so log lines, errors and argument strings agree:
//! [`ServiceKey`] prints as `-t 1.2.3.4:80`, `-u [::1]:53`, `-f 5 -6`; an address as
//! [`DestSpec::addr`] (a [`SocketAddr`]: `1.2.3.4:80`, `[::1]:80`); an [`Op`] in the
//! operator's words (`add real server 10.0.0.2:80 to -t 10.0.0.1:80`).

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Serialize;

/// Address family of a virtual service (`virtual=` vs `virtual6=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
}

/// Forwarding method of a real or fallback server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Forward {
    /// Direct routing (`gate`, ipvsadm `-g`, listed as `Route`).
    Gate,
    /// NAT (`masq`, `-m`, listed as `Masq`).
    Masq,
    /// Tunnelling (`ipip`, `-i`, listed as `Tunnel`).
    Ipip,
}

impl Forward {
    /// ldirectord's word: `gate`, `masq`, `ipip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Forward::Gate => "gate",
            Forward::Masq => "masq",
            Forward::Ipip => "ipip",
        }
    }
    /// The ipvsadm flag: `-g`, `-m`, `-i`.
    pub fn ipvsadm_flag(self) -> &'static str {
        match self {
            Forward::Gate => "-g",
            Forward::Masq => "-m",
            Forward::Ipip => "-i",
        }
    }
}

/// IP protocol of an address-based virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpProto {
    Tcp,
    Udp,
    Sctp,
}

impl IpProto {
    /// The word ipvsadm lists: `TCP`, `UDP`, `SCTP`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpProto::Tcp => "TCP",
            IpProto::Udp => "UDP",
            IpProto::Sctp => "SCTP",
        }
    }

    /// ipvsadm's service option: `-t`, `-u`, `--sctp-service`.
    pub fn ipvsadm_flag(self) -> &'static str {
        match self {
            IpProto::Tcp => "-t",
            IpProto::Udp => "-u",
            IpProto::Sctp => "--sctp-service",
        }
    }

    /// The IP protocol number (`IPPROTO_*`).
    pub fn number(self) -> u8 {
        match self {
            IpProto::Tcp => 6,
            IpProto::Udp => 17,
            IpProto::Sctp => 132,
        }
    }
}

/// Identity of a virtual service in the kernel table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    Inet {
        proto: IpProto,
        ip: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        family: Family,
    },
}

impl ServiceKey {
    /// An address service.
    pub fn inet(proto: IpProto, ip: IpAddr, port: u16) -> ServiceKey {
        ServiceKey::Inet { proto, ip, port }
    }

    /// The family of the service (of its address, or the one a mark was added with).
    pub fn family(&self) -> Family {
        match *self {
            ServiceKey::Inet { ip, .. } => Family::of(ip),
            ServiceKey::Fwmark { family, .. } => family,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's form: `-t 1.2.3.4:80`, `-u [::1]:53`, `-f 5`, `-f 5 -6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceKey::Inet { proto, ip, port } => {
                write!(f, "{} {}", proto.ipvsadm_flag(), SocketAddr::new(ip, port))
            }
            ServiceKey::Fwmark {
                mark,
                family: Family::Inet,
            } => write!(f, "-f {mark}"),
            ServiceKey::Fwmark {
                mark,
                family: Family::Inet6,
            } => write!(f, "-f {mark} -6"),
        }
    }
}

/// Persistence netmask: IPv4 as a dotted mask, IPv6 as a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    V4(Ipv4Addr),
    V6(u8),
}

impl Netmask {
    /// A mask as ipvsadm reads and prints it for `family`: a dotted quad or a prefix
    /// length. `None` when `text` is neither.
    pub fn parse(text: &str, family: Family) -> Option<Netmask> {
        match family {
            Family::Inet => text.parse().ok().map(Netmask::V4),
            Family::Inet6 => text.parse().ok().map(Netmask::V6),
        }
    }
}

impl fmt::Display for Netmask {
    /// ipvsadm's form: `255.255.255.0`, `64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::V4(mask) => write!(f, "{mask}"),
            Netmask::V6(prefix) => write!(f, "{prefix}"),
        }
    }
}

/// One scheduler flag as ipvsadm's `-b` names it. The kernel has three flag bits; `sh`
/// and `mh` name the first two after what they do, other schedulers `flag-N`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchedFlag {
    ShFallback,
    ShPort,
    MhFallback,
    MhPort,
    Flag1,
    Flag2,
    Flag3,
    /// A word ipvsadm does not know (a fork's flag, a typo): kept so it can be listed
    /// and reported, and refused by the engines.
    Other(String),
}

impl SchedFlag {
    /// ipvsadm's word.
    pub fn as_str(&self) -> &str {
        match self {
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::ShPort => "sh-port",
            SchedFlag::MhFallback => "mh-fallback",
            SchedFlag::MhPort => "mh-port",
            SchedFlag::Flag1 => "flag-1",
            SchedFlag::Flag2 => "flag-2",
            SchedFlag::Flag3 => "flag-3",
            SchedFlag::Other(word) => word,
        }
    }

    /// Which of the kernel's three flag bits (1, 2, 3) this is; `None` for
    /// [`SchedFlag::Other`].
    pub fn bit(&self) -> Option<u8> {
        match self {
            SchedFlag::ShFallback | SchedFlag::MhFallback | SchedFlag::Flag1 => Some(1),
            SchedFlag::ShPort | SchedFlag::MhPort | SchedFlag::Flag2 => Some(2),
            SchedFlag::Flag3 => Some(3),
            SchedFlag::Other(_) => None,
        }
    }

    /// The name ipvsadm lists for flag bit `bit` (1-3) of `scheduler`.
    pub fn for_bit(scheduler: &str, bit: u8) -> Option<SchedFlag> {
        Some(match (scheduler, bit) {
            ("sh", 1) => SchedFlag::ShFallback,
            ("sh", 2) => SchedFlag::ShPort,
            ("mh", 1) => SchedFlag::MhFallback,
            ("mh", 2) => SchedFlag::MhPort,
            (_, 1) => SchedFlag::Flag1,
            (_, 2) => SchedFlag::Flag2,
            (_, 3) => SchedFlag::Flag3,
            _ => return None,
        })
    }
}

impl From<&str> for SchedFlag {
    fn from(word: &str) -> SchedFlag {
        match word {
            "sh-fallback" => SchedFlag::ShFallback,
            "sh-port" => SchedFlag::ShPort,
            "mh-fallback" => SchedFlag::MhFallback,
            "mh-port" => SchedFlag::MhPort,
            "flag-1" => SchedFlag::Flag1,
            "flag-2" => SchedFlag::Flag2,
            "flag-3" => SchedFlag::Flag3,
            other => SchedFlag::Other(other.to_owned()),
        }
    }
}

/// Ordered by name, which is the order ipvsadm lists and stock passes them.
impl Ord for SchedFlag {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for SchedFlag {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SchedFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scheduler flags (`-b`), sorted by name and without repeats. Default: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags(BTreeSet<SchedFlag>);

impl SchedFlags {
    /// ipvsadm's comma-separated form (`sh-port,sh-fallback`); blanks around and empty
    /// words are ignored.
    pub fn parse(text: &str) -> SchedFlags {
        text.split(',')
            .map(str::trim)
            .filter(|word| !word.is_empty())
            .map(SchedFlag::from)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, flag: &SchedFlag) -> bool {
        self.0.contains(flag)
    }

    /// In name order.
    pub fn iter(&self) -> impl Iterator<Item = &SchedFlag> {
        self.0.iter()
    }
}

impl FromIterator<SchedFlag> for SchedFlags {
    fn from_iter<I: IntoIterator<Item = SchedFlag>>(iter: I) -> SchedFlags {
        SchedFlags(iter.into_iter().collect())
    }
}

impl fmt::Display for SchedFlags {
    /// ipvsadm's form: `sh-fallback,sh-port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, flag) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(flag.as_str())?;
        }
        Ok(())
    }
}

/// A virtual service as the kernel holds it (everything `ipvsadm -A` sets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    pub scheduler: String,
    /// Persistence timeout in seconds; `None` = not persistent.
    pub persistent: Option<u32>,
    /// Only meaningful with `persistent`.
    pub netmask: Option<Netmask>,
    /// One-packet scheduling (`-o`).
    pub ops: bool,
    /// Scheduler flags (`-b`).
    pub sched_flags: SchedFlags,
}

impl ServiceSpec {
    /// A service with `scheduler` and nothing else set: not persistent, no flags.
    pub fn new(key: ServiceKey, scheduler: &str) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: scheduler.to_owned(),
            persistent: None,
            netmask: None,
            ops: false,
            sched_flags: SchedFlags::default(),
        }
    }
}

/// A real server (destination) as the kernel holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestSpec {
    pub ip: IpAddr,
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub upper: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub lower: u32,
}

impl DestSpec {
    /// A destination without connection thresholds.
    pub fn new(ip: IpAddr, port: u16, forward: Forward, weight: u32) -> DestSpec {
        DestSpec {
            ip,
            port,
            forward,
            weight,
            upper: 0,
            lower: 0,
        }
    }

    /// Address and port; displays as ipvsadm prints a real (`10.0.0.2:80`, `[::1]:80`).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

/// A destination as read back, with its connection counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestEntry {
    pub spec: DestSpec,
    /// The kernel reports `Local` forwarding for reals on a local address.
    pub local: bool,
    pub active_conns: u32,
    pub inactive_conns: u32,
}

impl DestEntry {
    /// A destination as just added: not local, no connections.
    pub fn new(spec: DestSpec) -> DestEntry {
        DestEntry {
            spec,
            local: false,
            active_conns: 0,
            inactive_conns: 0,
        }
    }
}

/// A virtual service as read back, with its destinations in kernel order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub spec: ServiceSpec,
    /// Persistence engine (`pe sip`): read back, never set by ldirectord.
    pub pe: Option<String>,
    pub dests: Vec<DestEntry>,
}

impl ServiceEntry {
    /// A service without persistence engine and without destinations yet.
    pub fn new(spec: ServiceSpec) -> ServiceEntry {
        ServiceEntry {
            spec,
            pe: None,
            dests: Vec::new(),
        }
    }
}

/// The whole IPVS table as an engine reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub services: Vec<ServiceEntry>,
}

impl Table {
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceEntry> {
        self.services.iter().find(|s| s.spec.key == *key)
    }
}

/// One change to the table. Edits carry the full new state, as IPVS requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    AddService(ServiceSpec),
    EditService(ServiceSpec),
    DelService(ServiceKey),
    AddDest(ServiceKey, DestSpec),
    EditDest(ServiceKey, DestSpec),
    /// Quiesce: an edit to weight 0 that leaves thresholds at ipvsadm's default (0).
    /// Stock runs `-e <P> <V> -r RIP:PORT <fwd> -w 0` (no `-x`/`-y`); netlink sends an
    /// edit with weight 0 and thresholds 0. The spec carries weight 0.
    QuiesceDest(ServiceKey, DestSpec),
    /// Re-add a quiesced real (`readdquiescent=yes`): stock runs
    /// `-a <P> <V> -r RIP:PORT <fwd> -w 0` (no `-x`/`-y`); netlink an add with weight 0.
    ReaddQuiescedDest(ServiceKey, DestSpec),
    DelDest {
        service: ServiceKey,
        ip: IpAddr,
        port: u16,
    },
}

impl Op {
    /// Whether the op creates, changes or deletes a virtual service (not a real).
    pub fn is_service_op(&self) -> bool {
        matches!(
            self,
            Op::AddService(_) | Op::EditService(_) | Op::DelService(_)
        )
    }
}

impl fmt::Display for Op {
    /// What the op does, in the operator's words, with ipvsadm's notation for addresses:
    /// `add real server 10.0.0.2:80 to -t 10.0.0.1:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddService(s) => write!(f, "add virtual service {}", s.key),
            Op::EditService(s) => write!(f, "edit virtual service {}", s.key),
            Op::DelService(k) => write!(f, "delete virtual service {k}"),
            Op::AddDest(k, d) => write!(f, "add real server {} to {k}", d.addr()),
            Op::EditDest(k, d) => write!(f, "edit real server {} of {k}", d.addr()),
            Op::QuiesceDest(k, d) => write!(f, "quiesce real server {} of {k}", d.addr()),
            Op::ReaddQuiescedDest(k, d) => {
                write!(f, "re-add quiesced real server {} to {k}", d.addr())
            }
            Op::DelDest { service, ip, port } => write!(
                f,
                "delete real server {} from {service}",
                SocketAddr::new(*ip, *port)
            ),
        }
    }
}

/// Which side of connection synchronisation a kernel sync daemon is (`IP_VS_STATE_*`):
/// the active director runs the master, which multicasts its connection entries; every
/// standby runs a backup, which installs them, so a takeover finds the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum SyncRole {
    Master,
    Backup,
}

impl SyncRole {
    /// ipvsadm's word: `master`, `backup`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
    }

    /// The kernel's `IP_VS_STATE_MASTER` (1) or `IP_VS_STATE_BACKUP` (2).
    pub fn kernel_value(self) -> u32 {
        match self {
            SyncRole::Master => 1,
            SyncRole::Backup => 2,
        }
    }

    /// The state a kernel value names.
    pub fn from_kernel(value: u32) -> Option<SyncRole> {
        match value {
            1 => Some(SyncRole::Master),
            2 => Some(SyncRole::Backup),
            _ => None,
        }
    }
}

/// The largest sync message a master sends: the kernel clamps a master's `maxlen` to a
/// 1500-byte MTU minus the IPv4 and UDP headers.
pub const SYNC_MAXLEN_MASTER: u16 = 1472;

/// The kernel's limit on an interface name (`IFNAMSIZ` 16, NUL included).
pub const IFNAME_MAX: usize = 15;

/// A kernel sync daemon: what `ipvsadm --start-daemon` starts and `--list-daemon` lists.
/// Options left `None` take the kernel's defaults (maxlen from the interface MTU, group
/// 224.0.0.81, port 8848, ttl 1); read back from the kernel, every option is `Some`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SyncDaemon {
    pub role: SyncRole,
    /// The interface the multicast is sent or received on (`--mcast-interface`).
    pub interface: String,
    /// Masters send and backups accept only messages of this id (`--syncid`, 0-255).
    pub syncid: u8,
    /// Largest sync message (`--sync-maxlen`).
    pub maxlen: Option<u16>,
    /// Multicast group, IPv4 or IPv6 (`--mcast-group`).
    pub group: Option<IpAddr>,
    /// UDP port (`--mcast-port`).
    pub port: Option<u16>,
    /// Multicast TTL (`--mcast-ttl`).
    pub ttl: Option<u8>,
}

impl SyncDaemon {
    /// A daemon on `interface` with id `syncid` and the kernel's defaults otherwise.
    pub fn new(role: SyncRole, interface: &str, syncid: u8) -> SyncDaemon {
        SyncDaemon {
            role,
            interface: interface.to_owned(),
            syncid,
            maxlen: None,
            group: None,
            port: None,
            ttl: None,
        }
    }

    /// The optional settings as text, in ipvsadm's order (maxlen, group, port, ttl), so
    /// the configuration renderer and the ipvsadm engine name them their own way.
    pub fn option_values(&self) -> [Option<String>; 4] {
        [
            self.maxlen.map(|n| n.to_string()),
            self.group.map(|a| a.to_string()),
            self.port.map(|n| n.to_string()),
            self.ttl.map(|n| n.to_string()),
        ]
    }

    /// Whether `running` (as the kernel lists it) is this daemon: the same state,
    /// interface and id, and every option set here equal to the kernel's. An option left
    /// to the kernel's default matches whatever the kernel chose.
    pub fn is_satisfied_by(&self, running: &SyncDaemon) -> bool {
        fn same<T: PartialEq>(want: Option<T>, got: Option<T>) -> bool {
            want.is_none() || want == got
        }
        self.role == running.role
            && self.interface == running.interface
            && self.syncid == running.syncid
            && same(self.maxlen, running.maxlen)
            && same(self.group, running.group)
            && same(self.port, running.port)
            && same(self.ttl, running.ttl)
    }
}

/// Whether the kernel could have an interface of this name: 1-15 bytes, no `/`, no
/// white space, not `.` or `..` (the rules of `dev_valid_name`).
pub fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

impl fmt::Display for SyncDaemon {
    /// ipvsadm's `--list-daemon` line: `master sync daemon (mcast=eth0, syncid=0,
    /// maxlen=1472, group=224.0.0.81, port=8848, ttl=1)`, options only when set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sync daemon (mcast={}, syncid={}",
            self.role.as_str(),
            self.interface,
            self.syncid
        )?;
        if let Some(maxlen) = self.maxlen {
            write!(f, ", maxlen={maxlen}")?;
        }
        if let Some(group) = self.group {
            write!(f, ", group={group}")?;
        }
        if let Some(port) = self.port {
            write!(f, ", port={port}")?;
        }
        if let Some(ttl) = self.ttl {
            write!(f, ", ttl={ttl}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn service_keys_and_ops_display_in_ipvsadms_notation() {
        let v6 = ServiceKey::inet(IpProto::Udp, ip("::1"), 53);
        assert_eq!(v6.to_string(), "-u [::1]:53");
        let sctp = ServiceKey::inet(IpProto::Sctp, ip("1.2.3.4"), 80);
        assert_eq!(sctp.to_string(), "--sctp-service 1.2.3.4:80");
        let mark = ServiceKey::Fwmark {
            mark: 5,
            family: Family::Inet6,
        };
        assert_eq!(mark.to_string(), "-f 5 -6");
        let dest = DestSpec::new(ip("2001:db8::1"), 80, Forward::Gate, 1);
        assert_eq!(
            Op::AddDest(v6, dest).to_string(),
            "add real server [2001:db8::1]:80 to -u [::1]:53"
        );
    }

    #[test]
    fn sched_flags_sort_by_name_and_keep_unknown_words() {
        let flags = SchedFlags::parse(" sh-port, sh-fallback,,sh-port,sideways");
        assert_eq!(flags.to_string(), "sh-fallback,sh-port,sideways");
        assert!(flags.contains(&SchedFlag::ShPort));
        assert_eq!(SchedFlag::for_bit("mh", 2), Some(SchedFlag::MhPort));
        assert_eq!(SchedFlag::Other("x".into()).bit(), None);
    }

    #[test]
    fn sync_daemons_match_on_what_was_asked() {
        let want = SyncDaemon::new(SyncRole::Master, "eth0", 7);
        let running = SyncDaemon {
            maxlen: Some(1472),
            group: Some(ip("224.0.0.81")),
            port: Some(8848),
            ttl: Some(1),
            ..want.clone()
        };
        assert!(want.is_satisfied_by(&running));
        assert_eq!(
            running.to_string(),
            "master sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
        );
        let other_port = SyncDaemon {
            port: Some(8849),
            ..want.clone()
        };
        assert!(!other_port.is_satisfied_by(&running));
        let backup = SyncDaemon::new(SyncRole::Backup, "eth0", 7);
        assert!(!backup.is_satisfied_by(&running));
        assert!(!SyncDaemon::new(SyncRole::Master, "eth1", 7).is_satisfied_by(&running));
        assert_eq!(SyncRole::from_kernel(2), Some(SyncRole::Backup));
        assert_eq!(SyncRole::from_kernel(3), None);
    }

    #[test]
    fn interface_names_follow_the_kernels_rules() {
        for good in ["eth0", "br-lan", "enp0s31f6", "a23456789012345"] {
            assert!(valid_interface_name(good), "{good}");
        }
        for bad in ["", ".", "..", "eth 0", "a/b", "eth0:1", "a234567890123456"] {
            assert!(!valid_interface_name(bad), "{bad}");
        }
    }
}
