//! `net.ipv4.conf.all.accept_local` while `checkpath=forwarding` checks run.
//!
//! A check through the forwarding path is answered by the real from the VIP, one of the
//! director's own addresses; the kernel drops such a packet as a martian unless
//! `accept_local` is set on the interface it arrives on. The kernel ORs the `all` value
//! with the interface's, so setting `all` covers whichever interface the replies use.
//!
//! The value found is kept in `RUNDIR/ldirectord.NAME.accept_local` before it is changed,
//! and written back (and the file removed) when no helper is wanted any more or at stop.
//! After a crash the file is still there: the next start takes the original value from it
//! instead of the 1 it finds, so the next orderly stop restores what the operator had.

use std::fs;
use std::path::{Path, PathBuf};

/// The knob, as procfs shows it.
const ALL: &str = "/proc/sys/net/ipv4/conf/all/accept_local";

/// Where the daemon keeps the value it found, for an orderly stop or a restart after a
/// crash.
pub fn saved_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("ldirectord.{name}.accept_local"))
}

/// Sets and restores `accept_local` (one per daemon).
#[derive(Debug)]
pub struct AcceptLocal {
    knob: PathBuf,
    saved: PathBuf,
    /// The value to restore, while we hold the knob at 1.
    original: Option<String>,
}

impl AcceptLocal {
    pub fn new(run_dir: &Path, name: &str) -> AcceptLocal {
        AcceptLocal::at(PathBuf::from(ALL), saved_path(run_dir, name))
    }

    fn at(knob: PathBuf, saved: PathBuf) -> AcceptLocal {
        AcceptLocal {
            knob,
            saved,
            original: None,
        }
    }

    /// Hold the knob at 1 (`on`) or give it back. Returns a line for the log when
    /// something changed or failed.
    pub fn want(&mut self, on: bool) -> Option<String> {
        match (on, self.original.is_some()) {
            (true, false) => Some(self.set()),
            (false, true) => Some(self.restore()),
            _ => None,
        }
    }

    fn set(&mut self) -> String {
        let found = match fs::read_to_string(&self.saved) {
            // A crashed run's record: the operator's value is the one it found.
            Ok(old) => old.trim().to_owned(),
            Err(_) => match fs::read_to_string(&self.knob) {
                Ok(v) => v.trim().to_owned(),
                Err(e) => {
                    return format!(
                        "checkpath=forwarding: cannot read {}: {e}; replies from the VIP may be dropped",
                        self.knob.display()
                    );
                }
            },
        };
        if let Err(e) = fs::write(&self.saved, format!("{found}\n")) {
            return format!(
                "checkpath=forwarding: cannot record {} in {}: {e}; not changing it",
                self.knob.display(),
                self.saved.display()
            );
        }
        if let Err(e) = fs::write(&self.knob, "1\n") {
            let _ = fs::remove_file(&self.saved);
            return format!(
                "checkpath=forwarding: cannot set {} to 1: {e}; replies from the VIP will be dropped",
                self.knob.display()
            );
        }
        let line = format!(
            "checkpath=forwarding: set {} to 1 (was {found})",
            self.knob.display()
        );
        self.original = Some(found);
        line
    }

    fn restore(&mut self) -> String {
        let old = self.original.take().unwrap_or_else(|| "0".to_owned());
        match fs::write(&self.knob, format!("{old}\n")) {
            Ok(()) => {
                let _ = fs::remove_file(&self.saved);
                format!("restored {} to {old}", self.knob.display())
            }
            Err(e) => format!("cannot restore {} to {old}: {e}", self.knob.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_restore_and_a_crash_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let knob = dir.path().join("accept_local");
        let saved = dir.path().join("saved");
        fs::write(&knob, "0\n").unwrap();
        let mut a = AcceptLocal::at(knob.clone(), saved.clone());
        assert_eq!(a.want(false), None);
        assert!(a.want(true).unwrap().ends_with("to 1 (was 0)"));
        assert_eq!(a.want(true), None);
        assert_eq!(fs::read_to_string(&knob).unwrap(), "1\n");
        // A crash: the record stays; a new daemon restores the operator's value.
        drop(a);
        let mut b = AcceptLocal::at(knob.clone(), saved.clone());
        assert!(b.want(true).unwrap().ends_with("(was 0)"));
        assert!(b.want(false).unwrap().starts_with("restored"));
        assert_eq!(fs::read_to_string(&knob).unwrap(), "0\n");
        assert!(!saved.exists());
    }
}
