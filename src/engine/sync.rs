//! Connection synchronisation: the kernel's sync daemons, driven through any [`Engine`].
//!
//! The daemons are kernel threads, one master and one backup at most per network
//! namespace; they outlive the process that started them (even `kill -9`). So every
//! start first looks at what runs: an identical daemon is adopted, a different one is an
//! error naming it (never replaced behind the operator's back), and a stop stops only a
//! daemon that is ours (it satisfies what we were asked to run).
//! `shared/reference/ipvs-sync.md` has the kernel facts.

use super::{Engine, EngineError, SyncDaemon, SyncRole};

/// How [`ensure`] got the daemon running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStart {
    /// It was not running; the kernel started it.
    Started,
    /// An identical one already ran (a restart after `kill -9`, a second `start`).
    Adopted,
}

/// How [`stop`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStop {
    Stopped,
    NotRunning,
    /// A daemon of this role runs with other parameters: not ours, left alone.
    Foreign(SyncDaemon),
}

/// Why a sync daemon could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "a different {role} sync daemon already runs: {running}; wanted: {wanted} (stop it \
         with `ipvsadm --stop-daemon {role}`, or ask for the one that runs)",
        role = running.role.as_str()
    )]
    Conflict {
        running: SyncDaemon,
        wanted: SyncDaemon,
    },
    #[error("no network interface {0:?} here")]
    NoInterface(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The daemon of `role` that runs, if any.
pub async fn running(
    engine: &mut dyn Engine,
    role: SyncRole,
) -> Result<Option<SyncDaemon>, EngineError> {
    Ok(engine
        .sync_daemons()
        .await?
        .into_iter()
        .find(|d| d.role == role))
}

/// Whether this host has the interface. Without `/sys/class/net` (no sysfs) the kernel
/// decides when the daemon starts.
pub fn interface_exists(name: &str) -> bool {
    let sys = std::path::Path::new("/sys/class/net");
    !sys.is_dir() || sys.join(name).exists()
}

/// Make `want` run: adopt an identical daemon, start one when none of its role runs.
pub async fn ensure(engine: &mut dyn Engine, want: &SyncDaemon) -> Result<SyncStart, SyncError> {
    if let Some(running) = running(engine, want.role).await? {
        if want.is_satisfied_by(&running) {
            return Ok(SyncStart::Adopted);
        }
        return Err(SyncError::Conflict {
            running,
            wanted: want.clone(),
        });
    }
    if !interface_exists(&want.interface) {
        return Err(SyncError::NoInterface(want.interface.clone()));
    }
    engine.start_sync_daemon(want).await?;
    Ok(SyncStart::Started)
}

/// Stop `want` if it is what runs in its role.
pub async fn stop(engine: &mut dyn Engine, want: &SyncDaemon) -> Result<SyncStop, EngineError> {
    match running(engine, want.role).await? {
        None => Ok(SyncStop::NotRunning),
        Some(running) if !want.is_satisfied_by(&running) => Ok(SyncStop::Foreign(running)),
        Some(_) => match engine.stop_sync_daemon(want.role).await {
            Ok(()) => Ok(SyncStop::Stopped),
            // Stopped in between by someone else: what was asked for holds.
            Err(e) if e.errno() == Some(super::Errno::ESRCH) => Ok(SyncStop::NotRunning),
            Err(e) => Err(e),
        },
    }
}
