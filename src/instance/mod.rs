//! The rules of one ldirectord instance, as stock defines them and as the command line,
//! the daemon and the OCF agent all apply them (reference §1):
//!
//! - which file `CONFIG` names ([`resolve_config`]: `/etc/ha.d/CONFIG`, then
//!   `/etc/ha.d/conf/CONFIG`, then as given);
//! - the instance's name ([`instance_name`]) and its pid file ([`pidfile`]:
//!   `RUNDIR/ldirectord.NAME.pid`, its liveness rule and the daemon's lock on it);
//! - which virtual services each live instance manages ([`claims`]: one director per
//!   configuration file and per virtual service);
//! - how an instance is stopped ([`stop`]: SIGTERM, then wait for its cleanup, at most
//!   [`STOP_TIMEOUT`]).
//!
//! Nothing here knows who asks: `cli`, `cluster::agent` and `daemon` use it, and it uses
//! none of them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

pub mod claims;
pub mod pidfile;

pub use pidfile::{PidState, pid_file, pid_state};

/// Where pid files live unless `--run-dir` (or the agent's `run_dir`) says otherwise.
pub const DEFAULT_RUN_DIR: &str = "/var/run";

/// How long `stop` waits for the daemon to finish its cleanup and exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where `/etc/ha.d` is: `LDIRECTORD_HA_DIR` overrides it for tests.
pub fn ha_dir() -> PathBuf {
    std::env::var_os("LDIRECTORD_HA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/ha.d"))
}

/// Stock's config lookup: `/etc/ha.d/CONFIG`, `/etc/ha.d/conf/CONFIG`, then CONFIG.
/// `ha_dir` is `/etc/ha.d` (tests point it elsewhere).
pub fn resolve_config(config: &str, ha_dir: &Path) -> Option<PathBuf> {
    // Stock appends CONFIG to the prefix as a string: an absolute CONFIG never matches.
    let candidates = [
        PathBuf::from(format!("{}/{config}", ha_dir.display())),
        PathBuf::from(format!("{}/conf/{config}", ha_dir.display())),
        PathBuf::from(config),
    ];
    candidates.into_iter().find(|p| p.is_file())
}

/// The instance name: the basename of CONFIG as typed, or `ldirectord` when defaulted.
pub fn instance_name(config: Option<&str>) -> String {
    match config {
        None => "ldirectord".to_owned(),
        Some(c) => Path::new(c)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| c.to_owned()),
    }
}

/// The control socket of instance `name`: `RUNDIR/ldirectord.NAME.sock`.
pub fn control_socket(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("ldirectord.{name}.sock"))
}

/// Where drains are kept without `maintenancedir=`: `RUNDIR/ldirectord.NAME.drains`.
pub fn drain_file(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("ldirectord.{name}.drains"))
}

/// Send `sig` to `pid` (a process that is already gone is not an error).
pub fn signal(pid: i32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// SIGTERM to the daemon `pid`, then wait until it finished its cleanup and exited, at
/// most `bound` (stock returns at once, defect 14). Returns whether it is gone.
pub fn stop(pid: i32, bound: Duration) -> bool {
    signal(pid, Signal::SIGTERM);
    wait_gone(pid, bound)
}

/// Whether process `pid` still exists (a zombie counts as gone: it has finished).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !stat[i + 1..].trim_start().starts_with('Z'),
            None => true,
        },
        Err(_) => false,
    }
}

/// Wait until `pid` is gone, at most `bound`. Returns whether it is gone.
pub fn wait_gone(pid: i32, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_and_pid_files() {
        assert_eq!(instance_name(None), "ldirectord");
        assert_eq!(instance_name(Some("/etc/ldirectord.cf")), "ldirectord.cf");
        assert_eq!(instance_name(Some("www")), "www");
        assert_eq!(
            pid_file(Path::new("/var/run"), "www"),
            PathBuf::from("/var/run/ldirectord.www.pid")
        );
    }

    #[test]
    fn lookup_prefers_ha_d_then_conf_then_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let ha = dir.path().join("ha.d");
        std::fs::create_dir_all(ha.join("conf")).unwrap();
        std::fs::write(ha.join("conf/www"), "").unwrap();
        assert_eq!(resolve_config("www", &ha), Some(ha.join("conf/www")));
        std::fs::write(ha.join("www"), "").unwrap();
        assert_eq!(
            resolve_config("www", &ha),
            Some(PathBuf::from(format!("{}/www", ha.display())))
        );
        let abs = dir.path().join("abs.cf");
        std::fs::write(&abs, "").unwrap();
        assert_eq!(
            resolve_config(abs.to_str().unwrap(), &ha),
            Some(abs.clone())
        );
        assert_eq!(resolve_config("missing.cf", &ha), None);
    }
}
