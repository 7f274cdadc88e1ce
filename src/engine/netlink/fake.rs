//! An in-memory IPVS that speaks the kernel's generic-netlink messages.
//!
//! [`FakeKernel`] takes request bytes and returns reply bytes, applying them to an
//! emulated table with the kernel's rules (`net/netfilter/ipvs/ip_vs_ctl.c`, summarised in
//! `shared/reference/deps.md` §1.2): EEXIST for a duplicate, ESRCH for a missing service,
//! ENOENT for a missing destination or scheduler, EINVAL for missing attributes, ERANGE
//! for a negative weight or a lower threshold above the upper one. Replies look like the
//! kernel's: nests without `NLA_F_NESTED`, 16-byte addresses, `HASHED` in the flags,
//! statistics, and (unless [`FakeKernel::set_legacy_replies`]) `ADDR_FAMILY` and
//! `STATS64`. It is public so the director's tests and the benchmarks can run the real
//! netlink engine end to end on machines without IPVS; it is not a model of forwarding.
//!
//! Sync daemons are kept as the kernel keeps their settings (one master and one backup at
//! most, its defaults filled in, ENODEV for an interface it does not have: `lo` and `eth0`
//! plus [`FakeKernel::add_interface`]); nothing is synchronised.
//!
//! Faults can be queued with [`FakeKernel::inject`] (issue 14): each [`Fault`] spoils the
//! next request it applies to, the way a kernel or a socket fails in production, so the
//! engine and the daemon can be shown to report, retry and converge.
//!
//! What it does not emulate: connection tracking (counters stay as set with
//! [`FakeKernel::set_connections`]), timeouts, the kernel's dump order (it dumps services
//! by key and destinations in insertion order; ipvsadm sorts anyway).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTIPART, NLMSG_DONE, NLMSG_ERROR, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};

use super::Transport;
use super::wire::{
    self, AF_INET, AF_INET6, Attr, GenlPayload, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
    IpvsMessage, cmd, cmd_attr, daemon_attr, dest_attr, svc_attr, svc_flag,
};
use crate::engine::{
    BoxFuture, DestEntry, DestSpec, Errno, Family, Forward, IpProto, ServiceEntry, ServiceKey,
    ServiceSpec, SyncDaemon, SyncRole,
};

/// The family id the fake kernel hands out for IPVS (real kernels pick one at load time).
pub const FAKE_IPVS_FAMILY_ID: u16 = 0x24;

/// Schedulers a stock kernel ships (`ip_vs_*.ko`); others fail with ENOENT like a
/// missing module.
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

use Errno::{
    EAFNOSUPPORT, EEXIST, EINVAL, ENODEV, ENOENT, EOPNOTSUPP, EPROTONOSUPPORT, ERANGE, ESRCH,
};

/// The order the kernel's table keeps services in (and dumps them): address services
/// before marks, then by family, protocol, address and port, or by mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DumpOrder(bool, Family, u8, Option<IpAddr>, u16, u32);

impl DumpOrder {
    fn of(key: &ServiceKey) -> DumpOrder {
        match *key {
            ServiceKey::Inet { proto, ip, port } => {
                DumpOrder(false, Family::of(ip), proto.number(), Some(ip), port, 0)
            }
            ServiceKey::Fwmark { mark, family } => DumpOrder(true, family, 0, None, 0, mark),
        }
    }
}

#[derive(Debug)]
struct State {
    has_ipvs: bool,
    legacy_replies: bool,
    services: BTreeMap<DumpOrder, ServiceEntry>,
    local: HashSet<IpAddr>,
    next_seq: u32,
    requests: u64,
    /// Running sync daemons, master first, with the kernel's defaults filled in.
    daemons: Vec<SyncDaemon>,
    interfaces: HashSet<String>,
    /// Faults still to happen, oldest first.
    faults: VecDeque<Fault>,
    /// The transport was closed under the engine; requests fail until it is reopened.
    closed: bool,
}

/// One failure to inject, consumed by the first request it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next dump fails on the socket with `ENOBUFS` (the receive buffer overflowed
    /// and the kernel dropped replies).
    NoBufs,
    /// The next dump's multi-part reply ends without `NLMSG_DONE`.
    MissingDone,
    /// The next dump's last data message arrives cut in half.
    CutMessage,
    /// The next change (not a dump) is refused with this errno, e.g. `EBUSY`, `ENOMEM`.
    Refuse(Errno),
    /// The next request finds the transport closed, and so does every one after it until
    /// the engine reopens it ([`Transport::reopen`]).
    Closed,
    /// The next request is never answered.
    Unanswered,
}

