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
//! What it does not emulate: connection tracking (counters stay as set with
//! [`FakeKernel::set_connections`]), sync daemons, timeouts, the kernel's dump order (it
//! dumps services by key and destinations in insertion order; ipvsadm sorts anyway).

use std::collections::{BTreeMap, HashSet};
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
    IpvsMessage, cmd, cmd_attr, dest_attr, fwd, svc_attr, svc_flag,
};
use crate::engine::{BoxFuture, ServiceKey};

/// The family id the fake kernel hands out for IPVS (real kernels pick one at load time).
pub const FAKE_IPVS_FAMILY_ID: u16 = 0x24;

/// Schedulers a stock kernel ships (`ip_vs_*.ko`); others fail with ENOENT like a
/// missing module.
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const ERANGE: i32 = 34;
const EPROTONOSUPPORT: i32 = 93;
const EOPNOTSUPP: i32 = 95;
const EAFNOSUPPORT: i32 = 97;

/// A service's identity as the kernel compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SvcId {
    Inet {
        af: u16,
        proto: u16,
        addr: [u8; 16],
        port: u16,
    },
    Fwmark {
        af: u16,
        mark: u32,
    },
}

impl SvcId {
    fn af(&self) -> u16 {
        match self {
            SvcId::Inet { af, .. } | SvcId::Fwmark { af, .. } => *af,
        }
    }
}

#[derive(Debug, Clone)]
struct Service {
    sched: String,
    /// Without `HASHED`, which is added when dumping.
    flags: u32,
    timeout: u32,
    netmask: u32,
    pe: Option<String>,
    dests: Vec<Dest>,
}

#[derive(Debug, Clone)]
struct Dest {
    af: u16,
    addr: [u8; 16],
    port: u16,
    conn_flags: u32,
    weight: u32,
    upper: u32,
    lower: u32,
    active: u32,
    inactive: u32,
}

#[derive(Debug)]
struct State {
    has_ipvs: bool,
    legacy_replies: bool,
    services: BTreeMap<SvcId, Service>,
    local: HashSet<[u8; 16]>,
    next_seq: u32,
    requests: u64,
}

