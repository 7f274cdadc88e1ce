//! systemd's readiness protocol (`sd_notify(3)`, through the sd-notify crate): `READY=1`
//! once the initial table is programmed, `RELOADING=1` and `READY=1` around a reload,
//! `STOPPING=1`, a `STATUS=` line, and `WATCHDOG=1` from the main loop when systemd set
//! `WATCHDOG_USEC`, every half period, so a wedged loop gets the daemon restarted.
//!
//! Without `NOTIFY_SOCKET` in the environment every call does nothing. A detached daemon
//! (`ldirectord start` under `Type=notify` with `NotifyAccess=all`) is not the process
//! systemd started, so it names itself with `MAINPID=` in the same datagram as `READY=1`;
//! the invoking process leaves `WATCHDOG_PID` (its own pid) out of the daemon's
//! environment ([`inherit_watchdog`]) so the watchdog reaches the daemon.
//! Children the daemon runs (commands, `execute=` sub-instances) never see the socket
//! (`ldirectord_checks::process` drops it from every command but the daemon's own):
//! a sub-instance's `READY=1` would otherwise speak for this service.

use std::time::Duration;

use sd_notify::NotifyState;

/// The variables systemd's notify protocol is read from.
pub use ldirectord_checks::process::NOTIFY_ENV;

/// The daemon's side of the protocol.
#[derive(Debug)]
pub struct Notifier {
    on: bool,
    /// Half of `WATCHDOG_USEC`, when the watchdog is on for this process.
    watchdog: Option<Duration>,
    /// `MAINPID=` to send with `READY=1`: this process, when detached.
    main_pid: Option<u32>,
    status: String,
}

impl Notifier {
    /// From the environment; `detached` when this process is the daemon `start` spawned.
    pub fn from_env(detached: bool) -> Notifier {
        Notifier {
            on: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled()
                .filter(|d| !d.is_zero())
                .map(|d| d / 2),
            main_pid: detached.then(std::process::id),
            status: String::new(),
        }
    }

    /// Whether systemd listens (`NOTIFY_SOCKET` is set).
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// How often [`Notifier::watchdog`] must be called; `None` when the watchdog is off.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.on)
    }

    /// The initial table is programmed, or a reload is done.
    pub fn ready(&self) {
        let mut states = Vec::with_capacity(2);
        if let Some(pid) = self.main_pid {
            states.push(NotifyState::MainPid(pid));
        }
        states.push(NotifyState::Ready);
        self.send(&states);
    }

    /// A reload starts (with the monotonic time systemd ≥ 253 asks for).
    pub fn reloading(&self) {
        let mut states = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        self.send(&states);
    }

    /// The orderly stop starts.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// `STATUS=` for `systemctl status`; sent only when it changed.
    pub fn status(&mut self, text: String) {
        if text != self.status {
            self.send(&[NotifyState::Status(&text)]);
            self.status = text;
        }
    }

    /// The main loop is alive.
    pub fn watchdog(&self) {
        if self.watchdog.is_some() {
            self.send(&[NotifyState::Watchdog]);
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.on {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!("sd_notify: {e}");
        }
    }
}

/// The daemon's one-line state for `STATUS=`.
pub fn status_line(virtuals: usize, up: usize, reals: usize) -> String {
    let s = if virtuals == 1 { "" } else { "s" };
    format!("{virtuals} virtual service{s}, {up}/{reals} real servers up")
}

/// In the invoking `start`: systemd's watchdog is meant for the main process, which the
/// daemon about to be spawned becomes; `WATCHDOG_PID` names this process, so it is left
/// out of the daemon's environment (which then takes `WATCHDOG_USEC` as its own).
pub fn inherit_watchdog(cmd: &mut std::process::Command) {
    let mine = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if mine {
        cmd.env_remove("WATCHDOG_PID");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_reads_well() {
        assert_eq!(
            status_line(1, 2, 3),
            "1 virtual service, 2/3 real servers up"
        );
        assert_eq!(
            status_line(0, 0, 0),
            "0 virtual services, 0/0 real servers up"
        );
    }
}