impl Fault {
    /// Whether this fault spoils a request that is (or is not) a dump.
    fn applies_to(self, dump: bool) -> bool {
        match self {
            Fault::NoBufs | Fault::MissingDone | Fault::CutMessage => dump,
            Fault::Refuse(_) => !dump,
            Fault::Closed | Fault::Unanswered => true,
        }
    }
}

/// An emulated kernel with (or without) IPVS. Clones share one table, so a test can keep
/// a handle while the engine owns another.
#[derive(Debug, Clone)]
pub struct FakeKernel {
    state: Arc<Mutex<State>>,
}

/// Two handles are equal when they share one kernel.
impl PartialEq for FakeKernel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl Eq for FakeKernel {}

impl Default for FakeKernel {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeKernel {
    /// A kernel with IPVS loaded and an empty table.
    pub fn new() -> Self {
        FakeKernel {
            state: Arc::new(Mutex::new(State {
                has_ipvs: true,
                legacy_replies: false,
                services: BTreeMap::new(),
                local: HashSet::new(),
                next_seq: 0,
                requests: 0,
                daemons: Vec::new(),
                interfaces: ["lo", "eth0"].map(str::to_owned).into(),
                faults: VecDeque::new(),
                closed: false,
            })),
        }
    }

    /// A kernel without IPVS: the family lookup answers ENOENT, like this machine's.
    pub fn without_ipvs() -> Self {
        let kernel = Self::new();
        kernel.lock().has_ipvs = false;
        kernel
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another test thread must not hide this kernel's table.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replies like a kernel older than 3.18: no `ADDR_FAMILY`, no `STATS64`.
    pub fn set_legacy_replies(&self, legacy: bool) {
        self.lock().legacy_replies = legacy;
    }

    /// Makes `ip` a local address: reals on it are listed with `LOCALNODE` forwarding.
    pub fn add_local_address(&self, ip: IpAddr) {
        self.lock().local.insert(ip);
    }

    /// Sets a real's connection counters; false if there is no such real.
    pub fn set_connections(
        &self,
        service: &ServiceKey,
        ip: IpAddr,
        port: u16,
        active: u32,
        inactive: u32,
    ) -> bool {
        let mut state = self.lock();
        let Some(svc) = state.services.get_mut(&DumpOrder::of(service)) else {
            return false;
        };
        match svc
            .dests
            .iter_mut()
            .find(|d| d.spec.ip == ip && d.spec.port == port)
        {
            Some(dest) => {
                dest.active_conns = active;
                dest.inactive_conns = inactive;
                true
            }
            None => false,
        }
    }

    /// Gives the kernel a network interface a sync daemon can use (it has `lo`, `eth0`).
    pub fn add_interface(&self, name: &str) {
        self.lock().interfaces.insert(name.to_owned());
    }

    /// The sync daemons that run, as `GET_DAEMON` lists them.
    pub fn sync_daemons(&self) -> Vec<SyncDaemon> {
        self.lock().daemons.clone()
    }

    /// Queues faults; each spoils the first later request it applies to (see [`Fault`]),
    /// in order. Requests of the IPVS family count; the family lookup does not.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Faults injected that have not happened yet.
    pub fn pending_faults(&self) -> usize {
        self.lock().faults.len()
    }

    /// The fault the next request (a dump or not) meets, taken off the queue.
    fn next_fault(&self, dump: bool) -> Option<Fault> {
        let mut state = self.lock();
        if state.closed {
            return Some(Fault::Closed);
        }
        let index = state.faults.iter().position(|f| f.applies_to(dump))?;
        let fault = state.faults.remove(index)?;
        if fault == Fault::Closed {
            state.closed = true;
        }
        Some(fault)
    }

    /// How many requests the kernel has answered.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// The table as it is, read without a request (so no fault is consumed).
    pub fn services(&self) -> Vec<ServiceEntry> {
        self.lock().services.values().cloned().collect()
    }

    /// Number of virtual services and of real servers in the table.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (
            state.services.len(),
            state.services.values().map(|s| s.dests.len()).sum(),
        )
    }

