//! The IPVS generic-netlink wire format: message and attribute types, the encoding of
//! every [`Op`] and dump request, and the decoding of kernel replies into engine types.
//!
//! Everything here is pure (no socket), so it is tested byte for byte. The layout is the
//! kernel's uapi (`include/uapi/linux/ip_vs.h`), summarised in
//! `shared/reference/deps.md` §1.2. Choices where the kernel accepts several encodings:
//! - nested attributes carry `NLA_F_NESTED` (the IPVS ops use the lenient parser, which
//!   accepts it and masks it off; strict modern parsers require it);
//! - addresses are always sent as 16 bytes (`union nf_inet_addr`, IPv4 in the first 4),
//!   as ipvsadm and keepalived send them;
//! - a destination carries `ADDR_FAMILY` first (kernels before 3.18 ignore it, newer ones
//!   need it for an IPv4 real under an IPv6 service);
//! - no `TUN_TYPE`: absent means ipip, the only tunnel ldirectord knows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, Emitable, NLA_F_NESTED, NLA_TYPE_MASK, NetlinkDeserializable, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, NetlinkSerializable, Nla, NlaBuffer, NlasIterator,
    ParseableParametrized,
};
use netlink_packet_generic::ctrl::GenlCtrl;
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

use crate::engine::{
    DestEntry, DestSpec, Family, Forward, IpProto, Netmask, Op, SchedFlag, SchedFlags, ServiceKey,
    ServiceSpec, SyncDaemon, SyncRole,
};

/// Generic-netlink family name of IPVS.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;
/// The fixed id of the generic-netlink controller (nlctrl).
pub const GENL_ID_CTRL: u16 = 16;

/// `IPVS_CMD_*`.
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
}

/// `IPVS_CMD_ATTR_*`: the top-level attributes.
pub mod cmd_attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
}

/// `IPVS_SVC_ATTR_*`: inside `SERVICE`.
pub mod svc_attr {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const PE_NAME: u16 = 11;
    pub const STATS64: u16 = 12;
}

/// `IPVS_DEST_ATTR_*`: inside `DEST`.
pub mod dest_attr {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
    pub const TUN_TYPE: u16 = 13;
    pub const TUN_PORT: u16 = 14;
    pub const TUN_FLAGS: u16 = 15;
}

/// `IPVS_DAEMON_ATTR_*`: inside `DAEMON`.
pub mod daemon_attr {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

/// `IP_VS_SVC_F_*` service flags.
pub mod svc_flag {
    pub const PERSISTENT: u32 = 0x1;
    /// Kernel-internal; set in every dumped service.
    pub const HASHED: u32 = 0x2;
    pub const ONEPACKET: u32 = 0x4;
    pub const SCHED1: u32 = 0x8;
    pub const SCHED2: u32 = 0x10;
    pub const SCHED3: u32 = 0x20;
}

/// `IP_VS_CONN_F_*` forwarding methods (`FWD_METHOD`, masked with 0x7).
pub mod fwd {
    pub const MASQ: u32 = 0;
    pub const LOCALNODE: u32 = 1;
    pub const TUNNEL: u32 = 2;
    pub const DROUTE: u32 = 3;
    pub const MASK: u32 = 0x7;
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;
pub const IPPROTO_SCTP: u16 = 132;
/// `IP_VS_SCHEDNAME_MAXLEN`, including the NUL.
pub const SCHED_NAME_MAX: usize = 16;

/// One netlink attribute: raw bytes, or a nest of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Bytes(u16, Vec<u8>),
    Nested(u16, Vec<Attr>),
}

impl Attr {
    pub fn u8(kind: u16, value: u8) -> Attr {
        Attr::Bytes(kind, vec![value])
    }
    /// Host byte order, as the kernel's `nla_get_u16`.
    pub fn u16(kind: u16, value: u16) -> Attr {
        Attr::Bytes(kind, value.to_ne_bytes().to_vec())
    }
    /// Network byte order (`nla_get_be16`), for ports.
    pub fn be16(kind: u16, value: u16) -> Attr {
        Attr::Bytes(kind, value.to_be_bytes().to_vec())
    }
    pub fn u32(kind: u16, value: u32) -> Attr {
        Attr::Bytes(kind, value.to_ne_bytes().to_vec())
    }
    pub fn u64(kind: u16, value: u64) -> Attr {
        Attr::Bytes(kind, value.to_ne_bytes().to_vec())
    }
    /// A NUL-terminated string.
    pub fn string(kind: u16, value: &str) -> Attr {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        Attr::Bytes(kind, bytes)
    }
    /// `union nf_inet_addr`: 16 bytes, IPv4 in the first four.
    pub fn addr(kind: u16, ip: IpAddr) -> Attr {
        let mut bytes = vec![0u8; 16];
        match ip {
            IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => bytes.copy_from_slice(&v6.octets()),
        }
        Attr::Bytes(kind, bytes)
    }

