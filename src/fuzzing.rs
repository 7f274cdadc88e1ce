//! Entry points for the fuzz targets in `fuzz/`: the decoders of bytes the director reads
//! from the kernel and the cluster, driven by bytes alone. Not an API: the targets (and
//! the seed writer in the tests below) call these, nothing else should.
//!
//! - [`netlink_replies`]: the kernel's netlink replies (family lookup, the multi-part
//!   dumps of services and destinations, errors and ACKs) through the real
//!   [`NetlinkEngine`], as netlink-proto hands them over;
//! - [`ocf_environment`]: the environment Pacemaker gives the OCF agents;
//! - [`crm_outputs`]: what `crm_resource`, `crm_node` and `crm_attribute` print, through
//!   the real-server selection;
//! - [`control_request`]: a line a client writes to the control socket, decoded, resolved
//!   and answered as the daemon does it.
//!
//! The ipvsadm listing and the configuration parser are fuzzed through
//! `ldirectord-parsers` directly, the checks' decoders through `ldirectord_checks::fuzzing`.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ldirectord_parsers::config::resolve::StaticResolver;
use ldirectord_parsers::config::{
    Family, Forward, ParseOptions, RealCandidates, RealFilter, RealSources, ValuePattern,
};
use netlink_packet_core::{NLM_F_ACK, NLM_F_MULTIPART, NLMSG_DONE, NLMSG_ERROR, NetlinkMessage};

use crate::cluster::ocf::{self, Env};
use crate::engine::netlink::wire::{self, GenlPayload};
use crate::engine::netlink::{FakeKernel, NetlinkEngine, NetlinkOptions, Transport};
use crate::engine::{BoxFuture, Engine, Op, Table};
use crate::realsource::{self, ClusterQuery, SourceError, query};

/// A kernel that answers each request with the next replies of a recording.
struct Replay {
    /// Each message's type, flags and (when it decodes) the message.
    messages: VecDeque<(u16, u16, Option<NetlinkMessage<GenlPayload>>)>,
}

impl Replay {
    /// Cut `data` into netlink messages as a socket read would: each message's length is
    /// in its header, messages are 4-byte aligned. A message that does not decode is
    /// skipped (netlink-proto logs and drops it); a truncated one ends the data.
    fn new(data: &[u8]) -> Replay {
        let mut messages = VecDeque::new();
        let mut at = 0;
        while let Some(header) = data.get(at..at + 16) {
            let word = |i: usize| [header[i], header[i + 1]];
            let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len < 16 || len > data.len() - at {
                break;
            }
            let message = NetlinkMessage::<GenlPayload>::deserialize(&data[at..at + len]).ok();
            messages.push_back((
                u16::from_ne_bytes(word(4)),
                u16::from_ne_bytes(word(6)),
                message,
            ));
            at += len.next_multiple_of(4);
        }
        Replay { messages }
    }
}

impl Transport for Replay {
    /// The replies up to the one that ends the exchange, as netlink-proto decides it: an
    /// error or ACK, `NLMSG_DONE`, or (when the request asked for no ACK) a message that
    /// is not part of a multi-part reply. No messages left: the socket closed.
    fn request(
        &mut self,
        request: NetlinkMessage<GenlPayload>,
    ) -> BoxFuture<'_, io::Result<Vec<NetlinkMessage<GenlPayload>>>> {
        let wants_ack = request.header.flags & NLM_F_ACK != 0;
        let replies = if self.messages.is_empty() {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the kernel closed the socket",
            ))
        } else {
            let mut replies = Vec::new();
            while let Some((kind, flags, message)) = self.messages.pop_front() {
                replies.extend(message);
                let last = kind == NLMSG_ERROR
                    || kind == NLMSG_DONE
                    || (!wants_ack && flags & NLM_F_MULTIPART == 0);
                if last {
                    break;
                }
            }
            Ok(replies)
        };
        Box::pin(std::future::ready(replies))
    }
}

/// The table the engine reads from `data` as the kernel's replies, if it gets that far.
#[cfg(test)]
fn replayed_dump(data: &[u8]) -> Option<Table> {
    futures::executor::block_on(async {
        let mut engine =
            NetlinkEngine::with_transport(Replay::new(data), NetlinkOptions::default())
                .await
                .ok()?;
        engine.dump().await.ok()
    })
}

/// The kernel's replies: the family lookup, then a dump of the table (services, then each
/// one's destinations), then one change, whatever the replies say.
pub fn netlink_replies(data: &[u8]) {
    futures::executor::block_on(async {
        let Ok(mut engine) =
            NetlinkEngine::with_transport(Replay::new(data), NetlinkOptions::default()).await
        else {
            return;
        };
        if let Ok(table) = engine.dump().await {
            for service in &table.services {
                // What the engine read back must be something it can write again.
                let _ = wire::op_message(&Op::AddService(service.spec.clone()));
            }
        }
        let key = ldirectord_parsers::ipvs::ServiceKey::Fwmark {
            mark: 1,
            family: Family::Inet,
        };
        let _ = engine.apply(&Op::DelService(key)).await;
    });
}

