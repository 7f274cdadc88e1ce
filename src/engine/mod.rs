//! Engines: the edge that programs the IPVS table. One trait, three implementations:
//! `netlink` (generic netlink, default), `ipvsadm` (runs the program with stock
//! ldirectord's argument strings) and `userspace` (an embedded forwarder, see its issue).
//! The director core never talks to an engine directly: it returns [`Op`]s and reads
//! [`Table`]s; the daemon applies them here.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;

use ldirectord_parsers::config::{Family, Forward};

pub mod ipvsadm;
pub mod netlink;
pub mod userspace;

/// A boxed future, so engines can be chosen at run time (`--engine`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// IP protocol of an address-based virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpProto {
    Tcp,
    Udp,
    Sctp,
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

/// Persistence netmask: IPv4 as a dotted mask, IPv6 as a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    V4(Ipv4Addr),
    V6(u8),
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
    /// Scheduler flags as ipvsadm's `-b` takes them (`sh-fallback,sh-port`), sorted.
    pub sched_flags: Vec<String>,
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

impl ServiceSpec {
    /// A service with `scheduler` and nothing else set: not persistent, no flags.
    pub fn new(key: ServiceKey, scheduler: &str) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: scheduler.to_owned(),
            persistent: None,
            netmask: None,
            ops: false,
            sched_flags: Vec::new(),
        }
    }
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

/// A virtual service as read back, with its destinations in kernel order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub spec: ServiceSpec,
    pub dests: Vec<DestEntry>,
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

/// What went wrong in an engine. The daemon logs it, retries on the next pass and keeps
/// running.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// IPVS is not available: module not loaded, no CAP_NET_ADMIN, no ipvsadm program.
    #[error("IPVS is not available: {0}")]
    Unavailable(String),
    /// The kernel (or ipvsadm) refused one operation; `errno` when known.
    #[error("{op}: {message}")]
    Rejected {
        op: String,
        message: String,
        errno: Option<i32>,
    },
    /// Talking to the kernel or the program failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An engine that reads and programs a table.
pub trait Engine: Send {
    /// A short name for logs: `netlink`, `ipvsadm`, `userspace`.
    fn name(&self) -> &'static str;
    /// Read the whole table.
    fn dump(&mut self) -> BoxFuture<'_, Result<Table, EngineError>>;
    /// Apply one operation.
    fn apply<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Result<(), EngineError>>;
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's form: `-t 1.2.3.4:80`, `-u [::1]:53`, `-f 5`, `-f 5 -6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet { proto, ip, port } => {
                let flag = match proto {
                    IpProto::Tcp => "-t",
                    IpProto::Udp => "-u",
                    IpProto::Sctp => "--sctp-service",
                };
                match ip {
                    IpAddr::V4(v4) => write!(f, "{flag} {v4}:{port}"),
                    IpAddr::V6(v6) => write!(f, "{flag} [{v6}]:{port}"),
                }
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