    /// The attribute type without the nested/byte-order flag bits.
    pub fn kind_id(&self) -> u16 {
        match self {
            Attr::Bytes(kind, _) | Attr::Nested(kind, _) => *kind & NLA_TYPE_MASK,
        }
    }

    /// Children of a nest; a `Bytes` attribute is parsed as a nest on demand, because
    /// senders that do not set `NLA_F_NESTED` are valid too.
    pub fn children(&self) -> Result<Vec<Attr>, DecodeError> {
        match self {
            Attr::Nested(_, children) => Ok(children.clone()),
            Attr::Bytes(_, bytes) => parse_attrs(bytes, &[]),
        }
    }
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::Bytes(_, value) => value.len(),
            Attr::Nested(_, children) => children.as_slice().buffer_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Attr::Bytes(kind, _) => *kind,
            Attr::Nested(kind, _) => *kind | NLA_F_NESTED,
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Attr::Bytes(_, value) => buffer[..value.len()].copy_from_slice(value),
            Attr::Nested(_, children) => children.as_slice().emit(buffer),
        }
    }
}

/// Parses a run of attributes; kinds in `nested` (or flagged `NLA_F_NESTED`) become
/// nests whose children stay raw (statistics and anything unknown are kept, not read).
pub fn parse_attrs(bytes: &[u8], nested: &[u16]) -> Result<Vec<Attr>, DecodeError> {
    let mut out = Vec::new();
    for nla in NlasIterator::new(bytes) {
        let nla: NlaBuffer<&[u8]> = nla?;
        let kind = nla.kind() & NLA_TYPE_MASK;
        let value = nla.value();
        if nested.contains(&kind) || nla.nested_flag() {
            out.push(Attr::Nested(kind, parse_attrs(value, &[])?));
        } else {
            out.push(Attr::Bytes(kind, value.to_vec()));
        }
    }
    Ok(out)
}

/// The payload of an IPVS generic-netlink message: a command and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: u8,
    pub attrs: Vec<Attr>,
}

impl IpvsMessage {
    /// The first top-level attribute of this kind.
    pub fn attr(&self, kind: u16) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.kind_id() == kind)
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs = parse_attrs(buf, &[cmd_attr::SERVICE, cmd_attr::DEST, cmd_attr::DAEMON])?;
        Ok(IpvsMessage {
            cmd: header.cmd,
            attrs,
        })
    }
}

/// What travels on the generic-netlink socket: controller messages (family lookup) and
/// IPVS messages, told apart by the netlink message type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenlPayload {
    Ctrl(GenlMessage<GenlCtrl>),
    Ipvs(GenlMessage<IpvsMessage>),
}

impl NetlinkSerializable for GenlPayload {
    fn message_type(&self) -> u16 {
        match self {
            GenlPayload::Ctrl(m) => m.message_type(),
            GenlPayload::Ipvs(m) => m.message_type(),
        }
    }
    fn buffer_len(&self) -> usize {
        match self {
            GenlPayload::Ctrl(m) => NetlinkSerializable::buffer_len(m),
            GenlPayload::Ipvs(m) => NetlinkSerializable::buffer_len(m),
        }
    }
    fn serialize(&self, buffer: &mut [u8]) {
        match self {
            GenlPayload::Ctrl(m) => m.serialize(buffer),
            GenlPayload::Ipvs(m) => m.serialize(buffer),
        }
    }
}