    /// Handles one request message (bytes as written to the socket) and returns the
    /// reply messages (bytes as the socket would deliver them, one per message).
    pub fn handle(&self, request: &[u8]) -> Vec<Vec<u8>> {
        let mut state = self.lock();
        state.requests += 1;
        let message = match NetlinkMessage::<GenlPayload>::deserialize(request) {
            Ok(message) => message,
            // The kernel drops what it cannot frame; an unparsable payload is EINVAL.
            Err(_) if request.len() < 16 => return vec![],
            Err(_) => return vec![error_reply(request, EINVAL)],
        };
        let header = message.header;
        let dump = header.flags & NLM_F_DUMP == NLM_F_DUMP;
        let ack = header.flags & NLM_F_ACK != 0;
        let replies: Result<IpvsReplyKind, Errno> = match message.payload {
            NetlinkPayload::InnerMessage(GenlPayload::Ctrl(genl)) => {
                return state.ctrl(
                    request,
                    &genl.payload,
                    header.sequence_number,
                    header.port_number,
                    ack,
                );
            }
            NetlinkPayload::InnerMessage(GenlPayload::Ipvs(_))
                if header.message_type != FAKE_IPVS_FAMILY_ID || !state.has_ipvs =>
            {
                Err(ENOENT)
            }
            NetlinkPayload::InnerMessage(GenlPayload::Ipvs(genl)) => {
                state.ipvs(&genl.payload, dump)
            }
            _ => Err(EINVAL),
        };
        match replies {
            Err(errno) => vec![error_reply(request, errno)],
            Ok(IpvsReplyKind::Dump(messages)) => {
                let mut out: Vec<Vec<u8>> = messages
                    .into_iter()
                    .map(|m| {
                        data_reply(
                            m,
                            NLM_F_MULTIPART,
                            header.sequence_number,
                            header.port_number,
                        )
                    })
                    .collect();
                out.push(done_reply(header.sequence_number, header.port_number));
                out
            }
            Ok(IpvsReplyKind::Single(message)) => {
                let mut out = vec![data_reply(
                    message,
                    0,
                    header.sequence_number,
                    header.port_number,
                )];
                if ack {
                    out.push(ack_reply(request));
                }
                out
            }
            Ok(IpvsReplyKind::Ack) if ack => vec![ack_reply(request)],
            Ok(IpvsReplyKind::Ack) => vec![],
        }
    }
}

enum IpvsReplyKind {
    Ack,
    Single(IpvsMessage),
    Dump(Vec<IpvsMessage>),
}

impl State {
    fn ctrl(&self, request: &[u8], ctrl: &GenlCtrl, seq: u32, pid: u32, ack: bool) -> Vec<Vec<u8>> {
        let asks_ipvs = ctrl
            .nlas
            .iter()
            .any(|a| matches!(a, GenlCtrlAttrs::FamilyName(n) if n == wire::IPVS_GENL_NAME));
        if ctrl.cmd != GenlCtrlCmd::GetFamily || !asks_ipvs || !self.has_ipvs {
            return vec![error_reply(request, ENOENT)];
        }
        let reply = GenlCtrl {
            cmd: GenlCtrlCmd::NewFamily,
            nlas: vec![
                GenlCtrlAttrs::FamilyName(wire::IPVS_GENL_NAME.into()),
                GenlCtrlAttrs::FamilyId(FAKE_IPVS_FAMILY_ID),
                GenlCtrlAttrs::Version(u32::from(wire::IPVS_GENL_VERSION)),
                GenlCtrlAttrs::HdrSize(0),
                GenlCtrlAttrs::MaxAttr(6),
            ],
        };
        let mut message = NetlinkMessage::from(GenlPayload::Ctrl(GenlMessage::from_payload(reply)));
        message.header.sequence_number = seq;
        message.header.port_number = pid;
        message.finalize();
        let mut out = vec![wire::to_bytes(&message)];
        if ack {
            out.push(ack_reply(request));
        }
        out
    }

