//! Golden bytes and hand-built kernel replies.
//!
//! Every expected byte string below was derived by hand from the uapi layout
//! (`include/uapi/linux/ip_vs.h`, `shared/reference/deps.md` §1.2) and the netlink framing
//! (16-byte `nlmsghdr`: u32 length, u16 type, u16 flags, u32 seq, u32 pid; 4-byte genl
//! header: cmd, version 1, 2 reserved bytes; attributes: u16 length without padding,
//! u16 type with 0x8000 = NLA_F_NESTED, value padded to 4 bytes). Integers are host order
//! (these vectors are for little-endian hosts, like every machine this runs on) except
//! ports, which are network order. Family id 0x24, seq 1 and pid 0 are fixed by hand.
#![cfg(target_endian = "little")]

use super::*;
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

const FAMILY: u16 = 0x24;

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn encode(message: IpvsMessage, flags: u16) -> Vec<u8> {
    let mut msg = netlink_message(FAMILY, flags, message);
    msg.header.sequence_number = 1;
    msg.header.port_number = 0;
    to_bytes(&msg)
}

fn op_bytes(op: &Op) -> Vec<u8> {
    encode(op_message(op).unwrap(), NLM_F_REQUEST | NLM_F_ACK)
}

/// `op` encodes to exactly the hex bytes `expected`; returns them.
fn assert_golden(op: &Op, expected: &str) -> Vec<u8> {
    let expected = hex(expected);
    assert_eq!(op_bytes(op), expected, "{op:?}");
    expected
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn web() -> ServiceKey {
    ServiceKey::Inet {
        proto: IpProto::Tcp,
        ip: ip("192.0.2.10"),
        port: 80,
    }
}

/// SERVICE nest identity of 192.0.2.10:80/tcp (48 bytes with its header).
const WEB_IDENTITY: &str = "30 00 01 80
    06 00 01 00 02 00 00 00
    06 00 02 00 06 00 00 00
    14 00 03 00 c0 00 02 0a 00 00 00 00 00 00 00 00 00 00 00 00
    06 00 04 00 00 50 00 00";

#[test]
fn golden_add_ipv4_tcp_service_wrr_persistent_netmask() {
    let spec = ServiceSpec {
        persistent: Some(300),
        netmask: Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))),
        ..ServiceSpec::new(web(), "wrr")
    };
    let added = assert_golden(
        &Op::AddService(spec.clone()),
        "
        68 00 00 00  24 00  05 00  01 00 00 00  00 00 00 00
        01 01 00 00
        54 00 01 80
          06 00 01 00 02 00 00 00
          06 00 02 00 06 00 00 00
          14 00 03 00 c0 00 02 0a 00 00 00 00 00 00 00 00 00 00 00 00
          06 00 04 00 00 50 00 00
          08 00 06 00 77 72 72 00
          0c 00 07 00 01 00 00 00 ff ff ff ff
          08 00 08 00 2c 01 00 00
          08 00 09 00 ff ff ff 00",
    );
    // An edit is the same nest under SET_SERVICE (cmd 2).
    let mut edit = added;
    edit[16] = 2;
    assert_eq!(op_bytes(&Op::EditService(spec)), edit);
}

#[test]
fn golden_add_ipv6_udp_service_with_ops() {
    let key = ServiceKey::Inet {
        proto: IpProto::Udp,
        ip: ip("2001:db8::10"),
        port: 53,
    };
    let spec = ServiceSpec {
        ops: true,
        ..ServiceSpec::new(key, "rr")
    };
    assert_golden(
        &Op::AddService(spec),
        "
        68 00 00 00  24 00  05 00  01 00 00 00  00 00 00 00
        01 01 00 00
        54 00 01 80
          06 00 01 00 0a 00 00 00
          06 00 02 00 11 00 00 00
          14 00 03 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 10
          06 00 04 00 00 35 00 00
          07 00 06 00 72 72 00 00
          0c 00 07 00 04 00 00 00 ff ff ff ff
          08 00 08 00 00 00 00 00
          08 00 09 00 80 00 00 00",
    );
}

#[test]
fn golden_add_fwmark_ipv6_service() {
    let key = ServiceKey::Fwmark {
        mark: 12,
        family: Family::Inet6,
    };
    let spec = ServiceSpec::new(key, "wrr");
    assert_golden(
        &Op::AddService(spec),
        "
        4c 00 00 00  24 00  05 00  01 00 00 00  00 00 00 00
        01 01 00 00
        38 00 01 80
          06 00 01 00 0a 00 00 00
          08 00 05 00 0c 00 00 00
          08 00 06 00 77 72 72 00
          0c 00 07 00 00 00 00 00 ff ff ff ff
          08 00 08 00 00 00 00 00
          08 00 09 00 80 00 00 00",
    );
}