impl NetlinkDeserializable for GenlPayload {
    type Error = DecodeError;
    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        if header.message_type == GENL_ID_CTRL {
            Ok(GenlPayload::Ctrl(GenlMessage::<GenlCtrl>::deserialize(
                header,
                &ctrl_essentials(payload),
            )?))
        } else {
            Ok(GenlPayload::Ipvs(GenlMessage::<IpvsMessage>::deserialize(
                header, payload,
            )?))
        }
    }
}

/// `CTRL_ATTR_FAMILY_ID` and `CTRL_ATTR_FAMILY_NAME`.
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// An nlctrl message cut down to its generic-netlink header and the family id and name,
/// the only attributes anyone reads (the family lookup, and the in-memory kernel reading
/// that request). Why: netlink-packet-generic 0.5 panics on a malformed length inside the
/// nested op-policy attributes (fuzz target `netlink_replies`, seed
/// `regress-ctrl-op-policy`); attributes are walked here with checked lengths, and a
/// malformed one ends the walk.
fn ctrl_essentials(payload: &[u8]) -> Vec<u8> {
    let mut out = payload[..payload.len().min(4)].to_vec();
    let mut at = 4;
    while let Some(head) = payload.get(at..at + 4) {
        let len = usize::from(u16::from_ne_bytes([head[0], head[1]]));
        let kind = u16::from_ne_bytes([head[2], head[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > payload.len() - at {
            break;
        }
        if kind == CTRL_ATTR_FAMILY_ID || kind == CTRL_ATTR_FAMILY_NAME {
            out.extend_from_slice(&payload[at..at + len]);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        at += len.next_multiple_of(4);
    }
    out
}

impl From<GenlPayload> for NetlinkPayload<GenlPayload> {
    fn from(payload: GenlPayload) -> Self {
        NetlinkPayload::InnerMessage(payload)
    }
}

/// Wraps an IPVS message in a full netlink message (the transport sets the sequence
/// number and port when it sends it; golden tests set them by hand).
pub fn netlink_message(
    family_id: u16,
    flags: u16,
    message: IpvsMessage,
) -> NetlinkMessage<GenlPayload> {
    let mut genl = GenlMessage::from_payload(message);
    genl.set_resolved_family_id(family_id);
    let mut msg = NetlinkMessage::from(GenlPayload::Ipvs(genl));
    msg.header.flags = flags;
    msg.finalize();
    msg
}

/// The bytes of a netlink message, as written to the socket.
pub fn to_bytes(message: &NetlinkMessage<GenlPayload>) -> Vec<u8> {
    let mut buffer = vec![0u8; message.buffer_len()];
    message.serialize(&mut buffer);
    buffer
}

/// Why an op could not be encoded (before anything was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "unknown scheduler flag {0:?} (known: sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2, flag-3)"
    )]
    SchedFlag(String),
    #[error("scheduler name {0:?} is longer than the kernel's {max} bytes", max = SCHED_NAME_MAX - 1)]
    SchedName(String),
    #[error("IPv6 persistence netmask /{0} is outside 1-128")]
    Netmask(u8),
}

/// `AF_INET` or `AF_INET6`.
pub fn af(family: Family) -> u16 {
    match family {
        Family::Inet => AF_INET,
        Family::Inet6 => AF_INET6,
    }
}

/// The identity part of a `SERVICE` nest: AF, then FWMARK or PROTOCOL + ADDR + PORT.
pub fn service_identity(key: &ServiceKey) -> Vec<Attr> {
    let mut attrs = vec![Attr::u16(svc_attr::AF, af(key.family()))];
    match *key {
        ServiceKey::Inet { proto, ip, port } => {
            attrs.push(Attr::u16(svc_attr::PROTOCOL, u16::from(proto.number())));
            attrs.push(Attr::addr(svc_attr::ADDR, ip));
            attrs.push(Attr::be16(svc_attr::PORT, port));
        }
        ServiceKey::Fwmark { mark, .. } => attrs.push(Attr::u32(svc_attr::FWMARK, mark)),
    }
    attrs
}

/// The `IP_VS_SVC_F_SCHED*` bit of flag bit 1, 2 or 3.
fn sched_bit(bit: u8) -> u32 {
    svc_flag::SCHED1 << (bit - 1)
}

/// Scheduler flags (ipvsadm's `-b` words) to `IP_VS_SVC_F_SCHED*` bits.
pub fn sched_flag_bits(flags: &SchedFlags) -> Result<u32, EncodeError> {
    let mut bits = 0;
    for flag in flags.iter() {
        let bit = flag
            .bit()
            .ok_or_else(|| EncodeError::SchedFlag(flag.to_string()))?;
        bits |= sched_bit(bit);
    }
    Ok(bits)
}

/// `IP_VS_SVC_F_SCHED*` bits back to names, as ipvsadm lists them for this scheduler.
pub fn sched_flag_names(scheduler: &str, flags: u32) -> SchedFlags {
    (1..=3)
        .filter(|bit| flags & sched_bit(*bit) != 0)
        .filter_map(|bit| SchedFlag::for_bit(scheduler, bit))
        .collect()
}

/// A full `SERVICE` nest (NEW/SET_SERVICE): identity, scheduler, flags with a full mask
/// (so edits also clear flags), timeout (0 when not persistent) and netmask (the default
/// /32 or /128 when none is given, as ipvsadm sends).
pub fn service_full(spec: &ServiceSpec) -> Result<Vec<Attr>, EncodeError> {
    if spec.scheduler.len() >= SCHED_NAME_MAX {
        return Err(EncodeError::SchedName(spec.scheduler.clone()));
    }
    let mut flag_bytes = service_flags(spec)?.to_ne_bytes().to_vec();
    flag_bytes.extend_from_slice(&u32::MAX.to_ne_bytes());
    let mut attrs = service_identity(&spec.key);
    attrs.push(Attr::string(svc_attr::SCHED_NAME, &spec.scheduler));
    attrs.push(Attr::Bytes(svc_attr::FLAGS, flag_bytes));
    attrs.push(Attr::u32(svc_attr::TIMEOUT, spec.persistent.unwrap_or(0)));
    attrs.push(Attr::u32(svc_attr::NETMASK, netmask_value(spec)?));
    Ok(attrs)
}

/// The `IP_VS_SVC_F_*` flags of a service: scheduler flags, `PERSISTENT`, `ONEPACKET`.
pub fn service_flags(spec: &ServiceSpec) -> Result<u32, EncodeError> {
    let mut flags = sched_flag_bits(&spec.sched_flags)?;
    if spec.persistent.is_some() {
        flags |= svc_flag::PERSISTENT;
    }
    if spec.ops {
        flags |= svc_flag::ONEPACKET;
    }
    Ok(flags)
}

/// The `NETMASK` attribute of a service: the default /32 or /128 when none is given.
pub fn netmask_value(spec: &ServiceSpec) -> Result<u32, EncodeError> {
    Ok(match (spec.key.family(), spec.netmask) {
        // The mask's bytes in network order, read as a host-order u32 by the kernel.
        (_, Some(Netmask::V4(mask))) => u32::from_ne_bytes(mask.octets()),
        (_, Some(Netmask::V6(prefix))) if !(1..=128).contains(&prefix) => {
            return Err(EncodeError::Netmask(prefix));
        }
        (_, Some(Netmask::V6(prefix))) => u32::from(prefix),
        (Family::Inet, None) => 0xffff_ffff,
        (Family::Inet6, None) => 128,
    })
}

/// A `NETMASK` attribute read back: `None` for a service that is not persistent and for
/// the default /32 or /128, as ipvsadm lists them.
pub fn netmask_of(persistent: bool, family: Family, raw: u32) -> Option<Netmask> {
    match (persistent, family, raw) {
        (false, _, _) | (true, Family::Inet, 0xffff_ffff) | (true, Family::Inet6, 128) => None,
        (true, Family::Inet, mask) => Some(Netmask::V4(Ipv4Addr::from(mask.to_ne_bytes()))),
        (true, Family::Inet6, prefix) => Some(Netmask::V6(prefix.min(128) as u8)),
    }
}

/// `FWD_METHOD` of a destination; `local` reals are `LOCALNODE`.
pub fn fwd_method(forward: Forward, local: bool) -> u32 {
    match (local, forward) {
        (true, _) => fwd::LOCALNODE,
        (false, Forward::Masq) => fwd::MASQ,
        (false, Forward::Ipip) => fwd::TUNNEL,
        (false, Forward::Gate) => fwd::DROUTE,
    }
}

/// A `FWD_METHOD` read back (masked): `LOCALNODE` is gate with `local` set.
pub fn forward_of(method: u32) -> Option<(Forward, bool)> {
    Some(match method & fwd::MASK {
        fwd::MASQ => (Forward::Masq, false),
        fwd::LOCALNODE => (Forward::Gate, true),
        fwd::TUNNEL => (Forward::Ipip, false),
        fwd::DROUTE => (Forward::Gate, false),
        _ => return None,
    })
}

/// The `DEST` identity: family, address, port.
pub fn dest_identity(ip: IpAddr, port: u16) -> Vec<Attr> {
    vec![
        Attr::u16(dest_attr::ADDR_FAMILY, af(Family::of(ip))),
        Attr::addr(dest_attr::ADDR, ip),
        Attr::be16(dest_attr::PORT, port),
    ]
}

/// A full `DEST` nest (NEW/SET_DEST).
pub fn dest_full(dest: &DestSpec) -> Vec<Attr> {
    let mut attrs = dest_identity(dest.ip, dest.port);
    attrs.push(Attr::u32(
        dest_attr::FWD_METHOD,
        fwd_method(dest.forward, false),
    ));
    attrs.push(Attr::u32(dest_attr::WEIGHT, dest.weight));
    attrs.push(Attr::u32(dest_attr::U_THRESH, dest.upper));
    attrs.push(Attr::u32(dest_attr::L_THRESH, dest.lower));
    attrs
}

/// ipvsadm (not the kernel) gives a direct-routing or tunnelled real of an address
/// service the service's port, since the packet cannot be rewritten; we do the same so
/// both engines leave the same table (`shared/reference/ldirectord.md` §4.5).
pub fn kernel_dest(key: &ServiceKey, dest: &DestSpec) -> DestSpec {
    match (key, dest.forward) {
        (ServiceKey::Inet { port, .. }, Forward::Gate | Forward::Ipip) => DestSpec {
            port: *port,
            ..*dest
        },
        _ => *dest,
    }
}

/// The IPVS message that performs `op`.
pub fn op_message(op: &Op) -> Result<IpvsMessage, EncodeError> {
    let service = |attrs| Attr::Nested(cmd_attr::SERVICE, attrs);
    let dest = |attrs| Attr::Nested(cmd_attr::DEST, attrs);
    let (cmd, attrs) = match op {
        Op::AddService(spec) => (cmd::NEW_SERVICE, vec![service(service_full(spec)?)]),
        Op::EditService(spec) => (cmd::SET_SERVICE, vec![service(service_full(spec)?)]),
        Op::DelService(key) => (cmd::DEL_SERVICE, vec![service(service_identity(key))]),
        Op::AddDest(key, spec) => (
            cmd::NEW_DEST,
            vec![
                service(service_identity(key)),
                dest(dest_full(&kernel_dest(key, spec))),
            ],
        ),
        Op::EditDest(key, spec) => (
            cmd::SET_DEST,
            vec![
                service(service_identity(key)),
                dest(dest_full(&kernel_dest(key, spec))),
            ],
        ),
        // Stock's quiesce/re-add pass no -x/-y, so ipvsadm sends thresholds 0: do the same.
        Op::QuiesceDest(key, spec) | Op::ReaddQuiescedDest(key, spec) => {
            let quiet = DestSpec {
                weight: 0,
                upper: 0,
                lower: 0,
                ..kernel_dest(key, spec)
            };
            let cmd = if matches!(op, Op::QuiesceDest(..)) {
                cmd::SET_DEST
            } else {
                cmd::NEW_DEST
            };
            (
                cmd,
                vec![service(service_identity(key)), dest(dest_full(&quiet))],
            )
        }
        Op::DelDest {
            service: key,
            ip,
            port,
        } => (
            cmd::DEL_DEST,
            vec![
                service(service_identity(key)),
                dest(dest_identity(*ip, *port)),
            ],
        ),
    };
    Ok(IpvsMessage { cmd, attrs })
}

/// `GET_SERVICE` (sent with `NLM_F_DUMP`): no attributes needed.
pub fn dump_services_message() -> IpvsMessage {
    IpvsMessage {
        cmd: cmd::GET_SERVICE,
        attrs: vec![],
    }
}

/// `GET_DEST` (sent with `NLM_F_DUMP`) for one service.
pub fn dump_dests_message(key: &ServiceKey) -> IpvsMessage {
    IpvsMessage {
        cmd: cmd::GET_DEST,
        attrs: vec![Attr::Nested(cmd_attr::SERVICE, service_identity(key))],
    }
}

/// `NEW_DAEMON`: role, interface and id, then only the options that are set (the kernel
/// fills in its defaults for the others). The port is host order (`nla_get_u16`), the
/// IPv4 group network order (`nla_get_in_addr`).
pub fn start_daemon_message(daemon: &SyncDaemon) -> IpvsMessage {
    let mut attrs = vec![
        Attr::u32(daemon_attr::STATE, daemon.role.kernel_value()),
        Attr::string(daemon_attr::MCAST_IFN, &daemon.interface),
        Attr::u32(daemon_attr::SYNC_ID, u32::from(daemon.syncid)),
    ];
    if let Some(maxlen) = daemon.maxlen {
        attrs.push(Attr::u16(daemon_attr::SYNC_MAXLEN, maxlen));
    }
    match daemon.group {
        Some(IpAddr::V4(group)) => attrs.push(Attr::Bytes(
            daemon_attr::MCAST_GROUP,
            group.octets().to_vec(),
        )),
        Some(IpAddr::V6(group)) => attrs.push(Attr::Bytes(
            daemon_attr::MCAST_GROUP6,
            group.octets().to_vec(),
        )),
        None => {}
    }
    if let Some(port) = daemon.port {
        attrs.push(Attr::u16(daemon_attr::MCAST_PORT, port));
    }
    if let Some(ttl) = daemon.ttl {
        attrs.push(Attr::u8(daemon_attr::MCAST_TTL, ttl));
    }
    IpvsMessage {
        cmd: cmd::NEW_DAEMON,
        attrs: vec![Attr::Nested(cmd_attr::DAEMON, attrs)],
    }
}

/// `DEL_DAEMON`: the kernel needs only the role.
pub fn stop_daemon_message(role: SyncRole) -> IpvsMessage {
    IpvsMessage {
        cmd: cmd::DEL_DAEMON,
        attrs: vec![Attr::Nested(
            cmd_attr::DAEMON,
            vec![Attr::u32(daemon_attr::STATE, role.kernel_value())],
        )],
    }
}

/// `GET_DAEMON` (dump only in the kernel): no attributes.
pub fn dump_daemons_message() -> IpvsMessage {
    IpvsMessage {
        cmd: cmd::GET_DAEMON,
        attrs: vec![],
    }
}

/// Decodes the `DAEMON` nest of a `GET_DAEMON` reply; options the kernel left out stay
/// `None`.
pub fn decode_daemon(nest: &[Attr]) -> Result<SyncDaemon, DecodeError> {
    let state = read_u32(need(nest, daemon_attr::STATE, "STATE")?, "STATE")?;
    let role = SyncRole::from_kernel(state)
        .ok_or_else(|| DecodeError::from(format!("unknown sync daemon state {state}")))?;
    let ifn = need(nest, daemon_attr::MCAST_IFN, "MCAST_IFN")?;
    let end = ifn.iter().position(|b| *b == 0).unwrap_or(ifn.len());
    let interface = String::from_utf8_lossy(&ifn[..end]).into_owned();
    let syncid = read_u32(need(nest, daemon_attr::SYNC_ID, "SYNC_ID")?, "SYNC_ID")?;
    let group = match (
        find(nest, daemon_attr::MCAST_GROUP),
        find(nest, daemon_attr::MCAST_GROUP6),
    ) {
        (_, Some(bytes)) => Some(read_addr(bytes, AF_INET6, "MCAST_GROUP6")?),
        (Some(bytes), None) => Some(read_addr(bytes, AF_INET, "MCAST_GROUP")?),
        (None, None) => None,
    };
    Ok(SyncDaemon {
        role,
        interface,
        // The kernel keeps the id in a byte.
        syncid: syncid as u8,
        maxlen: find(nest, daemon_attr::SYNC_MAXLEN)
            .map(|b| read_u16(b, "SYNC_MAXLEN"))
            .transpose()?,
        group,
        port: find(nest, daemon_attr::MCAST_PORT)
            .map(|b| read_u16(b, "MCAST_PORT"))
            .transpose()?,
        ttl: find(nest, daemon_attr::MCAST_TTL)
            .map(|b| read_array::<1>(b, "MCAST_TTL").map(|[t]| t))
            .transpose()?,
    })
}

/// The value of the first non-nested attribute of this kind.
pub fn find(attrs: &[Attr], kind: u16) -> Option<&[u8]> {
    attrs
        .iter()
        .find(|a| a.kind_id() == kind)
        .and_then(|a| match a {
            Attr::Bytes(_, bytes) => Some(bytes.as_slice()),
            Attr::Nested(..) => None,
        })
}

fn need<'a>(attrs: &'a [Attr], kind: u16, what: &str) -> Result<&'a [u8], DecodeError> {
    find(attrs, kind).ok_or_else(|| DecodeError::from(format!("reply without {what}")))
}