    fn ipvs(&mut self, message: &IpvsMessage, dump: bool) -> Result<IpvsReplyKind, Errno> {
        let nest = |kind| -> Result<Option<Vec<Attr>>, Errno> {
            match message.attr(kind) {
                Some(attr) => attr.children().map(Some).map_err(|_| EINVAL),
                None => Ok(None),
            }
        };
        let service_nest = nest(cmd_attr::SERVICE)?;
        match message.cmd {
            cmd::GET_SERVICE if dump => {
                let legacy = self.legacy_replies;
                Ok(IpvsReplyKind::Dump(
                    self.services
                        .values()
                        .map(|svc| service_reply(svc, legacy))
                        .collect(),
                ))
            }
            cmd::GET_SERVICE => {
                let key = parse_service_key(&service_nest.ok_or(EINVAL)?)?;
                let svc = self.services.get(&DumpOrder::of(&key)).ok_or(ESRCH)?;
                Ok(IpvsReplyKind::Single(service_reply(
                    svc,
                    self.legacy_replies,
                )))
            }
            cmd::GET_DEST if dump => {
                let key = parse_service_key(&service_nest.ok_or(EINVAL)?)?;
                // The kernel ends the dump quietly when the service does not exist.
                let legacy = self.legacy_replies;
                let replies = match self.services.get(&DumpOrder::of(&key)) {
                    Some(svc) => svc.dests.iter().map(|d| dest_reply(d, legacy)).collect(),
                    None => vec![],
                };
                Ok(IpvsReplyKind::Dump(replies))
            }
            cmd::GET_DAEMON if dump => Ok(IpvsReplyKind::Dump(
                self.daemons.iter().map(daemon_reply).collect(),
            )),
            cmd::NEW_DAEMON => {
                self.new_daemon(&nest(cmd_attr::DAEMON)?.ok_or(EINVAL)?)?;
                Ok(IpvsReplyKind::Ack)
            }
            cmd::DEL_DAEMON => {
                let nest = nest(cmd_attr::DAEMON)?.ok_or(EINVAL)?;
                let state = get(&nest, daemon_attr::STATE, read_u32)?.ok_or(EINVAL)?;
                let role = SyncRole::from_kernel(state).ok_or(EINVAL)?;
                let before = self.daemons.len();
                self.daemons.retain(|d| d.role != role);
                if self.daemons.len() == before {
                    return Err(ESRCH);
                }
                Ok(IpvsReplyKind::Ack)
            }
            cmd::NEW_SERVICE
            | cmd::SET_SERVICE
            | cmd::DEL_SERVICE
            | cmd::NEW_DEST
            | cmd::SET_DEST
            | cmd::DEL_DEST => {
                let service_nest = service_nest.ok_or(EINVAL)?;
                let key = parse_service_key(&service_nest)?;
                let id = DumpOrder::of(&key);
                let exists = self.services.contains_key(&id);
                if message.cmd != cmd::NEW_SERVICE && !exists {
                    return Err(ESRCH);
                }
                match message.cmd {
                    cmd::NEW_SERVICE if exists => Err(EEXIST),
                    cmd::NEW_SERVICE => {
                        let svc = parse_service_params(&service_nest, key, None)?;
                        self.services.insert(id, svc);
                        Ok(IpvsReplyKind::Ack)
                    }
                    cmd::SET_SERVICE => {
                        let old = &self.services[&id];
                        let mut svc = parse_service_params(&service_nest, key, Some(&old.spec))?;
                        svc.dests = old.dests.clone();
                        self.services.insert(id, svc);
                        Ok(IpvsReplyKind::Ack)
                    }
                    cmd::DEL_SERVICE => {
                        self.services.remove(&id);
                        Ok(IpvsReplyKind::Ack)
                    }
                    _ => {
                        let dest_nest = nest(cmd_attr::DEST)?.ok_or(EINVAL)?;
                        self.dest_op(message.cmd, &key, &dest_nest)
                    }
                }
            }
            _ => Err(EOPNOTSUPP),
        }
    }

    /// `ip_vs_genl_new_daemon` and `start_sync_thread`: state, interface and id are
    /// required; a group must be multicast; the interface must exist; one daemon per role;
    /// unset options get the kernel's defaults (group 224.0.0.81, port 8848, ttl 1, a
    /// master's maxlen clamped to a 1500-byte MTU).
    fn new_daemon(&mut self, nest: &[Attr]) -> Result<(), Errno> {
        let state = get(nest, daemon_attr::STATE, read_u32)?.ok_or(EINVAL)?;
        let ifn = find(nest, daemon_attr::MCAST_IFN).ok_or(EINVAL)?;
        let syncid = get(nest, daemon_attr::SYNC_ID, read_u32)?.ok_or(EINVAL)?;
        let end = ifn.iter().position(|b| *b == 0).unwrap_or(ifn.len());
        let interface = String::from_utf8_lossy(&ifn[..end]).into_owned();
        let group = match (
            find(nest, daemon_attr::MCAST_GROUP),
            find(nest, daemon_attr::MCAST_GROUP6),
        ) {
            (Some(b), _) => IpAddr::from(<[u8; 4]>::try_from(b).map_err(|_| EINVAL)?),
            (None, Some(b)) => IpAddr::from(<[u8; 16]>::try_from(b).map_err(|_| EINVAL)?),
            (None, None) => IpAddr::from([224, 0, 0, 81]),
        };
        if !group.is_multicast() {
            return Err(EINVAL);
        }
        // start_sync_thread refuses anything but these two states.
        let role = SyncRole::from_kernel(state).ok_or(EINVAL)?;
        if self.daemons.iter().any(|d| d.role == role) {
            return Err(EEXIST);
        }
        if !self.interfaces.contains(&interface) {
            return Err(ENODEV);
        }
        let headers = if group.is_ipv6() { 48 } else { 28 };
        let (min, max) = match role {
            SyncRole::Master => (1, 1500 - headers),
            SyncRole::Backup => (1024, 1500 - headers),
        };
        let maxlen = match get(nest, daemon_attr::SYNC_MAXLEN, read_u16)? {
            Some(0) | None => max,
            Some(n) => n.clamp(min, max),
        };
        let ttl = match find(nest, daemon_attr::MCAST_TTL) {
            Some([0, ..]) | None => 1,
            Some([t, ..]) => *t,
            Some([]) => return Err(EINVAL),
        };
        let daemon = SyncDaemon {
            role,
            interface,
            syncid: syncid as u8,
            maxlen: Some(maxlen),
            group: Some(group),
            port: Some(match get(nest, daemon_attr::MCAST_PORT, read_u16)? {
                Some(0) | None => 8848,
                Some(port) => port,
            }),
            ttl: Some(ttl),
        };
        self.daemons.push(daemon);
        self.daemons.sort_by_key(|d| d.role);
        Ok(())
    }

