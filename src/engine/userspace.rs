//! The userspace engine: the table lives in this process, and this process forwards the
//! traffic. It makes ldirectord-rs run anywhere — a laptop, a container, CI — without
//! root, without the `ip_vs` module and without `ipvsadm`: each TCP virtual service is a
//! listening socket on its virtual address, and every accepted connection is relayed to a
//! real server chosen exactly as IPVS would choose it from the same table (the
//! [`scheduler`] module reproduces `rr`, `wrr`, `lc`, `wlc`, `sh`, `sed` and `nq`).
//!
//! What the table means here, in ldirectord's terms:
//! - **weight** shares new connections between reals; a weight change applies to new
//!   connections and leaves established ones alone;
//! - **quiescent** (weight 0): no new connections, established ones continue;
//! - **deleting a real** closes its connections; deleting a virtual stops its listener and
//!   closes all of its connections;
//! - the **fallback** is just another real in the table and serves when it is the only one;
//! - **persistent** keeps a client (grouped by the netmask) on one real for the timeout
//!   after its last connection; a quiesced real's templates are not honoured (as the
//!   kernel with `expire_quiescent_template=1`);
//! - **thresholds** (`-x`/`-y`) mark a real overloaded as the kernel does;
//! - [`DestEntry::active_conns`] counts relayed connections with both sides open,
//!   `inactive_conns` those with one side closed and the other still draining.
//!
//! Not supported, each refused on `AddService` with a message saying so: UDP and SCTP
//! services, fwmark services, port 0 (all-ports) services, and the kernel-only schedulers
//! (`lblc`, `lblcr`, `dh`, `mh`, `fo`, `ovf`, `twos`). The forwarding method (gate, masq,
//! ipip) is kept in the table but the relay is always a proxy: the real sees connections
//! from this host, not from the client.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

use super::{
    BoxFuture, DestEntry, DestSpec, Engine, EngineError, Errno, IpProto, Op, ServiceEntry,
    ServiceKey, ServiceSpec, SyncDaemon, SyncRole, Table,
};

mod forward;
pub mod scheduler;

use forward::{Real, Virtual};
use scheduler::Scheduler;

/// Connections waiting to be accepted per virtual service (the listen backlog).
const BACKLOG: u32 = 1024;

/// The embedded forwarder. Create it inside a tokio runtime (listeners are tasks on it);
/// dropping it stops every listener and closes every relayed connection.
#[derive(Debug, Default)]
pub struct UserspaceEngine {
    /// In the order they were added, which is the order `dump` lists them in.
    services: Vec<Service>,
}

#[derive(Debug)]
struct Service {
    spec: ServiceSpec,
    virt: Arc<Virtual>,
    /// `None` once [`Service::stop`] has run.
    listener: Option<JoinHandle<()>>,
}

impl Service {
    /// Stop listening and close every connection. Waits until the listening socket is
    /// closed, so the same address can be listened on again right away.
    async fn stop(mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
            let _ = task.await;
        }
        self.virt.close_all();
    }
}

impl Drop for Service {
    /// The engine itself going away: the listener closes as soon as the runtime notices.
    fn drop(&mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
        }
        self.virt.close_all();
    }
}

fn rejected(op: &Op, message: impl Into<String>, errno: Option<Errno>) -> EngineError {
    EngineError::Rejected {
        op: op.to_string(),
        message: message.into(),
        errno,
    }
}

/// A system error's text without Rust's "(os error N)" suffix, as ipvsadm prints them.
fn os_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_owned(),
        None => e.to_string(),
    }
}

/// What a failed bind means for an operator.
fn bind_message(addr: SocketAddr, e: &io::Error) -> String {
    let hint = match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::EADDRNOTAVAIL) => {
            " (the userspace engine needs the virtual address on this host)"
        }
        Some(Errno::EADDRINUSE) => " (another program listens there)",
        Some(Errno::EACCES) => " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
        _ => "",
    };
    format!("cannot listen on {addr}: {}{hint}", os_text(e))
}

impl UserspaceEngine {
    /// An empty table. Listeners start as virtual services are added.
    pub fn new() -> UserspaceEngine {
        UserspaceEngine::default()
    }