/// The first `N` bytes of an attribute's value (the kernel may send more, never less).
fn read_array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], DecodeError> {
    bytes
        .get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| DecodeError::from(format!("{what} attribute too short")))
}

/// A host-order u16 (`nla_get_u16`).
pub fn read_u16(bytes: &[u8], what: &str) -> Result<u16, DecodeError> {
    read_array(bytes, what).map(u16::from_ne_bytes)
}

/// A network-order u16 (`nla_get_be16`): ports.
pub fn read_be16(bytes: &[u8], what: &str) -> Result<u16, DecodeError> {
    read_array(bytes, what).map(u16::from_be_bytes)
}

/// A host-order u32 (`nla_get_u32`).
pub fn read_u32(bytes: &[u8], what: &str) -> Result<u32, DecodeError> {
    read_array(bytes, what).map(u32::from_ne_bytes)
}

/// An address of the given family from `union nf_inet_addr` (4 or 16 bytes).
fn read_addr(bytes: &[u8], family: u16, what: &str) -> Result<IpAddr, DecodeError> {
    match family {
        AF_INET => Ok(IpAddr::V4(Ipv4Addr::from(read_array::<4>(bytes, what)?))),
        AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(read_array::<16>(bytes, what)?))),
        other => Err(DecodeError::from(format!(
            "{what}: unknown address family {other}"
        ))),
    }
}