    fn dest_op(
        &mut self,
        command: u8,
        key: &ServiceKey,
        nest: &[Attr],
    ) -> Result<IpvsReplyKind, Errno> {
        let full = command != cmd::DEL_DEST;
        let mut dest = parse_dest(nest, key.family(), full)?;
        let spec = &mut dest.spec;
        if Family::of(spec.ip) != key.family() && full && spec.forward != Forward::Ipip {
            return Err(EINVAL);
        }
        if full {
            if spec.weight > i32::MAX as u32 || spec.lower > spec.upper {
                return Err(ERANGE);
            }
            if spec.ip.is_unspecified() || spec.ip.is_multicast() {
                return Err(EINVAL);
            }
            if self.local.contains(&spec.ip) {
                dest.local = true;
            }
        }
        let svc = self.services.get_mut(&DumpOrder::of(key)).ok_or(ESRCH)?;
        let existing = svc
            .dests
            .iter()
            .position(|d| d.spec.ip == dest.spec.ip && d.spec.port == dest.spec.port);
        match (command, existing) {
            (cmd::NEW_DEST, Some(_)) => Err(EEXIST),
            (cmd::NEW_DEST, None) => {
                svc.dests.push(dest);
                Ok(IpvsReplyKind::Ack)
            }
            (_, None) => Err(ENOENT),
            (cmd::SET_DEST, Some(index)) => {
                let old = &mut svc.dests[index];
                dest.active_conns = old.active_conns;
                dest.inactive_conns = old.inactive_conns;
                *old = dest;
                Ok(IpvsReplyKind::Ack)
            }
            (_, Some(index)) => {
                svc.dests.remove(index);
                Ok(IpvsReplyKind::Ack)
            }
        }
    }
}

use wire::{find, read_be16, read_u16, read_u32};

/// An attribute read with `read` (one of wire's readers); a short value is EINVAL.
fn get<T>(
    attrs: &[Attr],
    kind: u16,
    read: fn(&[u8], &str) -> Result<T, netlink_packet_core::DecodeError>,
) -> Result<Option<T>, Errno> {
    find(attrs, kind)
        .map(|bytes| read(bytes, "").map_err(|_| EINVAL))
        .transpose()
}

/// `nla_memcpy` into a zeroed `union nf_inet_addr`; only the family's bytes count.
fn get_addr(attrs: &[Attr], kind: u16, family: Family) -> Result<Option<IpAddr>, Errno> {
    let Some(bytes) = find(attrs, kind) else {
        return Ok(None);
    };
    if bytes.len() > 16 {
        return Err(EINVAL);
    }
    let mut addr = [0u8; 16];
    addr[..bytes.len()].copy_from_slice(bytes);
    Ok(Some(match family {
        Family::Inet => IpAddr::from([addr[0], addr[1], addr[2], addr[3]]),
        Family::Inet6 => IpAddr::from(addr),
    }))
}

fn family_of_af(af: u16) -> Result<Family, Errno> {
    match af {
        AF_INET => Ok(Family::Inet),
        AF_INET6 => Ok(Family::Inet6),
        _ => Err(EAFNOSUPPORT),
    }
}