/// An emulated kernel with (or without) IPVS. Clones share one table, so a test can keep
/// a handle while the engine owns another.
#[derive(Debug, Clone)]
pub struct FakeKernel {
    state: Arc<Mutex<State>>,
}

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
        self.lock().local.insert(addr16(ip));
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
        let id = svc_id_of(service);
        let mut state = self.lock();
        let Some(svc) = state.services.get_mut(&id) else {
            return false;
        };
        match svc
            .dests
            .iter_mut()
            .find(|d| d.addr == addr16(ip) && d.port == port)
        {
            Some(dest) => {
                dest.active = active;
                dest.inactive = inactive;
                true
            }
            None => false,
        }
    }

    /// How many requests the kernel has answered.
    pub fn requests(&self) -> u64 {
        self.lock().requests
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
        let replies: Result<IpvsReplyKind, i32> = match message.payload {
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

    fn ipvs(&mut self, message: &IpvsMessage, dump: bool) -> Result<IpvsReplyKind, i32> {
        let nest = |kind| -> Result<Option<Vec<Attr>>, i32> {
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
                        .iter()
                        .map(|(id, svc)| service_reply(id, svc, legacy))
                        .collect(),
                ))
            }
            cmd::GET_SERVICE => {
                let id = parse_service_id(&service_nest.ok_or(EINVAL)?)?;
                let svc = self.services.get(&id).ok_or(ESRCH)?;
                Ok(IpvsReplyKind::Single(service_reply(
                    &id,
                    svc,
                    self.legacy_replies,
                )))
            }
            cmd::GET_DEST if dump => {
                let id = parse_service_id(&service_nest.ok_or(EINVAL)?)?;
                // The kernel ends the dump quietly when the service does not exist.
                let legacy = self.legacy_replies;
                let replies = match self.services.get(&id) {
                    Some(svc) => svc.dests.iter().map(|d| dest_reply(d, legacy)).collect(),
                    None => vec![],
                };
                Ok(IpvsReplyKind::Dump(replies))
            }
            cmd::NEW_SERVICE
            | cmd::SET_SERVICE
            | cmd::DEL_SERVICE
            | cmd::NEW_DEST
            | cmd::SET_DEST
            | cmd::DEL_DEST => {
                let service_nest = service_nest.ok_or(EINVAL)?;
                let id = parse_service_id(&service_nest)?;
                let exists = self.services.contains_key(&id);
                if message.cmd != cmd::NEW_SERVICE && !exists {
                    return Err(ESRCH);
                }
                match message.cmd {
                    cmd::NEW_SERVICE if exists => Err(EEXIST),
                    cmd::NEW_SERVICE => {
                        let svc = parse_service_params(&service_nest, 0, id.af())?;
                        self.services.insert(id, svc);
                        Ok(IpvsReplyKind::Ack)
                    }
                    cmd::SET_SERVICE => {
                        let old = &self.services[&id];
                        let mut svc = parse_service_params(&service_nest, old.flags, id.af())?;
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
                        self.dest_op(message.cmd, id, &dest_nest)
                    }
                }
            }
            _ => Err(EOPNOTSUPP),
        }
    }

    fn dest_op(&mut self, command: u8, id: SvcId, nest: &[Attr]) -> Result<IpvsReplyKind, i32> {
        let full = command != cmd::DEL_DEST;
        let mut dest = parse_dest(nest, id.af(), full)?;
        if dest.af != id.af() && command != cmd::DEL_DEST && dest.conn_flags != fwd::TUNNEL {
            return Err(EINVAL);
        }
        if full {
            if dest.weight > i32::MAX as u32 || dest.lower > dest.upper {
                return Err(ERANGE);
            }
            let unusable = match to_ip(dest.af, &dest.addr) {
                Some(ip) => ip.is_unspecified() || ip.is_multicast(),
                None => true,
            };
            if unusable {
                return Err(EINVAL);
            }
            if self.local.contains(&dest.addr) {
                dest.conn_flags = fwd::LOCALNODE;
            }
        }
        let svc = self.services.get_mut(&id).ok_or(ESRCH)?;
        let existing = svc
            .dests
            .iter()
            .position(|d| d.af == dest.af && d.addr == dest.addr && d.port == dest.port);
        match (command, existing) {
            (cmd::NEW_DEST, Some(_)) => Err(EEXIST),
            (cmd::NEW_DEST, None) => {
                svc.dests.push(dest);
                Ok(IpvsReplyKind::Ack)
            }
            (_, None) => Err(ENOENT),
            (cmd::SET_DEST, Some(index)) => {
                let old = &mut svc.dests[index];
                dest.active = old.active;
                dest.inactive = old.inactive;
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

fn find(attrs: &[Attr], kind: u16) -> Option<&[u8]> {
    attrs
        .iter()
        .find(|a| a.kind_id() == kind)
        .and_then(|a| match a {
            Attr::Bytes(_, bytes) => Some(bytes.as_slice()),
            Attr::Nested(..) => None,
        })
}

fn get_u16(attrs: &[Attr], kind: u16) -> Result<Option<u16>, i32> {
    find(attrs, kind)
        .map(|b| {
            b.get(..2)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_ne_bytes)
                .ok_or(EINVAL)
        })
        .transpose()
}

fn get_be16(attrs: &[Attr], kind: u16) -> Result<Option<u16>, i32> {
    find(attrs, kind)
        .map(|b| {
            b.get(..2)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_be_bytes)
                .ok_or(EINVAL)
        })
        .transpose()
}

fn get_u32(attrs: &[Attr], kind: u16) -> Result<Option<u32>, i32> {
    find(attrs, kind)
        .map(|b| {
            b.get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
                .ok_or(EINVAL)
        })
        .transpose()
}

/// `nla_memcpy` into a zeroed `union nf_inet_addr`; only the family's bytes count.
fn get_addr(attrs: &[Attr], kind: u16, af: u16) -> Result<Option<[u8; 16]>, i32> {
    let Some(bytes) = find(attrs, kind) else {
        return Ok(None);
    };
    if bytes.len() > 16 {
        return Err(EINVAL);
    }
    let mut addr = [0u8; 16];
    addr[..bytes.len()].copy_from_slice(bytes);
    if af == AF_INET {
        addr[4..].fill(0);
    }
    Ok(Some(addr))
}

fn check_af(af: u16) -> Result<u16, i32> {
    if af == AF_INET || af == AF_INET6 {
        Ok(af)
    } else {
        Err(EAFNOSUPPORT)
    }
}

fn parse_service_id(nest: &[Attr]) -> Result<SvcId, i32> {
    let af = check_af(get_u16(nest, svc_attr::AF)?.ok_or(EINVAL)?)?;
    match get_u32(nest, svc_attr::FWMARK)? {
        Some(mark) if mark != 0 => Ok(SvcId::Fwmark { af, mark }),
        _ => {
            let proto = get_u16(nest, svc_attr::PROTOCOL)?.ok_or(EINVAL)?;
            let addr = get_addr(nest, svc_attr::ADDR, af)?.ok_or(EINVAL)?;
            let port = get_be16(nest, svc_attr::PORT)?.ok_or(EINVAL)?;
            if ![IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP].contains(&proto) {
                return Err(EPROTONOSUPPORT);
            }
            Ok(SvcId::Inet {
                af,
                proto,
                addr,
                port,
            })
        }
    }
}

fn nul_string(bytes: &[u8], max: usize) -> Result<String, i32> {
    let end = bytes.iter().position(|b| *b == 0).ok_or(EINVAL)?;
    if end >= max {
        return Err(EINVAL);
    }
    String::from_utf8(bytes[..end].to_vec()).map_err(|_| EINVAL)
}

/// The "full entry" part of NEW/SET_SERVICE, with the kernel's flag merge
/// `(old & !mask) | (flags & mask)`.
fn parse_service_params(nest: &[Attr], old_flags: u32, af: u16) -> Result<Service, i32> {
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
    let timeout = get_u32(nest, svc_attr::TIMEOUT)?.ok_or(EINVAL)?;
    let netmask = get_u32(nest, svc_attr::NETMASK)?.ok_or(EINVAL)?;
    let pe = find(nest, svc_attr::PE_NAME)
        .map(|b| nul_string(b, 16))
        .transpose()?
        .filter(|p| !p.is_empty());
    if !SCHEDULERS.contains(&sched.as_str()) || pe.as_deref().is_some_and(|p| p != "sip") {
        return Err(ENOENT);
    }
    if af == AF_INET6 && !(1..=128).contains(&netmask) {
        return Err(EINVAL);
    }
    Ok(Service {
        sched,
        flags: ((old_flags & !mask) | (flags & mask)) & !svc_flag::HASHED,
        timeout,
        netmask,
        pe,
        dests: Vec::new(),
    })
}

fn parse_dest(nest: &[Attr], svc_af: u16, full: bool) -> Result<Dest, i32> {
    let af = match get_u16(nest, dest_attr::ADDR_FAMILY)? {
        Some(0) | None => svc_af,
        Some(af) => check_af(af)?,
    };
    let addr = get_addr(nest, dest_attr::ADDR, af)?.ok_or(EINVAL)?;
    let port = get_be16(nest, dest_attr::PORT)?.ok_or(EINVAL)?;
    let mut dest = Dest {
        af,
        addr,
        port,
        conn_flags: 0,
        weight: 0,
        upper: 0,
        lower: 0,
        active: 0,
        inactive: 0,
    };
    if full {
        dest.conn_flags = get_u32(nest, dest_attr::FWD_METHOD)?.ok_or(EINVAL)? & fwd::MASK;
        dest.weight = get_u32(nest, dest_attr::WEIGHT)?.ok_or(EINVAL)?;
        dest.upper = get_u32(nest, dest_attr::U_THRESH)?.ok_or(EINVAL)?;
        dest.lower = get_u32(nest, dest_attr::L_THRESH)?.ok_or(EINVAL)?;
    }
    Ok(dest)
}

fn addr16(ip: IpAddr) -> [u8; 16] {
    let mut addr = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => addr[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => addr = v6.octets(),
    }
    addr
}

fn to_ip(af: u16, addr: &[u8; 16]) -> Option<IpAddr> {
    match af {
        AF_INET => Some(IpAddr::from([addr[0], addr[1], addr[2], addr[3]])),
        AF_INET6 => Some(IpAddr::from(*addr)),
        _ => None,
    }
}

fn svc_id_of(key: &ServiceKey) -> SvcId {
    let nest = wire::service_identity(key);
    // Our own encoding always parses.
    parse_service_id(&nest).unwrap_or(SvcId::Fwmark { af: 0, mark: 0 })
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

fn service_reply(id: &SvcId, svc: &Service, legacy: bool) -> IpvsMessage {
    let mut attrs = vec![Attr::u16(svc_attr::AF, id.af())];
    match *id {
        SvcId::Fwmark { mark, .. } => attrs.push(Attr::u32(svc_attr::FWMARK, mark)),
        SvcId::Inet {
            proto, addr, port, ..
        } => {
            attrs.push(Attr::u16(svc_attr::PROTOCOL, proto));
            attrs.push(Attr::Bytes(svc_attr::ADDR, addr.to_vec()));
            attrs.push(Attr::be16(svc_attr::PORT, port));
        }
    }
    attrs.push(Attr::string(svc_attr::SCHED_NAME, &svc.sched));
    if let Some(pe) = &svc.pe {
        attrs.push(Attr::string(svc_attr::PE_NAME, pe));
    }
    let mut flags = (svc.flags | svc_flag::HASHED).to_ne_bytes().to_vec();
    flags.extend_from_slice(&u32::MAX.to_ne_bytes());
    attrs.push(Attr::Bytes(svc_attr::FLAGS, flags));
    attrs.push(Attr::u32(svc_attr::TIMEOUT, svc.timeout));
    attrs.push(Attr::u32(svc_attr::NETMASK, svc.netmask));
    attrs.push(kernel_nest(svc_attr::STATS, stats(false)));
    if !legacy {
        attrs.push(kernel_nest(svc_attr::STATS64, stats(true)));
    }
    IpvsMessage {
        cmd: cmd::NEW_SERVICE,
        attrs: vec![kernel_nest(cmd_attr::SERVICE, attrs)],
    }
}

fn dest_reply(dest: &Dest, legacy: bool) -> IpvsMessage {
    let mut attrs = vec![
        Attr::Bytes(dest_attr::ADDR, dest.addr.to_vec()),
        Attr::be16(dest_attr::PORT, dest.port),
        Attr::u32(dest_attr::FWD_METHOD, dest.conn_flags),
        Attr::u32(dest_attr::WEIGHT, dest.weight),
    ];
    if !legacy {
        attrs.push(Attr::u8(dest_attr::TUN_TYPE, 0));
        attrs.push(Attr::be16(dest_attr::TUN_PORT, 0));
        attrs.push(Attr::u16(dest_attr::TUN_FLAGS, 0));
    }
    attrs.extend([
        Attr::u32(dest_attr::U_THRESH, dest.upper),
        Attr::u32(dest_attr::L_THRESH, dest.lower),
        Attr::u32(dest_attr::ACTIVE_CONNS, dest.active),
        Attr::u32(dest_attr::INACT_CONNS, dest.inactive),
        Attr::u32(dest_attr::PERSIST_CONNS, 0),
    ]);
    if !legacy {
        attrs.push(Attr::u16(dest_attr::ADDR_FAMILY, dest.af));
    }
    attrs.push(kernel_nest(dest_attr::STATS, stats(false)));
    if !legacy {
        attrs.push(kernel_nest(dest_attr::STATS64, stats(true)));
    }
    IpvsMessage {
        cmd: cmd::NEW_DEST,
        attrs: vec![kernel_nest(cmd_attr::DEST, attrs)],
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
fn error_reply(request: &[u8], errno: i32) -> Vec<u8> {
    let (seq, pid) = seq_pid(request);
    let mut payload = (-errno).to_ne_bytes().to_vec();
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
        let replies = self.handle(&wire::to_bytes(&message));
        let parsed = replies
            .iter()
            .map(|bytes| {
                NetlinkMessage::<GenlPayload>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            })
            .collect();
        Box::pin(std::future::ready(parsed))
    }
}
