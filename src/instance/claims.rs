//! One director per table: which virtual services each live instance manages, so that
//! two daemons never program the same service (`ldirectord start`, instance
//! `ldirectord`, and an OCF primitive on the same file under another name, or two files
//! that share a virtual).
//!
//! The registry is `RUNDIR/ldirectord.claims` (JSON, one [`Claim`] per live instance:
//! its name, pid, process start time, canonical configuration path and service keys).
//! Every change happens under an exclusive `flock` on `RUNDIR/ldirectord.claims.lock`
//! and is written to a temporary file renamed over the registry, so two starts that race
//! see each other and a crash never leaves half a file. A claim is stale, and ignored
//! then dropped, when its pid is gone or is another process now (its start time in
//! `/proc/PID/stat` differs): a daemon killed with SIGKILL never blocks the next start.
//!
//! A daemon claims at start ([`Claims::claim`]), again at every reload
//! ([`Claims::update`], refused when the new configuration would take a service another
//! instance holds) and releases at stop (dropping [`Claims`]). What it refuses:
//! the same configuration file (after symlinks) as another live instance, or a virtual
//! service another live instance claims. Real servers are never claimed: a fallback, a
//! `realsource=` real or the OCF agent's lvsdr-style reals are destinations inside the
//! instance's own services, and the backup sync daemon (`sync-backup`) manages no
//! service at all.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use ldirectord_parsers::ipvs::ServiceKey;
use serde::{Deserialize, Serialize};

/// The registry's file name in the run dir.
pub const REGISTRY: &str = "ldirectord.claims";

/// How long a change waits for the registry's lock (held by others for microseconds).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a start waits for a conflicting holder to go away before it gives up.
pub const START_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// One live instance's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub instance: String,
    pub pid: i32,
    /// The process's start time (clock ticks after boot, `/proc/PID/stat` field 22):
    /// with the pid, it tells this process from a later one that reuses the pid.
    pub started: u64,
    /// The configuration file, canonical.
    pub config: PathBuf,
    /// The virtual services, in ipvsadm's notation (`-t 10.0.0.1:80`, `-f 5`).
    pub services: Vec<String>,
}

/// Why a claim was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "{config} is already managed by instance {instance} (pid {pid}); one director per \
         configuration: stop that instance first"
    )]
    SameConfig {
        config: PathBuf,
        instance: String,
        pid: i32,
    },
    #[error(
        "virtual service {service} is already managed by instance {instance} (pid {pid}, \
         config {config}); one director per virtual service"
    )]
    Service {
        service: String,
        instance: String,
        pid: i32,
        config: PathBuf,
    },
    #[error("cannot update the claims registry {0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// This process's claim in the registry of one run dir; dropping it releases the claim.
#[derive(Debug)]
pub struct Claims {
    run_dir: PathBuf,
    pid: i32,
    started: u64,
    instance: String,
    /// Whether the registry holds a claim of ours (what dropping has to remove).
    held: bool,
}

impl Claims {
    /// Claim `services` of `config` for `instance` in `run_dir` (this process). A
    /// conflict is asked again for up to [`START_GRACE`]: a start right after `kill -9`
    /// of the holder may come before the kernel has finished it off.
    pub fn claim(
        run_dir: &Path,
        instance: &str,
        config: &Path,
        services: impl IntoIterator<Item = ServiceKey>,
    ) -> Result<Claims, ClaimError> {
        let pid = std::process::id() as i32;
        let mut claims = Claims {
            run_dir: run_dir.to_path_buf(),
            pid,
            started: start_time(pid).unwrap_or(0),
            instance: instance.to_owned(),
            held: false,
        };
        let services: Vec<ServiceKey> = services.into_iter().collect();
        let deadline = std::time::Instant::now() + START_GRACE;
        loop {
            match claims.update(config, services.iter().copied()) {
                Err(ClaimError::SameConfig { .. } | ClaimError::Service { .. })
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e),
                Ok(()) => {
                    claims.held = true;
                    return Ok(claims);
                }
            }
        }
    }

    /// Replace this process's claim (a reload); on a conflict the old claim stays.
    pub fn update(
        &self,
        config: &Path,
        services: impl IntoIterator<Item = ServiceKey>,
    ) -> Result<(), ClaimError> {
        let mut services: Vec<String> = services.into_iter().map(|k| k.to_string()).collect();
        services.sort();
        services.dedup();
        let mine = Claim {
            instance: self.instance.clone(),
            pid: self.pid,
            started: self.started,
            config: std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf()),
            services,
        };
        transact(&self.run_dir, |claims| {
            claims.retain(|c| !self.is_mine(c));
            if let Some(e) = conflict(claims, &mine) {
                return Err(e);
            }
            claims.push(mine);
            Ok(())
        })
    }

    fn is_mine(&self, c: &Claim) -> bool {
        c.pid == self.pid && c.started == self.started
    }
}

impl Drop for Claims {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let _ = transact(&self.run_dir, |claims| {
            claims.retain(|c| !self.is_mine(c));
            Ok(())
        });
    }
}

/// The live claims of `run_dir` (stale ones left out), for tools and tests.
pub fn live(run_dir: &Path) -> Vec<Claim> {
    let mut claims = read(&run_dir.join(REGISTRY));
    claims.retain(is_live);
    claims
}

/// The first way `mine` collides with one of `others` (all live): the same configuration
/// file, else a shared virtual service.
pub fn conflict(others: &[Claim], mine: &Claim) -> Option<ClaimError> {
    if let Some(c) = others.iter().find(|c| c.config == mine.config) {
        return Some(ClaimError::SameConfig {
            config: mine.config.clone(),
            instance: c.instance.clone(),
            pid: c.pid,
        });
    }
    mine.services.iter().find_map(|s| {
        let c = others.iter().find(|c| c.services.contains(s))?;
        Some(ClaimError::Service {
            service: s.clone(),
            instance: c.instance.clone(),
            pid: c.pid,
            config: c.config.clone(),
        })
    })
}