fn parse_service_key(nest: &[Attr]) -> Result<ServiceKey, Errno> {
    let family = family_of_af(get(nest, svc_attr::AF, read_u16)?.ok_or(EINVAL)?)?;
    match get(nest, svc_attr::FWMARK, read_u32)? {
        Some(mark) if mark != 0 => Ok(ServiceKey::Fwmark { mark, family }),
        _ => {
            let proto = get(nest, svc_attr::PROTOCOL, read_u16)?.ok_or(EINVAL)?;
            let ip = get_addr(nest, svc_attr::ADDR, family)?.ok_or(EINVAL)?;
            let port = get(nest, svc_attr::PORT, read_be16)?.ok_or(EINVAL)?;
            let proto = match proto {
                IPPROTO_TCP => IpProto::Tcp,
                IPPROTO_UDP => IpProto::Udp,
                IPPROTO_SCTP => IpProto::Sctp,
                _ => return Err(EPROTONOSUPPORT),
            };
            Ok(ServiceKey::Inet { proto, ip, port })
        }
    }
}

fn nul_string(bytes: &[u8], max: usize) -> Result<String, Errno> {
    let end = bytes.iter().position(|b| *b == 0).ok_or(EINVAL)?;
    if end >= max {
        return Err(EINVAL);
    }
    String::from_utf8(bytes[..end].to_vec()).map_err(|_| EINVAL)
}

/// The "full entry" part of NEW/SET_SERVICE, with the kernel's flag merge
/// `(old & !mask) | (flags & mask)`.
fn parse_service_params(
    nest: &[Attr],
    key: ServiceKey,
    old: Option<&ServiceSpec>,
) -> Result<ServiceEntry, Errno> {
    let sched = nul_string(
        find(nest, svc_attr::SCHED_NAME).ok_or(EINVAL)?,
        wire::SCHED_NAME_MAX,
    )?;
    let flag_bytes = find(nest, svc_attr::FLAGS).ok_or(EINVAL)?;
    if flag_bytes.len() != 8 {
        return Err(EINVAL);
    }
    let flags = u32::from_ne_bytes(flag_bytes[..4].try_into().map_err(|_| EINVAL)?);
    let mask = u32::from_ne_bytes(flag_bytes[4..].try_into().map_err(|_| EINVAL)?);
    let timeout = get(nest, svc_attr::TIMEOUT, read_u32)?.ok_or(EINVAL)?;
    let netmask = get(nest, svc_attr::NETMASK, read_u32)?.ok_or(EINVAL)?;
    let pe = find(nest, svc_attr::PE_NAME)
        .map(|b| nul_string(b, 16))
        .transpose()?
        .filter(|p| !p.is_empty());
    if !SCHEDULERS.contains(&sched.as_str()) || pe.as_deref().is_some_and(|p| p != "sip") {
        return Err(ENOENT);
    }
    if key.family() == Family::Inet6 && !(1..=128).contains(&netmask) {
        return Err(EINVAL);
    }
    // A stored service holds only flags it can name, so its bits always encode.
    let old_flags = old.map_or(0, |spec| wire::service_flags(spec).unwrap_or(0));
    let flags = (old_flags & !mask) | (flags & mask);
    let persistent = flags & svc_flag::PERSISTENT != 0;
    Ok(ServiceEntry {
        spec: ServiceSpec {
            key,
            sched_flags: wire::sched_flag_names(&sched, flags),
            scheduler: sched,
            persistent: persistent.then_some(timeout),
            netmask: wire::netmask_of(persistent, key.family(), netmask),
            ops: flags & svc_flag::ONEPACKET != 0,
        },
        pe,
        dests: Vec::new(),
    })
}

/// A destination from a NEW/SET/DEL_DEST nest; without `full` (DEL) only its address.
/// A forwarding method outside the four the kernel knows is refused.
fn parse_dest(nest: &[Attr], service_family: Family, full: bool) -> Result<DestEntry, Errno> {
    let family = match get(nest, dest_attr::ADDR_FAMILY, read_u16)? {
        Some(0) | None => service_family,
        Some(af) => family_of_af(af)?,
    };
    let ip = get_addr(nest, dest_attr::ADDR, family)?.ok_or(EINVAL)?;
    let port = get(nest, dest_attr::PORT, read_be16)?.ok_or(EINVAL)?;
    let mut dest = DestEntry {
        spec: DestSpec::new(ip, port, Forward::Masq, 0),
        local: false,
        active_conns: 0,
        inactive_conns: 0,
    };
    if full {
        let method = get(nest, dest_attr::FWD_METHOD, read_u32)?.ok_or(EINVAL)?;
        (dest.spec.forward, dest.local) = wire::forward_of(method).ok_or(EINVAL)?;
        dest.spec.weight = get(nest, dest_attr::WEIGHT, read_u32)?.ok_or(EINVAL)?;
        dest.spec.upper = get(nest, dest_attr::U_THRESH, read_u32)?.ok_or(EINVAL)?;
        dest.spec.lower = get(nest, dest_attr::L_THRESH, read_u32)?.ok_or(EINVAL)?;
    }
    Ok(dest)
}

