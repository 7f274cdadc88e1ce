//! The netlink engine: programs IPVS over generic netlink, the way ipvsadm itself talks to
//! the kernel, without a process per change.
//!
//! Layers, from the bytes up:
//! - [`wire`]: message types, encoding of every [`Op`] and dump, decoding of replies (pure,
//!   tested against golden bytes and hand-built kernel replies);
//! - [`Transport`]: sends one request and returns the kernel's replies. [`SocketTransport`]
//!   is a real `NETLINK_GENERIC` socket (netlink-proto); [`FakeKernel`] is an in-memory
//!   IPVS that reads and answers the same bytes with the kernel's error semantics, so the
//!   engine, the director and the benchmarks run end to end on machines without IPVS;
//! - [`NetlinkEngine`]: resolves the `IPVS` family, then dumps and applies ops.
//!
//! Every IPVS command needs CAP_NET_ADMIN, dumps included. A kernel without IPVS answers
//! the family lookup with ENOENT; the engine then reports [`EngineError::Unavailable`]
//! (after one `modprobe ip_vs` only if [`NetlinkOptions::modprobe`] is set).

use std::io;
use std::path::PathBuf;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};

use super::{BoxFuture, Engine, EngineError, Errno, Op, ServiceEntry, SyncDaemon, SyncRole, Table};

pub mod fake;
mod socket;
pub mod wire;

pub use fake::FakeKernel;
pub use socket::SocketTransport;
use wire::{GenlPayload, IpvsMessage};

/// Sends requests to the kernel (or something that answers like it).
pub trait Transport: Send {
    /// Sends one request and returns every reply up to and including the one that ends
    /// the exchange (an ACK or error for a change, `NLMSG_DONE` for a dump). The transport
    /// owns sequence numbers and port ids.
    fn request(
        &mut self,
        message: NetlinkMessage<GenlPayload>,
    ) -> BoxFuture<'_, io::Result<Vec<NetlinkMessage<GenlPayload>>>>;

    /// Replaces a connection that failed (a request answered [`is_connection_lost`])
    /// with a new one. By default a transport cannot.
    fn reopen(&mut self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this transport cannot be reopened",
        ))
    }
}

/// Whether a transport error means the connection is gone (as opposed to one exchange
/// failing): every later request would fail the same way until it is reopened.
pub fn is_connection_lost(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

/// How the engine starts.
#[derive(Debug, Clone, Default)]
pub struct NetlinkOptions {
    /// If the kernel has no IPVS family, run this program once with `ip_vs` as argument
    /// (normally `modprobe`) and retry. Default `None`: never load modules, because a
    /// director that silently loads kernel modules surprises operators.
    pub modprobe: Option<PathBuf>,
}

/// IPVS over generic netlink.
pub struct NetlinkEngine {
    transport: Box<dyn Transport>,
    family_id: u16,
    /// The last request found the connection gone: reopen it before the next one.
    lost: bool,
}

impl std::fmt::Debug for NetlinkEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetlinkEngine")
            .field("family_id", &self.family_id)
            .finish_non_exhaustive()
    }
}

/// The message when the family lookup says there is no IPVS.
fn no_ipvs_message(modprobe_tried: Option<&PathBuf>) -> String {
    let tried = match modprobe_tried {
        Some(program) => format!(" (even after running `{} ip_vs`)", program.display()),
        None => String::new(),
    };
    format!(
        "the kernel has no IPVS generic netlink family{tried}: load the module with \
         `modprobe ip_vs` (the kernel needs CONFIG_IP_VS), and run ldirectord with \
         CAP_NET_ADMIN; or use --engine ipvsadm"
    )
}

impl NetlinkEngine {
    /// Opens a generic-netlink socket (inside a tokio runtime) and resolves IPVS.
    pub async fn connect(options: NetlinkOptions) -> Result<Self, EngineError> {
        let transport = SocketTransport::open().map_err(|e| {
            EngineError::Unavailable(format!("cannot open a generic netlink socket: {e}"))
        })?;
        Self::with_transport(transport, options).await
    }

    /// Runs on any transport, e.g. a [`FakeKernel`]. Resolves the IPVS family first.
    pub async fn with_transport(
        transport: impl Transport + 'static,
        options: NetlinkOptions,
    ) -> Result<Self, EngineError> {
        let mut transport: Box<dyn Transport> = Box::new(transport);
        let family_id = match resolve_family(transport.as_mut()).await? {
            Some(id) => id,
            None => {
                let Some(program) = &options.modprobe else {
                    return Err(EngineError::Unavailable(no_ipvs_message(None)));
                };
                let status = ldirectord_checks::process::command(program)
                    .arg("ip_vs")
                    .status()
                    .await;
                tracing::info!(program = %program.display(), ?status, "tried to load ip_vs");
                resolve_family(transport.as_mut())
                    .await?
                    .ok_or_else(|| EngineError::Unavailable(no_ipvs_message(Some(program))))?
            }
        };
        Ok(NetlinkEngine {
            transport,
            family_id,
            lost: false,
        })
    }

