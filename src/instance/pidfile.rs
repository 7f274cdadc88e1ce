//! The pid file `RUNDIR/ldirectord.NAME.pid`: where it is ([`pid_file`]), what it says
//! about an instance ([`pid_state`], stock's liveness rule), and the daemon's lock on it.
//!
//! The daemon holds an exclusive `flock` on the file for its whole life ([`PidLock`]), so
//! two daemons of one instance can never run at once, whatever races two `start`s run.
//! The file keeps stock's content (the pid and a newline), so `status`, `stop`, the OCF
//! agent and systemd's `PIDFile=` read it as before.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `/var/run/ldirectord.NAME.pid`.
pub fn pid_file(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("ldirectord.{name}.pid"))
}

/// What a pid file says about an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidState {
    /// No pid file.
    Absent,
    /// A pid file whose process is gone or is not an ldirectord.
    Stale(i32),
    /// A live daemon.
    Running(i32),
}

/// Stock's liveness rule: the pid file names a process whose `/proc/PID/cmdline`
/// contains `ldirectord`.
pub fn pid_state(path: &Path) -> PidState {
    let Ok(text) = std::fs::read_to_string(path) else {
        return PidState::Absent;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return PidState::Stale(0);
    };
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) if pid > 0 && String::from_utf8_lossy(&cmdline).contains("ldirectord") => {
            PidState::Running(pid)
        }
        _ => PidState::Stale(pid),
    }
}

/// A held pid-file lock. Dropping it releases the lock but leaves the file; call
/// [`PidLock::remove`] on an orderly exit.
#[derive(Debug)]
pub struct PidLock {
    file: File,
    path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PidLockError {
    /// Another process holds it: a daemon of this instance runs (or is starting).
    #[error("another ldirectord holds {0}")]
    Held(PathBuf),
    /// Stock's wording for an unwritable pid file.
    #[error("Can not open {0}")]
    Open(PathBuf, #[source] std::io::Error),
}

impl PidLock {
    /// Open (creating, never truncating: a losing racer must not wipe the winner's pid)
    /// and lock `path` exclusively without waiting.
    pub fn acquire(path: &Path) -> Result<PidLock, PidLockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| PidLockError::Open(path.to_path_buf(), e))?;
        match file.try_lock() {
            Ok(()) => Ok(PidLock {
                file,
                path: path.to_path_buf(),
            }),
            Err(TryLockError::WouldBlock) => Err(PidLockError::Held(path.to_path_buf())),
            Err(TryLockError::Error(e)) => Err(PidLockError::Open(path.to_path_buf(), e)),
        }
    }

    /// Whether some process holds the lock on `path` right now (false if there is no file).
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = File::open(path) else {
            return false;
        };
        matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
    }

    /// Replace the content with `pid` and a newline.
    pub fn write_pid(&mut self, pid: u32) -> std::io::Result<()> {
        self.file.set_len(0)?;
        let mut f = &self.file;
        std::io::Seek::rewind(&mut f)?;
        f.write_all(format!("{pid}\n").as_bytes())?;
        f.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the file, then release the lock (in that order, so a new daemon cannot lock
    /// a file that is about to vanish).
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_content_is_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ldirectord.x.pid");
        assert!(!PidLock::is_held(&path));
        let mut lock = PidLock::acquire(&path).unwrap();
        assert!(PidLock::is_held(&path));
        assert!(matches!(
            PidLock::acquire(&path),
            Err(PidLockError::Held(_))
        ));
        lock.write_pid(4242).unwrap();
        lock.write_pid(17).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "17\n");
        lock.remove();
        assert!(!path.exists());
        assert!(!PidLock::is_held(&path));
        let again = PidLock::acquire(&path).unwrap();
        drop(again);
    }

    #[test]
    fn unwritable_directory_is_stocks_open_error() {
        let err = PidLock::acquire(Path::new("/nonexistent-dir/ldirectord.x.pid")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Can not open /nonexistent-dir/ldirectord.x.pid"
        );
    }
}