#[test]
fn golden_sched_flags_and_del_service() {
    let key = ServiceKey::Fwmark {
        mark: 1,
        family: Family::Inet,
    };
    let spec = ServiceSpec {
        sched_flags: SchedFlags::parse("sh-fallback,sh-port"),
        ..ServiceSpec::new(key, "sh")
    };
    let bytes = op_bytes(&Op::AddService(spec));
    // FLAGS = SCHED1 | SCHED2 = 0x18, mask all ones.
    let flags = hex("0c 00 07 00 18 00 00 00 ff ff ff ff");
    assert!(
        bytes.windows(flags.len()).any(|w| w == flags),
        "{bytes:02x?}"
    );

    assert_golden(
        &Op::DelService(web()),
        &format!("44 00 00 00  24 00  05 00  01 00 00 00  00 00 00 00  03 01 00 00 {WEB_IDENTITY}"),
    );
}

#[test]
fn golden_add_masq_dest_with_thresholds() {
    let dest = DestSpec {
        upper: 100,
        lower: 10,
        ..DestSpec::new(ip("10.0.0.2"), 8080, Forward::Masq, 5)
    };
    assert_golden(
        &Op::AddDest(web(), dest),
        &format!(
            "8c 00 00 00  24 00  05 00  01 00 00 00  00 00 00 00
        05 01 00 00
        {WEB_IDENTITY}
        48 00 02 80
          06 00 0b 00 02 00 00 00
          14 00 01 00 0a 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00
          06 00 02 00 1f 90 00 00
          08 00 03 00 00 00 00 00
          08 00 04 00 05 00 00 00
          08 00 05 00 64 00 00 00
          08 00 06 00 0a 00 00 00"
        ),
    );
}

#[test]
fn golden_edit_gate_dest_takes_the_service_port() {
    // Gate to another port: ipvsadm (and so this engine) sends the service's port 80.
    let dest = DestSpec::new(ip("10.0.0.3"), 8080, Forward::Gate, 1);
    assert_golden(
        &Op::EditDest(web(), dest),
        &format!(
            "8c 00 00 00  24 00  05 00  01 00 00 00  00 00 00 00
        06 01 00 00
        {WEB_IDENTITY}
        48 00 02 80
          06 00 0b 00 02 00 00 00
          14 00 01 00 0a 00 00 03 00 00 00 00 00 00 00 00 00 00 00 00
          06 00 02 00 00 50 00 00
          08 00 03 00 03 00 00 00
          08 00 04 00 01 00 00 00
          08 00 05 00 00 00 00 00
          08 00 06 00 00 00 00 00"
        ),
    );
}

#[test]
fn golden_add_ipip_dest_to_fwmark_service_keeps_its_port() {
    let key = ServiceKey::Fwmark {
        mark: 5,
        family: Family::Inet,
    };
    let dest = DestSpec {
        upper: 50,
        lower: 5,
        ..DestSpec::new(ip("10.0.0.4"), 0, Forward::Ipip, 2)
    };
    assert_golden(
        &Op::AddDest(key, dest),
        "70 00 00 00  24 00  05 00  01 00 00 00  00 00 00 00
        05 01 00 00
        14 00 01 80
          06 00 01 00 02 00 00 00
          08 00 05 00 05 00 00 00
        48 00 02 80
          06 00 0b 00 02 00 00 00
          14 00 01 00 0a 00 00 04 00 00 00 00 00 00 00 00 00 00 00 00
          06 00 02 00 00 00 00 00
          08 00 03 00 02 00 00 00
          08 00 04 00 02 00 00 00
          08 00 05 00 32 00 00 00
          08 00 06 00 05 00 00 00",
    );
}

#[test]
fn golden_del_dest() {
    let op = Op::DelDest {
        service: web(),
        ip: ip("10.0.0.2"),
        port: 8080,
    };
    assert_golden(
        &op,
        &format!(
            "6c 00 00 00  24 00  05 00  01 00 00 00  00 00 00 00
        07 01 00 00
        {WEB_IDENTITY}
        28 00 02 80
          06 00 0b 00 02 00 00 00
          14 00 01 00 0a 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00
          06 00 02 00 1f 90 00 00"
        ),
    );
}