/// A nest as the kernel writes it (`nla_nest_start_noflag`): no `NLA_F_NESTED`.
fn kernel_nest(kind: u16, children: Vec<Attr>) -> Attr {
    use netlink_packet_core::Emitable;
    let mut bytes = vec![0u8; children.as_slice().buffer_len()];
    children.as_slice().emit(&mut bytes);
    Attr::Bytes(kind, bytes)
}

/// Statistics as the kernel sends them: counters u32 in STATS, u64 in STATS64, byte
/// counters always u64 (all zero here).
fn stats(all_u64: bool) -> Vec<Attr> {
    (1u16..=10)
        .map(|kind| {
            if all_u64 || kind == 4 || kind == 5 {
                Attr::u64(kind, 0)
            } else {
                Attr::u32(kind, 0)
            }
        })
        .collect()
}

fn service_reply(svc: &ServiceEntry, legacy: bool) -> IpvsMessage {
    let spec = &svc.spec;
    let mut attrs = wire::service_identity(&spec.key);
    attrs.push(Attr::string(svc_attr::SCHED_NAME, &spec.scheduler));
    if let Some(pe) = &svc.pe {
        attrs.push(Attr::string(svc_attr::PE_NAME, pe));
    }
    // What was stored was encodable: it came from a request.
    let flags = wire::service_flags(spec).unwrap_or(0) | svc_flag::HASHED;
    let mut flag_bytes = flags.to_ne_bytes().to_vec();
    flag_bytes.extend_from_slice(&u32::MAX.to_ne_bytes());
    attrs.push(Attr::Bytes(svc_attr::FLAGS, flag_bytes));
    attrs.push(Attr::u32(svc_attr::TIMEOUT, spec.persistent.unwrap_or(0)));
    attrs.push(Attr::u32(
        svc_attr::NETMASK,
        wire::netmask_value(spec).unwrap_or(0),
    ));
    kernel_reply(cmd::NEW_SERVICE, cmd_attr::SERVICE, attrs, legacy)
}

fn dest_reply(dest: &DestEntry, legacy: bool) -> IpvsMessage {
    let spec = &dest.spec;
    let mut attrs = vec![
        Attr::addr(dest_attr::ADDR, spec.ip),
        Attr::be16(dest_attr::PORT, spec.port),
        Attr::u32(
            dest_attr::FWD_METHOD,
            wire::fwd_method(spec.forward, dest.local),
        ),
        Attr::u32(dest_attr::WEIGHT, spec.weight),
    ];
    if !legacy {
        attrs.push(Attr::u8(dest_attr::TUN_TYPE, 0));
        attrs.push(Attr::be16(dest_attr::TUN_PORT, 0));
        attrs.push(Attr::u16(dest_attr::TUN_FLAGS, 0));
    }
    attrs.extend([
        Attr::u32(dest_attr::U_THRESH, spec.upper),
        Attr::u32(dest_attr::L_THRESH, spec.lower),
        Attr::u32(dest_attr::ACTIVE_CONNS, dest.active_conns),
        Attr::u32(dest_attr::INACT_CONNS, dest.inactive_conns),
        Attr::u32(dest_attr::PERSIST_CONNS, 0),
    ]);
    if !legacy {
        attrs.push(Attr::u16(
            dest_attr::ADDR_FAMILY,
            wire::af(Family::of(spec.ip)),
        ));
    }
    kernel_reply(cmd::NEW_DEST, cmd_attr::DEST, attrs, legacy)
}

/// A `cmd` reply with `attrs` and their statistics (`STATS`, and `STATS64` unless
/// `legacy`; both have the same attribute number in a service and a destination) in a
/// `nest_kind` nest.
fn kernel_reply(cmd: u8, nest_kind: u16, mut attrs: Vec<Attr>, legacy: bool) -> IpvsMessage {
    attrs.push(kernel_nest(svc_attr::STATS, stats(false)));
    if !legacy {
        attrs.push(kernel_nest(svc_attr::STATS64, stats(true)));
    }
    IpvsMessage {
        cmd,
        attrs: vec![kernel_nest(nest_kind, attrs)],
    }
}

