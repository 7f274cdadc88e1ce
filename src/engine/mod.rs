//! Engines: the edge that programs the IPVS table. One trait, three implementations:
//! `netlink` (generic netlink, default), `ipvsadm` (runs the program with stock
//! ldirectord's argument strings) and `userspace` (an embedded forwarder, see its issue).
//! The director core never talks to an engine directly: it returns [`Op`]s and reads
//! [`Table`]s; the daemon applies them here. The table's vocabulary lives in
//! `ldirectord_parsers::ipvs` and is re-exported here.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use ldirectord_parsers::ipvs::{
    DestEntry, DestSpec, Family, Forward, IpProto, Netmask, Op, SchedFlag, SchedFlags,
    ServiceEntry, ServiceKey, ServiceSpec, SyncDaemon, SyncRole, Table,
};
pub use nix::errno::Errno;

pub mod deferred;
pub mod ipvsadm;
pub mod netlink;
pub mod sync;
pub mod userspace;

/// How long an engine call may take by default: a kernel answers in milliseconds; 10 s
/// means it is not answering.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A boxed future, so engines can be chosen at run time (`--engine`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What went wrong in an engine. The daemon logs it, retries on the next pass and keeps
/// running.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// IPVS is not available: module not loaded, no CAP_NET_ADMIN, no ipvsadm program.
    #[error("IPVS is not available: {0}")]
    Unavailable(String),
    /// The kernel (or the userspace table) refused one operation; `errno` when known.
    /// `op` says what was attempted ([`Op`]'s display, or a dump).
    #[error("{op}: {message}")]
    Rejected {
        op: String,
        message: String,
        errno: Option<Errno>,
    },
    /// The `ipvsadm` program refused one operation: `command` is the whole command line,
    /// `message` what it printed (it reports no errno).
    #[error("{command}: {message}")]
    Command { command: String, message: String },
    /// Talking to the kernel or the program failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl EngineError {
    /// The errno of a refusal, when the engine learned one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            EngineError::Rejected { errno, .. } => *errno,
            _ => None,
        }
    }
}

/// An engine that reads and programs a table.
pub trait Engine: Send {
    /// A short name for logs: `netlink`, `ipvsadm`, `userspace`.
    fn name(&self) -> &'static str;
    /// The longest one call ([`Engine::dump`], [`Engine::apply`]) may take before the
    /// daemon gives up on it and resyncs later. Default [`DEFAULT_CALL_TIMEOUT`].
    fn call_timeout(&self) -> Duration {
        DEFAULT_CALL_TIMEOUT
    }
    /// Read the whole table.
    fn dump(&mut self) -> BoxFuture<'_, Result<Table, EngineError>>;
    /// Apply one operation.
    fn apply<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Result<(), EngineError>>;
    /// The kernel's connection-sync daemons (at most a master and a backup), as the
    /// kernel reports them (every option set).
    fn sync_daemons(&mut self) -> BoxFuture<'_, Result<Vec<SyncDaemon>, EngineError>>;
    /// Start a sync daemon. The kernel refuses a second one of the same role; use
    /// [`sync::ensure`], which adopts an identical one and names a different one.
    fn start_sync_daemon<'a>(
        &'a mut self,
        daemon: &'a SyncDaemon,
    ) -> BoxFuture<'a, Result<(), EngineError>>;
    /// Stop the sync daemon of `role`; an error when none runs (see [`sync::stop`]).
    fn stop_sync_daemon(&mut self, role: SyncRole) -> BoxFuture<'_, Result<(), EngineError>>;
}
