//! What goes into the director core and what comes out of it, as plain values: check
//! results in, [`Action`]s out. The daemon shell performs the actions in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldirectord_checks::{CheckSpec, Outcome, Verdict};
use ldirectord_parsers::config::AlertStatus;

use crate::engine::Op;

/// The daemon's state, as `emailalertstatus=` filters alerts by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaemonState {
    /// From start-up until the first full check round is done.
    Starting,
    Running,
    Stopping,
    /// From a reload until the first full check round after it is done.
    Reloading,
}

impl DaemonState {
    /// ldirectord's word, as in the alert body's `Daemon-Status:` line.
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonState::Starting => "starting",
            DaemonState::Running => "running",
            DaemonState::Stopping => "stopping",
            DaemonState::Reloading => "reloading",
        }
    }

    /// Whether `emailalertstatus` lets alerts out in this state.
    pub fn alerts_allowed(self, status: &AlertStatus) -> bool {
        match self {
            DaemonState::Starting => status.starting,
            DaemonState::Running => status.running,
            DaemonState::Stopping => status.stopping,
            DaemonState::Reloading => status.reloading,
        }
    }
}

/// The result of one check run, as the shell reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult<'a> {
    /// The check passed; the text is the monitorfile message (`-` style detail).
    Up(&'a str),
    /// The check failed, with the reason.
    Down(&'a str),
    /// A `maintenancedir` file names this real: the check was not run and the real is
    /// forced down, whatever `failurecount` says.
    Maintenance,
}

impl<'a> From<&'a Outcome> for CheckResult<'a> {
    fn from(outcome: &'a Outcome) -> Self {
        match outcome.verdict {
            Verdict::Up => CheckResult::Up(&outcome.reason),
            Verdict::Down => CheckResult::Down(&outcome.reason),
            Verdict::Maintenance => CheckResult::Maintenance,
        }
    }
}

/// One check the shell must run: one per distinct [`CheckSpec`], whatever the number of
/// (virtual, real) pairs it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPlan {
    /// Shared with the director: a plan costs no copy of the spec.
    pub spec: Arc<CheckSpec>,
    /// The shortest `checkinterval` of the virtuals that use this check.
    pub interval: Duration,
}

/// `start` or `stop`, the first argument of the fallback command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FallbackAction {
    Start,
    Stop,
}

impl FallbackAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackAction::Start => "start",
            FallbackAction::Stop => "stop",
        }
    }
}

/// A run of `fallbackcommand`: `COMMAND start|stop VIP:VPORT PROTOCOL`, given to
/// `/bin/sh -c` as one string like stock does (the command may carry its own arguments).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FallbackCommand {
    /// The configured command, verbatim.
    pub command: String,
    pub action: FallbackAction,
    /// `10.0.0.100:80`, `[2001:db8::5]:80`, or for a fwmark virtual `MARK:0` (stock gives
    /// an empty address, `:0`; see compat/DEVIATIONS.md).
    pub virtual_arg: String,
    /// `tcp`, `udp` or `fwm`.
    pub protocol: &'static str,
}

impl FallbackCommand {
    /// The line for `/bin/sh -c`.
    pub fn shell_line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.command,
            self.action.as_str(),
            self.virtual_arg,
            self.protocol
        )
    }
}

/// An e-mail alert that passed the `emailalert`/`emailalertstatus` filter: the shell only
/// has to send it (and log `emailalert: SUBJECT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Alert {
    /// The log text the alert is about, e.g. `Deleted real server: 10.0.0.2:80 (10.0.0.100:80)`.
    pub message: String,
    /// `emailalert=` of the virtual: the recipients, verbatim.
    pub recipients: String,
    /// `smtp=` of the virtual; `None` = local mailer.
    pub smtp: Option<String>,
    pub servicename: Option<String>,
    pub comment: Option<String>,
    /// The daemon state when the event happened.
    pub state: DaemonState,
}

impl Alert {
    /// The subject: the message, prefixed `[SERVICENAME] ` when `servicename` is set.
    pub fn subject(&self) -> String {
        match &self.servicename {
            Some(name) => format!("[{name}] {}", self.message),
            None => self.message.clone(),
        }
    }

    /// The body as stock writes it; `host` is this director's host name.
    pub fn body(&self, host: &str) -> String {
        let mut body = format!(
            "ldirectord host: {host}\nLog-Message: {}\nDaemon-Status: {}\n",
            self.message,
            self.state.as_str()
        );
        if self.servicename.is_some() || self.comment.is_some() {
            body.push('\n');
        }
        if let Some(name) = &self.servicename {
            body.push_str(&format!("Service name: {name}\n"));
        }
        if let Some(comment) = &self.comment {
            body.push_str(&format!("Comment: {comment}\n"));
        }
        body
    }
}

/// One thing for the shell to do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply this operation through the engine. If it fails, log the error and give the
    /// core a fresh table dump ([`crate::director::Director::on_table`]) to converge.
    Apply(Op),
    /// A log line, text only (the shell adds time, instance and pid per `logfile=`).
    Log(String),
    /// Run the fallback command.
    RunFallbackCommand(FallbackCommand),
    /// Send this alert.
    Alert(Alert),
    /// Append `[CTIME] [PID] LINE` to this monitorfile.
    Monitor { path: PathBuf, line: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_subject_and_body() {
        let mut alert = Alert {
            message: "Deleted real server: 10.0.0.2:80 (10.0.0.100:80)".into(),
            recipients: "ops@example.com".into(),
            smtp: None,
            servicename: None,
            comment: None,
            state: DaemonState::Running,
        };
        assert_eq!(
            alert.subject(),
            "Deleted real server: 10.0.0.2:80 (10.0.0.100:80)"
        );
        assert_eq!(
            alert.body("lb1"),
            "ldirectord host: lb1\nLog-Message: Deleted real server: 10.0.0.2:80 (10.0.0.100:80)\nDaemon-Status: running\n"
        );
        alert.servicename = Some("www".into());
        alert.comment = Some("front".into());
        alert.state = DaemonState::Starting;
        assert_eq!(
            alert.subject(),
            "[www] Deleted real server: 10.0.0.2:80 (10.0.0.100:80)"
        );
        assert_eq!(
            alert.body("lb1"),
            "ldirectord host: lb1\nLog-Message: Deleted real server: 10.0.0.2:80 (10.0.0.100:80)\nDaemon-Status: starting\n\nService name: www\nComment: front\n"
        );
    }

    #[test]
    fn alert_status_filter() {
        let only_running = AlertStatus {
            running: true,
            ..AlertStatus::NONE
        };
        let cases = [
            (DaemonState::Starting, false),
            (DaemonState::Running, true),
            (DaemonState::Stopping, false),
            (DaemonState::Reloading, false),
        ];
        for (state, want) in cases {
            assert_eq!(state.alerts_allowed(&only_running), want, "{state:?}");
            assert!(state.alerts_allowed(&AlertStatus::ALL));
            assert!(!state.alerts_allowed(&AlertStatus::NONE));
        }
    }

    #[test]
    fn fallback_command_line() {
        let cmd = FallbackCommand {
            command: "/usr/local/bin/fb --quiet".into(),
            action: FallbackAction::Start,
            virtual_arg: "10.0.0.100:80".into(),
            protocol: "tcp",
        };
        assert_eq!(
            cmd.shell_line(),
            "/usr/local/bin/fb --quiet start 10.0.0.100:80 tcp"
        );
    }
}