    /// Sends one IPVS request and returns the data replies, or the kernel's errno.
    async fn exchange(
        &mut self,
        flags: u16,
        message: IpvsMessage,
    ) -> Result<Result<Vec<IpvsMessage>, Errno>, EngineError> {
        if self.lost {
            // The family id survives: it is fixed while the module stays loaded, and a
            // reloaded module answers a stale id with ENOENT, which the resync reports.
            self.transport.reopen()?;
            self.lost = false;
            tracing::info!("netlink engine: reopened the generic netlink socket");
        }
        let request = wire::netlink_message(self.family_id, flags, message);
        let replies = match self.transport.request(request).await {
            Ok(replies) => replies,
            Err(e) => {
                self.lost = is_connection_lost(&e);
                return Err(e.into());
            }
        };
        let mut data = Vec::new();
        for reply in replies {
            match reply.payload {
                NetlinkPayload::InnerMessage(GenlPayload::Ipvs(genl)) => data.push(genl.payload),
                NetlinkPayload::Error(e) => match e.code {
                    Some(code) => return Ok(Err(errno_of(code.get()))),
                    None => return Ok(Ok(data)),
                },
                NetlinkPayload::Done(done) if done.code < 0 => {
                    return Ok(Err(errno_of(done.code)));
                }
                NetlinkPayload::Done(_) => return Ok(Ok(data)),
                _ => {}
            }
        }
        Err(EngineError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the netlink exchange ended before the kernel acknowledged the request",
        )))
    }

    async fn dump_table(&mut self) -> Result<Table, EngineError> {
        let services = self
            .exchange(NLM_F_REQUEST | NLM_F_DUMP, wire::dump_services_message())
            .await?
            .map_err(|errno| rejected("dump virtual services", errno, None))?;
        let mut table = Table::default();
        for message in services {
            let Some(nest) = message.attr(wire::cmd_attr::SERVICE) else {
                continue;
            };
            let decoded = nest
                .children()
                .and_then(|c| Ok((wire::decode_service(&c)?, wire::decode_pe(&c))));
            let (spec, pe) = match decoded {
                Ok(decoded) => decoded,
                // A service we cannot read (a protocol IPVS added later) is left alone.
                Err(e) => {
                    tracing::warn!("skipping a virtual service the kernel listed: {e}");
                    continue;
                }
            };
            let what = format!("dump real servers of {}", spec.key);
            let replies = self
                .exchange(
                    NLM_F_REQUEST | NLM_F_DUMP,
                    wire::dump_dests_message(&spec.key),
                )
                .await?
                .map_err(|errno| rejected(&what, errno, None))?;
            let family = spec.key.family();
            let mut dests = Vec::with_capacity(replies.len());
            for reply in replies {
                let Some(nest) = reply.attr(wire::cmd_attr::DEST) else {
                    continue;
                };
                match nest.children().and_then(|c| wire::decode_dest(&c, family)) {
                    Ok(dest) => dests.push(dest),
                    Err(e) => tracing::warn!("skipping a real server of {}: {e}", spec.key),
                }
            }
            table.services.push(ServiceEntry { spec, pe, dests });
        }
        Ok(table)
    }

    async fn apply_op(&mut self, op: &Op) -> Result<(), EngineError> {
        let message = wire::op_message(op).map_err(|e| EngineError::Rejected {
            op: op.to_string(),
            message: e.to_string(),
            errno: Some(Errno::EINVAL),
        })?;
        self.exchange(NLM_F_REQUEST | NLM_F_ACK, message)
            .await?
            .map(|_| ())
            .map_err(|errno| rejected(&op.to_string(), errno, Some(op)))
    }
}

impl NetlinkEngine {
    async fn dump_daemons(&mut self) -> Result<Vec<SyncDaemon>, EngineError> {
        let replies = self
            .exchange(NLM_F_REQUEST | NLM_F_DUMP, wire::dump_daemons_message())
            .await?
            .map_err(|errno| rejected("list the sync daemons", errno, None))?;
        let mut daemons = Vec::new();
        for reply in replies {
            let Some(nest) = reply.attr(wire::cmd_attr::DAEMON) else {
                continue;
            };
            match nest.children().and_then(|c| wire::decode_daemon(&c)) {
                Ok(daemon) => daemons.push(daemon),
                Err(e) => tracing::warn!("skipping a sync daemon the kernel listed: {e}"),
            }
        }
        Ok(daemons)
    }

    async fn daemon_request(
        &mut self,
        message: wire::IpvsMessage,
        what: String,
        role: SyncRole,
        interface: Option<&str>,
    ) -> Result<(), EngineError> {
        self.exchange(NLM_F_REQUEST | NLM_F_ACK, message)
            .await?
            .map(|_| ())
            .map_err(|errno| daemon_rejected(what, errno, role, interface))
    }
}