/// `ip_vs_genl_fill_daemon`: a `NEW_DAEMON` message with every setting.
fn daemon_reply(daemon: &SyncDaemon) -> IpvsMessage {
    let mut attrs = vec![
        Attr::u32(daemon_attr::STATE, daemon.role.kernel_value()),
        Attr::string(daemon_attr::MCAST_IFN, &daemon.interface),
        Attr::u32(daemon_attr::SYNC_ID, u32::from(daemon.syncid)),
        Attr::u16(daemon_attr::SYNC_MAXLEN, daemon.maxlen.unwrap_or(0)),
        Attr::u16(daemon_attr::MCAST_PORT, daemon.port.unwrap_or(0)),
        Attr::u8(daemon_attr::MCAST_TTL, daemon.ttl.unwrap_or(0)),
    ];
    match daemon.group {
        Some(IpAddr::V4(g)) => attrs.push(Attr::Bytes(daemon_attr::MCAST_GROUP, g.octets().into())),
        Some(IpAddr::V6(g)) => {
            attrs.push(Attr::Bytes(daemon_attr::MCAST_GROUP6, g.octets().into()))
        }
        None => {}
    }
    IpvsMessage {
        cmd: cmd::NEW_DAEMON,
        attrs: vec![kernel_nest(cmd_attr::DAEMON, attrs)],
    }
}

fn data_reply(message: IpvsMessage, flags: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut reply = wire::netlink_message(FAKE_IPVS_FAMILY_ID, flags, message);
    reply.header.sequence_number = seq;
    reply.header.port_number = pid;
    wire::to_bytes(&reply)
}

/// A raw netlink header plus payload, for the kernel's own message types.
fn control_message(kind: u16, flags: u16, seq: u32, pid: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&pid.to_ne_bytes());
    out.extend_from_slice(payload);
    out
}

fn seq_pid(request: &[u8]) -> (u32, u32) {
    let word = |at: usize| {
        request
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .unwrap_or(0)
    };
    (word(8), word(12))
}

/// `NLMSG_ERROR` with a negative errno and the whole request echoed, as the kernel does.
fn error_reply(request: &[u8], errno: Errno) -> Vec<u8> {
    let (seq, pid) = seq_pid(request);
    let mut payload = (-(errno as i32)).to_ne_bytes().to_vec();
    payload.extend_from_slice(request);
    control_message(NLMSG_ERROR, 0, seq, pid, &payload)
}

/// `NLMSG_ERROR` with code 0 and only the request's header echoed (flag `NLM_F_CAPPED`).
fn ack_reply(request: &[u8]) -> Vec<u8> {
    let (seq, pid) = seq_pid(request);
    let mut payload = 0i32.to_ne_bytes().to_vec();
    payload.extend_from_slice(&request[..16.min(request.len())]);
    control_message(NLMSG_ERROR, 0x100, seq, pid, &payload)
}

fn done_reply(seq: u32, pid: u32) -> Vec<u8> {
    control_message(NLMSG_DONE, NLM_F_MULTIPART, seq, pid, &0i32.to_ne_bytes())
}

impl Transport for FakeKernel {
    fn request(
        &mut self,
        mut message: NetlinkMessage<GenlPayload>,
    ) -> BoxFuture<'_, io::Result<Vec<NetlinkMessage<GenlPayload>>>> {
        let seq = {
            let mut state = self.lock();
            state.next_seq = state.next_seq.wrapping_add(1);
            state.next_seq
        };
        message.header.sequence_number = seq;
        let ipvs = matches!(
            message.payload,
            NetlinkPayload::InnerMessage(GenlPayload::Ipvs(_))
        );
        let dump = message.header.flags & NLM_F_DUMP == NLM_F_DUMP;
        let fault = if ipvs { self.next_fault(dump) } else { None };
        let mut replies = match fault {
            Some(Fault::Closed) => return Box::pin(std::future::ready(Err(closed()))),
            Some(Fault::NoBufs) => {
                let error = io::Error::from_raw_os_error(Errno::ENOBUFS as i32);
                return Box::pin(std::future::ready(Err(error)));
            }
            Some(Fault::Unanswered) => return Box::pin(std::future::pending()),
            Some(Fault::Refuse(errno)) => {
                let request = wire::to_bytes(&message);
                self.lock().requests += 1;
                vec![error_reply(&request, errno)]
            }
            _ => self.handle(&wire::to_bytes(&message)),
        };
        match fault {
            Some(Fault::MissingDone) => {
                replies.pop();
            }
            Some(Fault::CutMessage) if replies.len() >= 2 => {
                let last = replies.len() - 2;
                let cut = replies[last].len() / 2;
                replies[last].truncate(cut);
            }
            _ => {}
        }
        let parsed = replies
            .iter()
            .map(|bytes| {
                NetlinkMessage::<GenlPayload>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            })
            .collect();
        Box::pin(std::future::ready(parsed))
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.lock().closed = false;
        Ok(())
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the netlink socket was closed (in-memory kernel)",
    )
}
