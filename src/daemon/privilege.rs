//! Least privilege (issue 14, DEVIATIONS L27): a daemon started as root keeps only the
//! capabilities it uses itself ([`NEEDED`]) in its permitted and effective sets, and
//! none inheritable, unless `keepcapabilities=yes`.
//!
//! The bounding set is left alone, and that is what keeps stock's scripts working: for a
//! process whose uid is 0 (no file capabilities, `SECBIT_NOROOT` unset), `execve` gives
//! the new program the bounding set as its permitted and effective sets, whatever the
//! caller held. So every program the daemon runs as root (external checks,
//! `fallbackcommand`, `callback`, `ipvsadm`, `modprobe`, sendmail, `execute=`
//! sub-instances) still gets all of root's capabilities, and one run as `scriptuser=`
//! gets none, as before.
//!
//! When: capabilities belong to a thread (`capset(2)` changes only the caller's) and a
//! new thread copies its creator's, so the drop happens in the start-up thread while it
//! is the only one, before the runtime starts its threads; every thread started later
//! has only the kept set. What start-up does after that point (claims, the control
//! socket, the metrics listener, the engine) needs nothing beyond [`NEEDED`].
//!
//! The `caps` crate does the `capget`/`capset` calls (this crate forbids `unsafe`).

use caps::{CapSet, Capability, CapsHashSet};

/// The capabilities the daemon itself uses after start-up, and what for. Nothing else:
/// the files it reads and writes after start-up (configuration, log, monitorfile,
/// maintenance directory, pid file, control socket, `RUNDIR`) are root's in the usual
/// layout, which uid 0 reaches as their owner without `CAP_DAC_OVERRIDE`.
pub const NEEDED: [(Capability, &str); 7] = [
    (
        Capability::CAP_CHOWN,
        "controlgroup=: the control socket handed to a group the daemon is not in (start, reload)",
    ),
    (
        Capability::CAP_KILL,
        "a timed-out script run as scriptuser= is killed",
    ),
    (Capability::CAP_SETGID, "scriptuser=: setgroups, setgid"),
    (Capability::CAP_SETUID, "scriptuser=: setuid"),
    (
        Capability::CAP_NET_BIND_SERVICE,
        "metrics= or a userspace engine port below 1024 (start, reload)",
    ),
    (
        Capability::CAP_NET_ADMIN,
        "IPVS over netlink, the sync daemon, SO_MARK of checkpath=forwarding checks",
    ),
    (Capability::CAP_NET_RAW, "ping checks' ICMP sockets"),
];

/// What [`drop_to_needed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privilege {
    /// Not started as root: nothing is changed.
    NotRoot,
    /// `keepcapabilities=yes`: nothing is changed.
    KeptAll,
    /// Permitted and effective are now `kept` (the part of [`NEEDED`] the daemon had);
    /// `dropped` capabilities went.
    Dropped {
        kept: Vec<Capability>,
        dropped: usize,
    },
    /// The drop failed; the daemon goes on with what it has.
    Failed(String),
}

impl Privilege {
    /// The one log line for this outcome (`None` when not root: nothing to say).
    pub fn log_line(&self) -> Option<String> {
        match self {
            Privilege::NotRoot => None,
            Privilege::KeptAll => {
                Some("keepcapabilities=yes: keeping all of root's capabilities".to_owned())
            }
            Privilege::Dropped { kept, dropped } => Some(format!(
                "Keeping capabilities {} and dropping {dropped} others (programs run as \
                 root still get all of root's; keepcapabilities=yes keeps them all)",
                names(kept).join(",")
            )),
            Privilege::Failed(why) => {
                Some(format!("cannot drop capabilities: {why}; keeping them all"))
            }
        }
    }
}

/// Drop permitted and effective to [`NEEDED`] and inheritable to nothing, unless
/// `keep_all` or the process is not root. Call while this is the process's only thread.
pub fn drop_to_needed(keep_all: bool) -> Privilege {
    if !nix::unistd::geteuid().is_root() {
        return Privilege::NotRoot;
    }
    if keep_all {
        return Privilege::KeptAll;
    }
    let threads = match std::fs::read_dir("/proc/self/task") {
        Ok(tasks) => tasks.count(),
        Err(e) => return Privilege::Failed(format!("cannot count threads: {e}")),
    };
    if threads > 1 {
        return Privilege::Failed(format!(
            "{threads} threads already run (a thread's capabilities are its own)"
        ));
    }
    let permitted = match caps::read(None, CapSet::Permitted) {
        Ok(p) => p,
        Err(e) => return Privilege::Failed(e.to_string()),
    };
    let keep: CapsHashSet = NEEDED
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| permitted.contains(c))
        .collect();
    let dropped = permitted.difference(&keep).count();
    // Effective must stay within permitted, so it goes first.
    let result = caps::set(None, CapSet::Effective, &keep)
        .and_then(|()| caps::set(None, CapSet::Permitted, &keep))
        .and_then(|()| caps::clear(None, CapSet::Inheritable));
    if let Err(e) = result {
        // Effective may have gone down alone: raise it back to what is still permitted.
        if let Ok(p) = caps::read(None, CapSet::Permitted) {
            let _ = caps::set(None, CapSet::Effective, &p);
        }
        return Privilege::Failed(e.to_string());
    }
    Privilege::Dropped {
        kept: sorted(keep),
        dropped,
    }
}

/// The calling thread's effective capabilities (`CAP_…` names, by number); empty when
/// they cannot be read. `status --json` shows the daemon's.
pub fn effective() -> Vec<String> {
    caps::read(None, CapSet::Effective)
        .map(|set| names(&sorted(set)))
        .unwrap_or_default()
}

fn sorted(set: CapsHashSet) -> Vec<Capability> {
    let mut v: Vec<Capability> = set.into_iter().collect();
    v.sort_by_key(|c| c.index());
    v
}

fn names(caps: &[Capability]) -> Vec<String> {
    caps.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_names_what_is_kept() {
        let p = Privilege::Dropped {
            kept: vec![Capability::CAP_KILL, Capability::CAP_NET_ADMIN],
            dropped: 33,
        };
        let line = p.log_line().unwrap();
        assert!(
            line.starts_with("Keeping capabilities CAP_KILL,CAP_NET_ADMIN and dropping 33 others"),
            "{line}"
        );
        assert_eq!(Privilege::NotRoot.log_line(), None);
        assert!(
            Privilege::Failed("EPERM".into())
                .log_line()
                .unwrap()
                .contains("cannot drop capabilities: EPERM; keeping them all")
        );
    }

    /// The guard that keeps a drop from leaving other threads privileged: with a second
    /// thread running, nothing is dropped (as root) and the reason says why.
    #[test]
    fn a_drop_while_other_threads_run_changes_nothing() {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        let before = caps::read(None, CapSet::Effective).unwrap();
        let root = nix::unistd::geteuid().is_root();
        let outcome = drop_to_needed(false);
        if root {
            assert!(
                matches!(&outcome, Privilege::Failed(why) if why.contains("threads already run")),
                "{outcome:?}"
            );
            assert_eq!(drop_to_needed(true), Privilege::KeptAll);
        } else {
            assert_eq!(outcome, Privilege::NotRoot);
        }
        assert_eq!(caps::read(None, CapSet::Effective).unwrap(), before);
        done.send(()).unwrap();
        other.join().unwrap().unwrap();
    }

    #[test]
    fn needed_is_listed_once_each() {
        let set: CapsHashSet = NEEDED.iter().map(|(c, _)| *c).collect();
        assert_eq!(set.len(), NEEDED.len());
    }
}