/// Maps a kernel errno of a sync-daemon command to what it means there.
fn daemon_rejected(
    what: String,
    errno: Errno,
    role: SyncRole,
    interface: Option<&str>,
) -> EngineError {
    let role = role.as_str();
    let message = match (errno, interface) {
        (Errno::ENODEV, Some(interface)) => format!("no network interface {interface:?} here"),
        (Errno::EEXIST, _) => format!("a {role} sync daemon already runs"),
        (Errno::ESRCH, _) => format!("no {role} sync daemon runs"),
        (Errno::EAFNOSUPPORT, _) => {
            "this kernel's IPVS has no IPv6 (an IPv6 sync group needs CONFIG_IP_VS_IPV6)".into()
        }
        (Errno::EINVAL, _) => "invalid argument (the kernel refused an attribute; real servers \
             of another address family than their virtual service rule out synchronisation)"
            .into(),
        _ => return rejected(&what, errno, None),
    };
    EngineError::Rejected {
        op: what,
        message,
        errno: Some(errno),
    }
}

impl Engine for NetlinkEngine {
    fn name(&self) -> &'static str {
        "netlink"
    }

    fn sync_daemons(&mut self) -> BoxFuture<'_, Result<Vec<SyncDaemon>, EngineError>> {
        Box::pin(self.dump_daemons())
    }

    fn start_sync_daemon<'a>(
        &'a mut self,
        daemon: &'a SyncDaemon,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(self.daemon_request(
            wire::start_daemon_message(daemon),
            format!("start {daemon}"),
            daemon.role,
            Some(&daemon.interface),
        ))
    }

    fn stop_sync_daemon(&mut self, role: SyncRole) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(self.daemon_request(
            wire::stop_daemon_message(role),
            format!("stop the {} sync daemon", role.as_str()),
            role,
            None,
        ))
    }

    fn dump(&mut self) -> BoxFuture<'_, Result<Table, EngineError>> {
        Box::pin(self.dump_table())
    }

    fn apply<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(self.apply_op(op))
    }
}

/// Asks nlctrl for the IPVS family id; `None` when the kernel has no such family.
async fn resolve_family(transport: &mut dyn Transport) -> Result<Option<u16>, EngineError> {
    let ctrl = GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(wire::IPVS_GENL_NAME.into())],
    };
    let mut message = NetlinkMessage::from(GenlPayload::Ctrl(GenlMessage::from_payload(ctrl)));
    message.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    message.finalize();
    for reply in transport.request(message).await? {
        match reply.payload {
            NetlinkPayload::InnerMessage(GenlPayload::Ctrl(genl)) => {
                let id = genl.payload.nlas.iter().find_map(|a| match a {
                    GenlCtrlAttrs::FamilyId(id) => Some(*id),
                    _ => None,
                });
                if let Some(id) = id {
                    return Ok(Some(id));
                }
            }
            NetlinkPayload::Error(e) => match e.code.map(|c| errno_of(c.get())) {
                Some(Errno::ENOENT) => return Ok(None),
                Some(Errno::EPERM | Errno::EACCES) => {
                    return Err(EngineError::Unavailable(
                        "the kernel refused the IPVS family lookup: ldirectord needs CAP_NET_ADMIN"
                            .into(),
                    ));
                }
                Some(errno) => {
                    return Err(rejected("resolve the IPVS netlink family", errno, None));
                }
                None => break,
            },
            _ => {}
        }
    }
    Err(EngineError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        "nlctrl answered without a family id for IPVS",
    )))
}

/// Maps a kernel errno to an error whose message says what it means for this op.
fn rejected(what: &str, errno: Errno, op: Option<&Op>) -> EngineError {
    let is_service_op = op.is_some_and(Op::is_service_op);
    let message = match errno {
        Errno::EPERM | Errno::EACCES => {
            return EngineError::Unavailable(format!(
                "{what}: permission denied, ldirectord needs CAP_NET_ADMIN"
            ));
        }
        Errno::EEXIST if is_service_op => "the virtual service already exists".to_owned(),
        Errno::EEXIST => "the real server already exists in this virtual service".to_owned(),
        Errno::ESRCH => "no such virtual service".to_owned(),
        Errno::ENOENT if is_service_op => {
            "scheduler or persistence engine not found (is its ip_vs_* module available?)"
                .to_owned()
        }
        Errno::ENOENT => "no such real server in this virtual service".to_owned(),
        Errno::EINVAL => "invalid argument (the kernel refused an attribute)".to_owned(),
        Errno::ERANGE => {
            "weight or connection thresholds out of range (lower above upper?)".to_owned()
        }
        other => io::Error::from_raw_os_error(other as i32).to_string(),
    };
    EngineError::Rejected {
        op: what.to_owned(),
        message,
        errno: Some(errno),
    }
}

/// The errno of a netlink error or done code, which the kernel sends negated. A code
/// no kernel sends (i32::MIN, found by fuzzing) must not overflow the negation.
fn errno_of(code: i32) -> Errno {
    Errno::from_raw(code.saturating_neg())
}