#[test]
fn golden_dump_requests() {
    let services = hex("14 00 00 00  24 00  01 03  01 00 00 00  00 00 00 00  04 01 00 00");
    assert_eq!(
        encode(dump_services_message(), NLM_F_REQUEST | NLM_F_DUMP),
        services
    );
    let dests = hex(&format!(
        "44 00 00 00  24 00  01 03  01 00 00 00  00 00 00 00  08 01 00 00 {WEB_IDENTITY}"
    ));
    assert_eq!(
        encode(dump_dests_message(&web()), NLM_F_REQUEST | NLM_F_DUMP),
        dests
    );
}

#[test]
fn quiesce_and_readd_send_weight_and_thresholds_zero() {
    let dest = DestSpec {
        upper: 9,
        lower: 3,
        ..DestSpec::new(ip("10.0.0.2"), 80, Forward::Masq, 7)
    };
    for (op, cmd) in [
        (Op::QuiesceDest(web(), dest), cmd::SET_DEST),
        (Op::ReaddQuiescedDest(web(), dest), cmd::NEW_DEST),
    ] {
        let message = op_message(&op).unwrap();
        assert_eq!(message.cmd, cmd);
        let nest = message.attr(cmd_attr::DEST).unwrap().children().unwrap();
        let decoded = decode_dest(&nest, Family::Inet).unwrap();
        assert_eq!(
            decoded.spec,
            DestSpec {
                weight: 0,
                upper: 0,
                lower: 0,
                ..dest
            }
        );
    }
}

#[test]
fn encoding_refuses_what_the_kernel_would() {
    let mut spec = ServiceSpec {
        persistent: Some(1),
        netmask: Some(Netmask::V6(0)),
        ..ServiceSpec::new(web(), "wrr")
    };
    assert_eq!(
        op_message(&Op::AddService(spec.clone())),
        Err(EncodeError::Netmask(0))
    );
    spec.netmask = None;
    spec.sched_flags = SchedFlags::parse("sh-bogus");
    assert_eq!(
        op_message(&Op::AddService(spec.clone())),
        Err(EncodeError::SchedFlag("sh-bogus".into()))
    );
    spec.sched_flags = SchedFlags::default();
    spec.scheduler = "a-very-long-scheduler".into();
    assert!(matches!(
        op_message(&Op::AddService(spec)),
        Err(EncodeError::SchedName(_))
    ));
}

/// A tiny independent attribute writer for building kernel-style replies by hand.
fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((value.len() + 4) as u16).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(value);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

fn reply(cmd: u8, nest_kind: u16, nest: &[u8]) -> Vec<u8> {
    // Kernel IPVS nests are started without NLA_F_NESTED (nla_nest_start_noflag).
    let body = nla(nest_kind, nest);
    let len = 16 + 4 + body.len();
    let mut out = Vec::new();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&FAMILY.to_le_bytes());
    out.extend_from_slice(&0x0002u16.to_le_bytes()); // NLM_F_MULTI
    out.extend_from_slice(&7u32.to_le_bytes());
    out.extend_from_slice(&4242u32.to_le_bytes());
    out.extend_from_slice(&[cmd, 1, 0, 0]);
    out.extend_from_slice(&body);
    out
}

/// Builds a nest's bytes from `(kind, value)` attributes.
fn nest_of(attrs: &[(u16, &[u8])]) -> Vec<u8> {
    attrs
        .iter()
        .flat_map(|(kind, value)| nla(*kind, value))
        .collect()
}

/// The children of the `kind` nest of a kernel reply built around `nest`.
fn reply_nest(cmd: u8, kind: u16, nest: &[u8]) -> Vec<Attr> {
    let message = parse_reply(&reply(cmd, kind, nest));
    message.attr(kind).unwrap().children().unwrap()
}

fn parse_reply(bytes: &[u8]) -> IpvsMessage {
    let msg = NetlinkMessage::<GenlPayload>::deserialize(bytes).unwrap();
    match msg.payload {
        NetlinkPayload::InnerMessage(GenlPayload::Ipvs(genl)) => genl.payload,
        other => panic!("unexpected {other:?}"),
    }
}

/// A statistics nest (its values are ignored by the decoder, only tolerated).
fn stats() -> Vec<u8> {
    nest_of(&[
        (1, &3u32.to_le_bytes()),         // CONNS
        (11, &[]),                        // PAD, as nla_put_u64_64bit emits before u64 values
        (4, &123456789u64.to_le_bytes()), // INBYTES
    ])
}