    fn find(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.spec.key == *key)
    }

    fn service(&self, op: &Op, key: &ServiceKey) -> Result<&Service, EngineError> {
        self.find(key)
            .map(|i| &self.services[i])
            .ok_or_else(|| rejected(op, "no such virtual service", Some(Errno::ESRCH)))
    }

    /// The listening address of a service this engine can serve, or why it cannot.
    fn validate(op: &Op, spec: &ServiceSpec) -> Result<(SocketAddr, Scheduler), EngineError> {
        let unsupported = |what: &str| {
            rejected(
                op,
                format!(
                    "{what} not supported by the userspace engine (it relays TCP); use \
                     --engine netlink or --engine ipvsadm"
                ),
                Some(Errno::EINVAL),
            )
        };
        let addr = match spec.key {
            ServiceKey::Inet {
                proto: IpProto::Tcp,
                ip,
                port,
            } => {
                if port == 0 {
                    return Err(unsupported("port 0 (all-ports) virtual services are"));
                }
                SocketAddr::new(ip, port)
            }
            ServiceKey::Inet {
                proto: IpProto::Udp,
                ..
            } => return Err(unsupported("UDP virtual services are")),
            ServiceKey::Inet {
                proto: IpProto::Sctp,
                ..
            } => return Err(unsupported("SCTP virtual services are")),
            ServiceKey::Fwmark { .. } => return Err(unsupported("fwmark virtual services are")),
        };
        let scheduler = Scheduler::new(&spec.scheduler, &spec.sched_flags)
            .map_err(|e| rejected(op, e.to_string(), Some(Errno::ENOENT)))?;
        Ok((addr, scheduler))
    }

    fn add_service(&mut self, op: &Op, spec: &ServiceSpec) -> Result<(), EngineError> {
        if self.find(&spec.key).is_some() {
            return Err(rejected(
                op,
                "the virtual service already exists",
                Some(Errno::EEXIST),
            ));
        }
        let (addr, scheduler) = Self::validate(op, spec)?;
        let listener = listen(addr).map_err(|e| {
            rejected(
                op,
                bind_message(addr, &e),
                e.raw_os_error().map(Errno::from_raw),
            )
        })?;
        let virt = Arc::new(Virtual::new(spec.clone(), scheduler, addr.port()));
        let task = tokio::spawn(forward::serve(listener, Arc::clone(&virt)));
        tracing::debug!("userspace engine: listening on {addr} for {}", spec.key);
        self.services.push(Service {
            spec: spec.clone(),
            virt,
            listener: Some(task),
        });
        Ok(())
    }

    fn edit_service(&mut self, op: &Op, spec: &ServiceSpec) -> Result<(), EngineError> {
        let index = self
            .find(&spec.key)
            .ok_or_else(|| rejected(op, "no such virtual service", Some(Errno::ESRCH)))?;
        let (_, scheduler) = Self::validate(op, spec)?;
        let service = &mut self.services[index];
        service.virt.edit(spec.clone(), scheduler);
        service.spec = spec.clone();
        Ok(())
    }

    fn add_dest(&mut self, op: &Op, key: &ServiceKey, dest: &DestSpec) -> Result<(), EngineError> {
        check_thresholds(op, dest)?;
        let service = self.service(op, key)?;
        service.virt.edit_reals(|reals| {
            if reals.iter().any(|r| same_real(&r.spec, dest)) {
                return Err(rejected(
                    op,
                    "the real server already exists in this virtual service",
                    Some(Errno::EEXIST),
                ));
            }
            reals.push(Real::new(*dest));
            Ok(())
        })
    }

    fn edit_dest(&mut self, op: &Op, key: &ServiceKey, dest: &DestSpec) -> Result<(), EngineError> {
        check_thresholds(op, dest)?;
        let service = self.service(op, key)?;
        service.virt.edit_reals(|reals| {
            let real = reals
                .iter_mut()
                .find(|r| same_real(&r.spec, dest))
                .ok_or_else(|| no_such_real(op))?;
            // Same connections, same close signal: only new connections see the change.
            real.spec = *dest;
            Ok(())
        })
    }

    fn del_dest(
        &mut self,
        op: &Op,
        key: &ServiceKey,
        ip: std::net::IpAddr,
        port: u16,
    ) -> Result<(), EngineError> {
        let service = self.service(op, key)?;
        service.virt.edit_reals(|reals| {
            let index = reals
                .iter()
                .position(|r| r.spec.ip == ip && r.spec.port == port)
                .ok_or_else(|| no_such_real(op))?;
            // Dropping the real drops its close sender: its connections end.
            reals.remove(index);
            Ok(())
        })
    }

    async fn apply_op(&mut self, op: &Op) -> Result<(), EngineError> {
        match op {
            Op::AddService(spec) => self.add_service(op, spec),
            Op::EditService(spec) => self.edit_service(op, spec),
            Op::DelService(key) => {
                let index = self
                    .find(key)
                    .ok_or_else(|| rejected(op, "no such virtual service", Some(Errno::ESRCH)))?;
                self.services.remove(index).stop().await;
                Ok(())
            }
            Op::AddDest(key, dest) | Op::ReaddQuiescedDest(key, dest) => {
                self.add_dest(op, key, dest)
            }
            Op::EditDest(key, dest) | Op::QuiesceDest(key, dest) => self.edit_dest(op, key, dest),
            Op::DelDest { service, ip, port } => self.del_dest(op, service, *ip, *port),
        }
    }

    fn table(&self) -> Table {
        let services = self
            .services
            .iter()
            .map(|s| ServiceEntry {
                spec: s.spec.clone(),
                pe: None,
                dests: s.virt.with_reals(|reals| {
                    reals
                        .iter()
                        .map(|r| DestEntry {
                            spec: r.spec,
                            local: false,
                            active_conns: r.counters.active.load(Ordering::Relaxed),
                            inactive_conns: r.counters.inactive.load(Ordering::Relaxed),
                        })
                        .collect()
                }),
            })
            .collect();
        Table { services }
    }
}

