//! Where every program ldirectord-rs starts is built: checks, fallback commands and
//! callbacks (as `scriptuser=` when set: [`script_command`]), mailers, `ipvsadm` and `modprobe`, realsource queries, sub-instances and the
//! daemon itself. One place, so that no child inherits what is private to our own
//! processes: the daemon child's carried options ([`DAEMON_CHILD_ENV`]) must reach the
//! daemon and nothing it runs (an `ldirectord … start` from a fallbackcommand that saw
//! them would take itself for a daemon child), and systemd's notify protocol
//! ([`NOTIFY_ENV`]), which is for the daemon's main process alone (a child that answered
//! `READY=1` or fed the watchdog would speak for the daemon).
//!
//! Why each child's environment drops the variable instead of the daemon dropping it
//! once: `std::env::remove_var` is unsafe (other threads may read the environment) and the
//! crates forbid unsafe. Nor can the daemon child be marked elsewhere: its command line
//! stays `PROGRAM CONFIG start` (stock's agent finds it with `pgrep -f`), and a pipe at
//! an agreed descriptor number could not be told from a descriptor an ordinary invocation
//! inherited from its parent (reading it would block, or take someone else's data). A
//! unit test of the `ldirectord-rs` crate fails when a `Command::new` appears outside
//! this file. It lives here, the lowest crate that starts programs (the external checks).

use std::ffi::OsStr;

use ldirectord_parsers::config::ScriptUser;

/// Set by `ldirectord CONFIG start` in the environment of the re-executed child that
/// becomes the daemon, to the options it carries over (a JSON array), so that the
/// daemon's command line stays `PROGRAM CONFIG start` as typed.
pub const DAEMON_CHILD_ENV: &str = "LDIRECTORD_RS_DAEMON_CHILD";

/// systemd's notify protocol variables: the socket, the watchdog period and the pid the
/// watchdog watches.
pub const NOTIFY_ENV: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// An async command for `program`, without [`DAEMON_CHILD_ENV`] and [`NOTIFY_ENV`].
pub fn command(program: impl AsRef<OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    for name in std::iter::once(DAEMON_CHILD_ENV).chain(NOTIFY_ENV) {
        cmd.env_remove(name);
    }
    cmd
}

/// [`command`] for an operator's program (an `external` check, `fallbackcommand`,
/// `callback`): as `user` when `scriptuser=` names one. std then calls `setgroups(0)`
/// before `setuid`, so the child keeps no supplementary group: giving it the user's own
/// would need `setgroups` between fork and exec (`pre_exec`, unsafe, which the crates
/// forbid) or the unstable `CommandExt::groups`. `USER:GROUP` picks the one group a
/// script needs.
pub fn script_command(
    program: impl AsRef<OsStr>,
    user: Option<&ScriptUser>,
) -> tokio::process::Command {
    let mut cmd = command(program);
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}

/// A blocking command for `program`, without [`DAEMON_CHILD_ENV`] and [`NOTIFY_ENV`].
pub fn blocking_command(program: impl AsRef<OsStr>) -> std::process::Command {
    let mut cmd = daemon_command(program);
    for name in NOTIFY_ENV {
        cmd.env_remove(name);
    }
    cmd
}

/// The command that becomes the daemon (`start` re-executing itself): without
/// [`DAEMON_CHILD_ENV`] (the caller sets it), but with systemd's notify variables, which
/// are meant for the daemon.
pub fn daemon_command(program: impl AsRef<OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env_remove(DAEMON_CHILD_ENV);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removed(envs: Vec<(&OsStr, Option<&OsStr>)>) -> bool {
        envs.contains(&(OsStr::new(DAEMON_CHILD_ENV), None))
    }

    #[test]
    fn both_commands_drop_the_daemon_child_variable() {
        assert!(removed(blocking_command("true").get_envs().collect()));
        assert!(removed(command("true").as_std().get_envs().collect()));
        assert!(removed(daemon_command("true").get_envs().collect()));
    }

    #[test]
    fn only_the_daemon_keeps_the_notify_protocol() {
        for name in NOTIFY_ENV {
            let gone = (OsStr::new(name), None);
            assert!(blocking_command("true").get_envs().any(|e| e == gone));
            assert!(command("true").as_std().get_envs().any(|e| e == gone));
            assert!(!daemon_command("true").get_envs().any(|e| e == gone));
        }
    }

    #[test]
    fn a_caller_may_still_set_it_for_the_daemon_child() {
        let mut cmd = blocking_command("true");
        cmd.env(DAEMON_CHILD_ENV, "[]");
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(OsStr::new(DAEMON_CHILD_ENV), Some(OsStr::new("[]")))));
    }
}