#[test]
fn decode_ipv6_service_reply_with_stats64_and_hashed_flag() {
    let nest = nest_of(&[
        (svc_attr::AF, &10u16.to_le_bytes()),
        (svc_attr::PROTOCOL, &6u16.to_le_bytes()),
        (
            svc_attr::ADDR,
            &"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets(),
        ),
        (svc_attr::PORT, &443u16.to_be_bytes()),
        (svc_attr::SCHED_NAME, b"sh\0"),
        // PERSISTENT | HASHED | SCHED1 | SCHED2, mask all ones.
        (svc_attr::FLAGS, &[0x1b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
        (svc_attr::TIMEOUT, &60u32.to_le_bytes()),
        (svc_attr::NETMASK, &64u32.to_le_bytes()),
        (svc_attr::STATS, &stats()),
        (svc_attr::PE_NAME, b"sip\0"),
        (svc_attr::STATS64, &stats()),
        (200, b"future attribute"), // unknown: ignored
    ]);
    let service = decode_service(&reply_nest(cmd::NEW_SERVICE, cmd_attr::SERVICE, &nest)).unwrap();
    assert_eq!(
        service,
        ServiceSpec {
            key: ServiceKey::Inet {
                proto: IpProto::Tcp,
                ip: ip("2001:db8::5"),
                port: 443
            },
            scheduler: "sh".into(),
            persistent: Some(60),
            netmask: Some(Netmask::V6(64)),
            ops: false,
            sched_flags: SchedFlags::parse("sh-fallback,sh-port"),
        }
    );
}

#[test]
fn decode_ipv4_fwmark_service_reply_with_default_mask() {
    let nest = nest_of(&[
        (svc_attr::AF, &2u16.to_le_bytes()),
        (svc_attr::FWMARK, &7u32.to_le_bytes()),
        (svc_attr::SCHED_NAME, b"wlc\0"),
        (svc_attr::FLAGS, &[0x07, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
        (svc_attr::TIMEOUT, &300u32.to_le_bytes()),
        (svc_attr::NETMASK, &[0xff, 0xff, 0xff, 0xff]),
    ]);
    let service = decode_service(&reply_nest(cmd::NEW_SERVICE, cmd_attr::SERVICE, &nest)).unwrap();
    assert_eq!(
        service.key,
        ServiceKey::Fwmark {
            mark: 7,
            family: Family::Inet
        }
    );
    assert_eq!(
        (service.persistent, service.netmask, service.ops),
        (Some(300), None, true)
    );
    assert!(service.sched_flags.is_empty());
}

#[test]
fn decode_ipv4_dest_with_16_byte_address_and_no_addr_family() {
    // An older kernel: no ADDR_FAMILY, no STATS64; address padded to 16 bytes.
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&[10, 0, 0, 9]);
    let nest = nest_of(&[
        (dest_attr::ADDR, &addr),
        (dest_attr::PORT, &80u16.to_be_bytes()),
        (dest_attr::FWD_METHOD, &1u32.to_le_bytes()), // LOCALNODE
        (dest_attr::WEIGHT, &2147483647u32.to_le_bytes()),
        (dest_attr::U_THRESH, &65535u32.to_le_bytes()),
        (dest_attr::L_THRESH, &1u32.to_le_bytes()),
        (dest_attr::ACTIVE_CONNS, &12u32.to_le_bytes()),
        (dest_attr::INACT_CONNS, &34u32.to_le_bytes()),
        (dest_attr::PERSIST_CONNS, &5u32.to_le_bytes()),
        (dest_attr::STATS, &stats()),
    ]);
    let dest = decode_dest(
        &reply_nest(cmd::NEW_DEST, cmd_attr::DEST, &nest),
        Family::Inet,
    )
    .unwrap();
    assert_eq!(
        dest,
        DestEntry {
            spec: DestSpec {
                ip: ip("10.0.0.9"),
                port: 80,
                forward: Forward::Gate,
                weight: 2147483647,
                upper: 65535,
                lower: 1
            },
            local: true,
            active_conns: 12,
            inactive_conns: 34,
        }
    );
}

#[test]
fn decode_ipv4_tunnel_dest_under_ipv6_service_by_addr_family() {
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&[192, 0, 2, 77]);
    let nest = nest_of(&[
        (dest_attr::ADDR, &addr),
        (dest_attr::PORT, &53u16.to_be_bytes()),
        (dest_attr::FWD_METHOD, &2u32.to_le_bytes()),
        (dest_attr::WEIGHT, &0u32.to_le_bytes()),
        (dest_attr::TUN_TYPE, &[0]),
        (dest_attr::TUN_PORT, &0u16.to_be_bytes()),
        (dest_attr::TUN_FLAGS, &0u16.to_le_bytes()),
        (dest_attr::ADDR_FAMILY, &2u16.to_le_bytes()),
        (dest_attr::STATS64, &stats()),
    ]);
    let dest = decode_dest(
        &reply_nest(cmd::NEW_DEST, cmd_attr::DEST, &nest),
        Family::Inet6,
    )
    .unwrap();
    assert_eq!(dest.spec.ip, ip("192.0.2.77"));
    assert_eq!(
        (dest.spec.forward, dest.spec.weight, dest.local),
        (Forward::Ipip, 0, false)
    );
}

#[test]
fn decode_rejects_truncated_or_missing_attributes() {
    let nest = nest_of(&[
        (dest_attr::ADDR, &[10, 0, 0]),
        (dest_attr::PORT, &80u16.to_be_bytes()),
    ]);
    let children = reply_nest(cmd::NEW_DEST, cmd_attr::DEST, &nest);
    assert!(decode_dest(&children, Family::Inet).is_err());
    let no_af = nla(svc_attr::SCHED_NAME, b"rr\0");
    assert!(decode_service(&parse_attrs(&no_af, &[]).unwrap()).is_err());
}

#[test]
fn encoded_services_decode_back_to_the_same_spec() {
    for spec in [
        ServiceSpec {
            key: web(),
            scheduler: "mh".into(),
            persistent: Some(30),
            netmask: Some(Netmask::V4(Ipv4Addr::new(255, 255, 0, 0))),
            ops: true,
            sched_flags: SchedFlags::parse("mh-fallback,mh-port"),
        },
        ServiceSpec {
            sched_flags: SchedFlags::parse("flag-3"),
            ..ServiceSpec::new(
                ServiceKey::Inet {
                    proto: IpProto::Sctp,
                    ip: ip("::1"),
                    port: 9,
                },
                "rr",
            )
        },
    ] {
        let message = op_message(&Op::AddService(spec.clone())).unwrap();
        let bytes = encode(message, NLM_F_REQUEST | NLM_F_ACK);
        let parsed = parse_reply(&bytes);
        let decoded =
            decode_service(&parsed.attr(cmd_attr::SERVICE).unwrap().children().unwrap()).unwrap();
        assert_eq!(decoded, spec);
    }
}

#[test]
fn golden_start_master_sync_daemon_and_its_decoding() {
    let daemon = SyncDaemon {
        group: Some(ip("239.1.2.3")),
        port: Some(8850),
        ttl: Some(2),
        ..SyncDaemon::new(SyncRole::Master, "eth1", 5)
    };
    let bytes = encode(start_daemon_message(&daemon), NLM_F_REQUEST | NLM_F_ACK);
    // The port is host order (nla_get_u16), the IPv4 group network order.
    let expected = hex(
        "4c 00 00 00 24 00 05 00 01 00 00 00 00 00 00 00  09 01 00 00 \
         38 00 03 80  08 00 01 00 01 00 00 00  09 00 02 00 65 74 68 31 00 00 00 00 \
         08 00 03 00 05 00 00 00  08 00 05 00 ef 01 02 03  06 00 07 00 92 22 00 00 \
         05 00 08 00 02 00 00 00",
    );
    assert_eq!(bytes, expected);
    let message = start_daemon_message(&daemon);
    let nest = message.attr(cmd_attr::DAEMON).unwrap().children().unwrap();
    assert_eq!(decode_daemon(&nest).unwrap(), daemon);
    let stop = encode(
        stop_daemon_message(SyncRole::Backup),
        NLM_F_REQUEST | NLM_F_ACK,
    );
    assert_eq!(
        stop,
        hex(
            "20 00 00 00 24 00 05 00 01 00 00 00 00 00 00 00  0a 01 00 00 \
             0c 00 03 80  08 00 01 00 02 00 00 00"
        )
    );
    let dump = encode(dump_daemons_message(), NLM_F_REQUEST | NLM_F_DUMP);
    assert_eq!(dump[16], cmd::GET_DAEMON);
}