/// A real is identified by address and port within its virtual, as in IPVS.
fn same_real(a: &DestSpec, b: &DestSpec) -> bool {
    a.ip == b.ip && a.port == b.port
}

fn no_such_real(op: &Op) -> EngineError {
    rejected(
        op,
        "no such real server in this virtual service",
        Some(Errno::ENOENT),
    )
}

/// The kernel refuses a lower threshold above the upper one.
fn check_thresholds(op: &Op, dest: &DestSpec) -> Result<(), EngineError> {
    if dest.upper != 0 && dest.lower > dest.upper {
        return Err(rejected(
            op,
            format!(
                "lower connection threshold {} is above the upper one {}",
                dest.lower, dest.upper
            ),
            Some(Errno::ERANGE),
        ));
    }
    Ok(())
}

/// A listening socket with SO_REUSEADDR, so a restarted director can listen again while
/// the previous one's connections linger in TIME_WAIT.
fn listen(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

impl Engine for UserspaceEngine {
    fn name(&self) -> &'static str {
        "userspace"
    }

    fn dump(&mut self) -> BoxFuture<'_, Result<Table, EngineError>> {
        let table = self.table();
        Box::pin(async move { Ok(table) })
    }

    fn apply<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(self.apply_op(op))
    }

    fn sync_daemons(&mut self) -> BoxFuture<'_, Result<Vec<SyncDaemon>, EngineError>> {
        Box::pin(std::future::ready(Err(no_sync())))
    }

    fn start_sync_daemon<'a>(
        &'a mut self,
        _: &'a SyncDaemon,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(std::future::ready(Err(no_sync())))
    }

    fn stop_sync_daemon(&mut self, _: SyncRole) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(std::future::ready(Err(no_sync())))
    }
}

/// The forwarder keeps its connections in this process: there is nothing a kernel sync
/// daemon could copy, so `syncdaemon=` and `sync-backup` are refused rather than ignored.
fn no_sync() -> EngineError {
    EngineError::Unavailable(
        "the userspace engine has no connection synchronisation (its connections live in \
         this process, not in the kernel): syncdaemon= and sync-backup need --engine netlink \
         or ipvsadm"
            .into(),
    )
}
