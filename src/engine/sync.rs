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

/// Whether this network namespace has the interface. `/proc/net/dev` is the reading
/// process's own namespace (`/sys/class/net` is the one sysfs was mounted in, which
/// `nsenter` and some containers do not remount). Unreadable: the kernel decides.
pub fn interface_exists(name: &str) -> bool {
    match std::fs::read_to_string("/proc/net/dev") {
        Ok(table) => interface_listed(&table, name),
        Err(_) => true,
    }
}

/// Whether `/proc/net/dev` text lists `name` (lines `  eth0: 1234 ...`).
fn interface_listed(table: &str, name: &str) -> bool {
    table
        .lines()
        .filter_map(|line| line.split_once(':'))
        .any(|(iface, _)| iface.trim() == name)
}

/// Make `want` run: adopt an identical daemon, start one when none of its role runs. A
/// missing interface is [`SyncError::NoInterface`] when the engine reports an errno.
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
    match engine.start_sync_daemon(want).await {
        Ok(()) => Ok(SyncStart::Started),
        Err(e) if e.errno() == Some(super::Errno::ENODEV) => {
            Err(SyncError::NoInterface(want.interface.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Before [`ensure`] on this host's kernel: the interface exists here (the ipvsadm engine
/// reports a missing one only as text).
pub fn check_interface(want: &SyncDaemon) -> Result<(), SyncError> {
    if interface_exists(&want.interface) {
        Ok(())
    } else {
        Err(SyncError::NoInterface(want.interface.clone()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_read_from_proc_net_dev() {
        let table = "Inter-|   Receive\n face |bytes\n    lo: 0 0\n  eth0: 1 2\nbr-lan: 3 4\n";
        assert!(interface_listed(table, "eth0") && interface_listed(table, "br-lan"));
        assert!(!interface_listed(table, "eth1") && !interface_listed(table, "face"));
        // This process's own namespace has a loopback.
        assert!(interface_exists("lo"));
    }
}