/// Under the registry's lock: read, drop stale claims, let `change` edit, write back.
fn transact(
    run_dir: &Path,
    change: impl FnOnce(&mut Vec<Claim>) -> Result<(), ClaimError>,
) -> Result<(), ClaimError> {
    let path = run_dir.join(REGISTRY);
    let lock_path = run_dir.join(format!("{REGISTRY}.lock"));
    let io = |e| ClaimError::Io(path.clone(), e);
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io)?;
    // Held for a read and a small write only; released when `lock` is dropped. Bounded:
    // a holder stopped mid-change (SIGSTOP) must not hang a start or the daemon's reload.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io(std::io::Error::other(format!(
                    "{} stayed locked for {} s",
                    lock_path.display(),
                    LOCK_WAIT.as_secs()
                ))));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    let mut claims = read(&path);
    claims.retain(is_live);
    change(&mut claims)?;
    write_atomically(&path, &claims).map_err(io)
}

/// The registry's claims; a missing or unreadable file holds none (every write replaces
/// the whole file, so only a hand edit can spoil it).
fn read(path: &Path) -> Vec<Claim> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_atomically(path: &Path, claims: &[Claim]) -> std::io::Result<()> {
    let tmp = path.with_extension("claims.tmp");
    let text = serde_json::to_string_pretty(claims).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

/// Whether the claim's process still runs and is the one that claimed.
fn is_live(c: &Claim) -> bool {
    super::alive(c.pid) && start_time(c.pid) == Some(c.started)
}

/// `/proc/PID/stat` field 22, the start time in clock ticks after boot.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3 (the state).
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldirectord_parsers::ipvs::IpProto;

    fn key(port: u16) -> ServiceKey {
        ServiceKey::inet(IpProto::Tcp, "10.0.0.1".parse().unwrap(), port)
    }

    fn claim(instance: &str, config: &str, services: &[&str]) -> Claim {
        Claim {
            instance: instance.into(),
            pid: 4242,
            started: 7,
            config: config.into(),
            services: services.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_same_file_or_a_shared_service_conflicts() {
        let other = claim("ldirectord", "/etc/ha.d/ldirectord.cf", &["-t 10.0.0.1:80"]);
        let same_file = claim("ldirectord.cf", "/etc/ha.d/ldirectord.cf", &[]);
        assert_eq!(
            conflict(std::slice::from_ref(&other), &same_file)
                .unwrap()
                .to_string(),
            "/etc/ha.d/ldirectord.cf is already managed by instance ldirectord (pid 4242); \
             one director per configuration: stop that instance first"
        );
        let sharing = claim("www", "/etc/www.cf", &["-t 10.0.0.1:443", "-t 10.0.0.1:80"]);
        assert_eq!(
            conflict(std::slice::from_ref(&other), &sharing)
                .unwrap()
                .to_string(),
            "virtual service -t 10.0.0.1:80 is already managed by instance ldirectord \
             (pid 4242, config /etc/ha.d/ldirectord.cf); one director per virtual service"
        );
        let apart = claim("www", "/etc/www.cf", &["-t 10.0.0.1:443", "-u 10.0.0.1:80"]);
        assert!(conflict(&[other], &apart).is_none());
    }

    #[test]
    fn claims_are_kept_updated_released_and_stale_ones_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        let cf = run.join("a.cf");
        std::fs::write(&cf, "").unwrap();
        // A claim by a pid that is gone (a daemon killed with SIGKILL).
        let dead = Claim {
            pid: i32::MAX,
            ..claim("dead", cf.to_str().unwrap(), &["-t 10.0.0.1:80"])
        };
        write_atomically(&run.join(REGISTRY), &[dead]).unwrap();
        let held = Claims::claim(run, "a", &cf, [key(80)]).unwrap();
        assert_eq!(live(run).len(), 1);
        assert_eq!(live(run)[0].services, ["-t 10.0.0.1:80"]);
        // A second claim by this same process on the same file is refused...
        let twin = Claims {
            run_dir: run.to_path_buf(),
            pid: held.pid,
            started: held.started + 1,
            instance: "b".into(),
            held: false,
        };
        let refused = twin.update(&cf, [key(81)]).unwrap_err();
        assert!(
            matches!(refused, ClaimError::SameConfig { .. }),
            "{refused}"
        );
        drop(twin);
        // ...and a reload of the holder moves its claim.
        held.update(&cf, [key(81), key(82)]).unwrap();
        assert_eq!(live(run)[0].services, ["-t 10.0.0.1:81", "-t 10.0.0.1:82"]);
        drop(held);
        assert!(live(run).is_empty());
        assert_eq!(read(&run.join(REGISTRY)), []);
    }

    #[test]
    fn a_registry_locked_by_someone_else_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let cf = dir.path().join("a.cf");
        std::fs::write(&cf, "").unwrap();
        let held = std::fs::File::create(dir.path().join(format!("{REGISTRY}.lock"))).unwrap();
        held.lock().unwrap();
        let err = Claims::claim(dir.path(), "a", &cf, [key(80)]).unwrap_err();
        assert!(err.to_string().contains("stayed locked for 2 s"), "{err}");
        drop(held);
        Claims::claim(dir.path(), "a", &cf, [key(80)]).unwrap();
    }

    #[test]
    fn a_start_time_is_read_from_proc() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(i32::MAX), None);
    }
}