fn family_from_af(value: u16) -> Result<Family, DecodeError> {
    match value {
        AF_INET => Ok(Family::Inet),
        AF_INET6 => Ok(Family::Inet6),
        other => Err(DecodeError::from(format!("unknown address family {other}"))),
    }
}

/// Decodes the `SERVICE` nest of a `GET_SERVICE` reply. A default netmask (/32, /128) and
/// the netmask of a non-persistent service read back as `None`, as ipvsadm lists them;
/// `HASHED` and unknown flag bits, statistics and the persistence engine are ignored.
pub fn decode_service(nest: &[Attr]) -> Result<ServiceSpec, DecodeError> {
    let af = read_u16(need(nest, svc_attr::AF, "service AF")?, "service AF")?;
    let family = family_from_af(af)?;
    let fwmark = match find(nest, svc_attr::FWMARK) {
        Some(bytes) => read_u32(bytes, "FWMARK")?,
        None => 0,
    };
    let key = if fwmark != 0 {
        ServiceKey::Fwmark {
            mark: fwmark,
            family,
        }
    } else {
        let proto = match read_u16(need(nest, svc_attr::PROTOCOL, "PROTOCOL")?, "PROTOCOL")? {
            IPPROTO_TCP => IpProto::Tcp,
            IPPROTO_UDP => IpProto::Udp,
            IPPROTO_SCTP => IpProto::Sctp,
            other => {
                return Err(DecodeError::from(format!(
                    "unknown service protocol {other}"
                )));
            }
        };
        let ip = read_addr(need(nest, svc_attr::ADDR, "ADDR")?, af, "service ADDR")?;
        let port = read_be16(need(nest, svc_attr::PORT, "PORT")?, "PORT")?;
        ServiceKey::Inet { proto, ip, port }
    };
    let sched = need(nest, svc_attr::SCHED_NAME, "SCHED_NAME")?;
    let sched_end = sched.iter().position(|b| *b == 0).unwrap_or(sched.len());
    let scheduler = String::from_utf8_lossy(&sched[..sched_end]).into_owned();
    let flags = read_u32(need(nest, svc_attr::FLAGS, "FLAGS")?, "FLAGS")?;
    let timeout = match find(nest, svc_attr::TIMEOUT) {
        Some(bytes) => read_u32(bytes, "TIMEOUT")?,
        None => 0,
    };
    let persistent = (flags & svc_flag::PERSISTENT != 0).then_some(timeout);
    let netmask = match find(nest, svc_attr::NETMASK) {
        Some(bytes) => netmask_of(persistent.is_some(), family, read_u32(bytes, "NETMASK")?),
        None => None,
    };
    Ok(ServiceSpec {
        key,
        sched_flags: sched_flag_names(&scheduler, flags),
        scheduler,
        persistent,
        netmask,
        ops: flags & svc_flag::ONEPACKET != 0,
    })
}