/// A transport that records the bytes of every reply of a [`FakeKernel`] (for seeds).
struct Recorder {
    kernel: FakeKernel,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Transport for Recorder {
    fn request(
        &mut self,
        message: NetlinkMessage<GenlPayload>,
    ) -> BoxFuture<'_, io::Result<Vec<NetlinkMessage<GenlPayload>>>> {
        Box::pin(async move {
            let replies = self.kernel.request(message).await?;
            let mut bytes = self.bytes.lock().expect("recorder lock");
            for reply in &replies {
                // Decoded nlctrl replies keep only the family id and name: the length
                // in the header is recomputed for what is left.
                let mut reply = reply.clone();
                reply.finalize();
                bytes.extend_from_slice(&wire::to_bytes(&reply));
            }
            Ok(replies)
        })
    }
}

/// The replies a kernel holding the table `ops` build sends to an engine that resolves
/// the family and dumps the table, and the table it dumped. A seed for
/// [`netlink_replies`].
pub fn recorded_dump(ops: &[Op]) -> (Vec<u8>, Table) {
    futures::executor::block_on(async {
        let kernel = FakeKernel::new();
        let mut setup = NetlinkEngine::with_transport(kernel.clone(), NetlinkOptions::default())
            .await
            .expect("the fake kernel has IPVS");
        for op in ops {
            setup.apply(op).await.expect("the fake kernel takes the op");
        }
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder {
            kernel,
            bytes: bytes.clone(),
        };
        let mut engine = NetlinkEngine::with_transport(recorder, NetlinkOptions::default())
            .await
            .expect("the fake kernel has IPVS");
        let table = engine.dump().await.expect("the fake kernel dumps");
        drop(engine);
        let bytes = std::mem::take(&mut *bytes.lock().expect("recorder lock"));
        (bytes, table)
    })
}