/// The persistence engine (`PE_NAME`) of a `GET_SERVICE` reply's `SERVICE` nest, if any.
pub fn decode_pe(nest: &[Attr]) -> Option<String> {
    let name = find(nest, svc_attr::PE_NAME)?;
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    (end > 0).then(|| String::from_utf8_lossy(&name[..end]).into_owned())
}

/// Decodes the `DEST` nest of a `GET_DEST` reply. Without `ADDR_FAMILY` (kernels before
/// 3.18) the address has the service's family. `LOCALNODE` reads as gate with `local`.
pub fn decode_dest(nest: &[Attr], service_family: Family) -> Result<DestEntry, DecodeError> {
    let af = match find(nest, dest_attr::ADDR_FAMILY) {
        Some(bytes) => read_u16(bytes, "ADDR_FAMILY")?,
        None => af(service_family),
    };
    let ip = read_addr(need(nest, dest_attr::ADDR, "dest ADDR")?, af, "dest ADDR")?;
    let port = read_be16(need(nest, dest_attr::PORT, "dest PORT")?, "dest PORT")?;
    let method = read_u32(
        need(nest, dest_attr::FWD_METHOD, "FWD_METHOD")?,
        "FWD_METHOD",
    )?;
    let (forward, local) = forward_of(method).ok_or_else(|| {
        DecodeError::from(format!("unknown forwarding method {}", method & fwd::MASK))
    })?;
    let number = |kind, what| -> Result<u32, DecodeError> {
        match find(nest, kind) {
            Some(bytes) => read_u32(bytes, what),
            None => Ok(0),
        }
    };
    Ok(DestEntry {
        spec: DestSpec {
            ip,
            port,
            forward,
            weight: read_u32(need(nest, dest_attr::WEIGHT, "WEIGHT")?, "WEIGHT")?,
            upper: number(dest_attr::U_THRESH, "U_THRESH")?,
            lower: number(dest_attr::L_THRESH, "L_THRESH")?,
        },
        local,
        active_conns: number(dest_attr::ACTIVE_CONNS, "ACTIVE_CONNS")?,
        inactive_conns: number(dest_attr::INACT_CONNS, "INACT_CONNS")?,
    })
}

#[cfg(test)]
mod tests;