/// The OCF agents' environment: `NAME=VALUE` lines. The parameters of the inline form
/// (`vip`, `port`, …) must give a configuration the parser accepts, or an error.
pub fn ocf_environment(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let env = Env::from_pairs(text.lines().filter_map(|l| l.split_once('=')));
    let _ = env.is_probe();
    let _ = env.timeout();
    let instance = env.instance();
    assert!(
        !instance.contains('/'),
        "instance {instance:?} is not a file name"
    );
    let mut err = Vec::new();
    ocf::exit_reason(&env, &mut err, "fuzz\nreason");
    assert_eq!(err.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    let _ = crate::cluster::realserver::parse_vip(env.param("vip"), env.param("mode"));
    if let Ok(generated) = crate::cluster::agent::inline(&env) {
        let resolver = StaticResolver::default();
        let opts = ParseOptions {
            resolver: &resolver,
            check_files: false,
            hostname: Some("fuzz".into()),
        };
        let path = Path::new("the resource parameters");
        if let Err(e) = ldirectord_parsers::config::parse_with(&generated.sanitized, path, &opts) {
            panic!(
                "parameters accepted, configuration refused: {}\n{}",
                e.error.message, generated.sanitized
            );
        }
    }
}

/// The configuration the control requests are resolved against: two virtual services, one
/// of them UDP, sharing a real, and an IPv6 one.
const CONTROL_CONFIG: &str = "virtual=192.0.2.10:80\n\treal=10.0.0.1:80 masq\n\treal=10.0.0.2:8080 masq\n\
virtual=192.0.2.10:53\n\tprotocol=udp\n\treal=10.0.0.1:53 masq\n\
virtual6=[2001:db8::10]:443\n\treal6=[2001:db8::1]:443 masq\n";

/// The director of [`CONTROL_CONFIG`], as a daemon starts it over an empty table.
fn control_director() -> crate::director::Director {
    let resolver = StaticResolver::default();
    let opts = ParseOptions {
        resolver: &resolver,
        check_files: false,
        hostname: Some("fuzz".into()),
    };
    let parsed =
        ldirectord_parsers::config::parse_with(CONTROL_CONFIG, Path::new("fuzz.cf"), &opts)
            .expect("the fuzz configuration parses");
    crate::director::Director::start(parsed.config, &Table::default()).0
}

/// A control-socket request line (what a client writes to `RUNDIR/ldirectord.NAME.sock`,
/// cut at the daemon's limit): decoded as the daemon decodes it, a `drain`/`ready` resolved
/// against [`CONTROL_CONFIG`] as the daemon resolves it, and a refusal encoded as the
/// daemon writes it, one JSON line.
pub fn control_request(data: &[u8]) {
    use crate::daemon::control;
    use crate::status::protocol::{Command, MAX_REQUEST};
    thread_local! {
        static DIRECTOR: crate::director::Director = control_director();
    }
    let line = &data[..data.len().min(MAX_REQUEST)];
    let refusal = match control::decode_request(line) {
        Ok(Command::Status) => return,
        Ok(Command::Drain { real, r#virtual } | Command::Ready { real, r#virtual }) => {
            match DIRECTOR.with(|d| control::resolve(&real, r#virtual.as_deref(), d)) {
                Ok(targets) => {
                    assert!(!targets.is_empty(), "a drain names at least one real");
                    return;
                }
                Err(refusal) => refusal,
            }
        }
        Err(refusal) => refusal,
    };
    let text = serde_json::to_vec(&refusal).expect("an answer encodes");
    assert!(!text.contains(&b'\n'), "an answer is one line");
}

/// Pacemaker's answers, recorded: the outputs of `crm_resource --locate`, `crm_node -p`
/// and `crm_attribute -G` (separated by NUL bytes in the fuzz input).
struct Recorded {
    locate: String,
    partition: String,
    attribute: String,
}

impl ClusterQuery for Recorded {
    fn locate(&self, _: &str) -> Result<Vec<String>, SourceError> {
        Ok(query::locate_output(&self.locate))
    }
    fn partition(&self) -> Result<Vec<String>, SourceError> {
        Ok(query::partition_output(&self.partition))
    }
    fn attribute(&self, _: &str, _: &str) -> Result<Option<String>, SourceError> {
        Ok(Some(query::attribute_output(&self.attribute)))
    }
    fn list_command(&self, _: &str) -> Result<Vec<String>, SourceError> {
        Ok(query::partition_output(&self.partition))
    }
    fn check_command(&self, _: &str, _: &str) -> bool {
        true
    }
    fn resolve(&self, host: &str, _: Family) -> Result<IpAddr, SourceError> {
        Err(SourceError::Resolve {
            host: host.to_owned(),
            source: io::Error::other("no resolver while fuzzing"),
        })
    }
}

/// The cluster tools' outputs through the real-server selection, for a resource with an
/// attribute filter and for the partition: the selection is sorted by address, one entry
/// per address, all of the service's family.
pub fn crm_outputs(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0').map(str::to_owned);
    let q = Recorded {
        locate: parts.next().unwrap_or_default(),
        partition: parts.next().unwrap_or_default(),
        attribute: parts.next().unwrap_or_default(),
    };
    let nodes: BTreeMap<String, IpAddr> =
        realsource::parse_node_map("node1=192.0.2.1 node2=192.0.2.2 node6=2001:db8::6")
            .expect("a valid node map");
    let attribute = RealFilter::Attribute {
        name: "lvs-ready".into(),
        pattern: ValuePattern::new("^(1|yes)$").expect("a valid pattern"),
    };
    for (candidates, filters) in [
        (RealCandidates::Resource("web".into()), vec![attribute]),
        (RealCandidates::Partition, Vec::new()),
    ] {
        let spec = RealSources {
            spans: Vec::new(),
            candidates,
            filters,
            fallback_filters: Vec::new(),
            weights: Vec::new(),
            default_weight: 1,
            forward: Forward::Gate,
        };
        for family in [Family::Inet, Family::Inet6] {
            if let Ok(members) = realsource::select(&spec, &nodes, family, &q) {
                assert!(members.windows(2).all(|w| w[0].address < w[1].address));
                assert!(
                    members
                        .iter()
                        .all(|m| m.address.is_ipv4() == (family == Family::Inet))
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{DestSpec, IpProto, ServiceKey, ServiceSpec};

    fn seed_tables() -> Vec<(&'static str, Vec<Op>)> {
        let web = ServiceKey::Inet {
            proto: IpProto::Tcp,
            ip: "192.0.2.10".parse().unwrap(),
            port: 80,
        };
        let dns6 = ServiceKey::Inet {
            proto: IpProto::Udp,
            ip: "2001:db8::53".parse().unwrap(),
            port: 53,
        };
        let mark = ServiceKey::Fwmark {
            mark: 7,
            family: Family::Inet,
        };
        let service = |key: &ServiceKey, scheduler: &str, persistent| ServiceSpec {
            key: *key,
            scheduler: scheduler.into(),
            persistent,
            netmask: None,
            ops: false,
            sched_flags: Default::default(),
        };
        let dest = |ip: &str, port, forward, weight| DestSpec {
            ip: ip.parse().unwrap(),
            port,
            forward,
            weight,
            upper: 0,
            lower: 0,
        };
        vec![
            ("empty", Vec::new()),
            (
                "web-two-reals",
                vec![
                    Op::AddService(service(&web, "wrr", None)),
                    Op::AddDest(web, dest("10.0.0.1", 80, Forward::Gate, 1)),
                    Op::AddDest(web, dest("10.0.0.2", 8080, Forward::Masq, 0)),
                ],
            ),
            (
                "three-kinds",
                vec![
                    Op::AddService(service(&web, "rr", Some(300))),
                    Op::AddDest(web, dest("10.0.0.1", 80, Forward::Ipip, 5)),
                    Op::AddService(service(&dns6, "sh", None)),
                    Op::AddDest(dns6, dest("2001:db8::1", 53, Forward::Gate, 1)),
                    Op::AddService(service(&mark, "lc", None)),
                    Op::AddDest(mark, dest("10.0.0.3", 0, Forward::Gate, 2)),
                ],
            ),
        ]
    }

    #[test]
    fn replayed_kernel_replies_give_the_kernels_table() {
        for (name, ops) in seed_tables() {
            let (bytes, table) = recorded_dump(&ops);
            assert_eq!(
                table.services.len(),
                ops.iter()
                    .filter(|o| matches!(o, Op::AddService(_)))
                    .count()
            );
            assert_eq!(replayed_dump(&bytes), Some(table), "{name}");
            // Cut anywhere, the replies give a table or nothing, and never panic.
            for cut in (0..bytes.len()).step_by(7) {
                netlink_replies(&bytes[..cut]);
            }
            // LDRS_WRITE_FUZZ_SEEDS=DIR writes the recordings as fuzz seeds.
            if let Some(dir) = std::env::var_os("LDRS_WRITE_FUZZ_SEEDS") {
                std::fs::write(Path::new(&dir).join(name), &bytes).unwrap();
            }
        }
    }

    #[test]
    fn control_requests_as_clients_send_them() {
        use crate::daemon::control::{decode_request, resolve};
        use crate::status::protocol::Command;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/control_request");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            control_request(&std::fs::read(entry.unwrap().path()).unwrap());
            seen += 1;
        }
        assert!(seen >= 8, "{seen} seeds");
        // The resolution the target relies on: a configured real is found, in its
        // virtual service or in all of them; an unknown one is refused.
        let director = control_director();
        let Ok(Command::Drain { real, r#virtual }) = decode_request(
            b"{\"version\":1,\"command\":\"drain\",\"real\":\"10.0.0.1\",\"virtual\":\"tcp:192.0.2.10:80\"}\n",
        ) else {
            panic!("a drain request");
        };
        assert_eq!(
            resolve(&real, r#virtual.as_deref(), &director)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(resolve("10.0.0.1", None, &director).unwrap().len(), 1);
        assert!(resolve("10.0.0.9", None, &director).is_err());
        assert!(decode_request(b"{\"version\":1,\"command\":\"status\"}").is_err());
        // Bytes that are no request at all: refused, never a panic.
        control_request(&[0xff; 5000]);
        control_request(b"{\"version\":1,\"command\":\"drain\",\"real\":\"\\u0000\\n\"}\n");
    }

    #[test]
    fn fuzz_findings_stay_fixed() {
        // An nlctrl reply with a malformed op-policy nest: netlink-packet-generic panicked.
        netlink_replies(include_bytes!(
            "../fuzz/seeds/netlink_replies/regress-ctrl-op-policy"
        ));
        // A dump's NLMSG_DONE carrying i32::MIN as its code: negating it overflowed.
        netlink_replies(include_bytes!(
            "../fuzz/seeds/netlink_replies/regress-done-code-min"
        ));
        // `virtual_service_options=-s 0`: accepted by the agent, refused by the parser.
        ocf_environment(include_bytes!(
            "../fuzz/seeds/ocf_environment/regress-scheduler-digit"
        ));
        // `virtual_service_options=` with `-M` among tabs: accepted by the agent, refused
        // by the parser.
        ocf_environment(include_bytes!(
            "../fuzz/seeds/ocf_environment/regress-netmask-tabs"
        ));
    }

    #[test]
    fn cluster_outputs_as_the_tools_print_them() {
        assert_eq!(
            query::locate_output("node1\nnode2 Promoted\n\n"),
            ["node1", "node2"]
        );
        assert_eq!(
            query::partition_output("node1 node2\tnode6\n"),
            ["node1", "node2", "node6"]
        );
        assert_eq!(query::attribute_output(" 1 \n"), "1");
        crm_outputs(b"node1\nnode2 Promoted\n\0node1 node2 node6\0 1 \n");
        ocf_environment(
            b"OCF_RESKEY_vip=192.0.2.10\nOCF_RESKEY_port=80\nOCF_RESOURCE_INSTANCE=lvs:1\n",
        );
    }
}
