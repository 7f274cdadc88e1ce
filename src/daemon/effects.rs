//! Side effects the director core asks for, other than engine operations: shell commands
//! (`fallbackcommand`, `callback`), monitorfile lines and e-mail alerts.
//!
//! Commands run one at a time, in the order asked, on a worker task: a `start` and the
//! `stop` that follows can never overtake each other, and the check loop never waits for
//! them. Each runs as `/bin/sh -c LINE` (as `scriptuser=` when set) in its own process group, bounded by
//! [`COMMAND_TIMEOUT`] (then the whole group gets SIGKILL) and always reaped. Alerts are
//! sent on their own tasks ([`super::mail`]).

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ldirectord_parsers::config::ScriptUser;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::logging::ctime_now;
use super::mail::{self, Message};
use crate::director::Alert;

/// How long a `fallbackcommand` or `callback` run may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs shell lines in order on a worker task.
#[derive(Debug)]
pub struct CommandQueue {
    tx: mpsc::UnboundedSender<(String, Option<ScriptUser>)>,
    worker: tokio::task::JoinHandle<()>,
}

impl CommandQueue {
    pub fn new() -> CommandQueue {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, Option<ScriptUser>)>();
        let worker = tokio::spawn(async move {
            while let Some((line, user)) = rx.recv().await {
                run_shell(&line, user.as_ref(), COMMAND_TIMEOUT).await;
            }
        });
        CommandQueue { tx, worker }
    }

    /// Queue `line` for `/bin/sh -c`, as `user` (`scriptuser=`) when given.
    pub fn run(&self, line: String, user: Option<ScriptUser>) {
        let _ = self.tx.send((line, user));
    }

    /// Let the queued commands finish, at most `bound` in all.
    pub async fn drain(self, bound: Duration) {
        drop(self.tx);
        let mut worker = self.worker;
        if tokio::time::timeout(bound, &mut worker).await.is_err() {
            worker.abort();
        }
    }
}

/// Run one shell line (as `user` when given), bounded, logging stock's
/// `system(LINE) failed: …` on failure.
pub async fn run_shell(line: &str, user: Option<&ScriptUser>, timeout: Duration) {
    let child = ldirectord_checks::process::script_command("/bin/sh", user)
        .arg("-c")
        .arg(line)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::info!("system({line}) failed: {e}");
            return;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::info!("system({line}) failed: {status}"),
        Ok(Err(e)) => tracing::info!("system({line}) failed: {e}"),
        Err(_) => {
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            tracing::info!(
                "system({line}) failed: timed out after {}s, killed",
                timeout.as_secs()
            );
        }
    }
}

/// Append `[CTIME] [PID] LINE` to a monitorfile (opened per line, like stock, so the file
/// may be rotated or removed at any time). Stock dies when it cannot write; we log.
pub fn append_monitor(path: &Path, line: &str) {
    let text = format!("[{}] [{}] {line}\n", ctime_now(), std::process::id());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        tracing::info!("cannot write monitorfile {}: {e}", path.display());
    }
}

/// Sends alerts on their own tasks.
#[derive(Debug, Default)]
pub struct Mailer {
    tasks: JoinSet<()>,
}

impl Mailer {
    /// Log `emailalert: SUBJECT` and send the alert in the background. `from` is
    /// `emailalertfrom=` if set.
    pub fn send(&mut self, alert: &Alert, from: Option<&str>) {
        // Finished sends are collected here so the set does not grow.
        while self.tasks.try_join_next().is_some() {}
        let subject = alert.subject();
        tracing::info!("emailalert: {subject}");
        let envelope_from = mail::default_sender();
        let message = Message {
            from: from
                .map(str::to_owned)
                .unwrap_or_else(|| envelope_from.clone()),
            envelope_from,
            to: alert.recipients.clone(),
            subject,
            body: alert.body(&mail::hostname()),
        };
        let smtp = alert.smtp.clone();
        self.tasks.spawn(async move {
            let result = match &smtp {
                Some(host) => mail::send_smtp_host(host, &message).await,
                None => mail::send_sendmail(mail::SENDMAIL, &message).await,
            };
            if let Err(e) = result {
                match smtp {
                    Some(_) => tracing::info!("failed to send SMTP email message: {e}"),
                    None => tracing::info!("failed to send email message: {e}"),
                }
            }
        });
    }

    /// Wait for alerts in flight, at most `bound` (used on stop, so `stopping` alerts go
    /// out).
    pub async fn drain(&mut self, bound: Duration) {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(bound, all).await.is_err() {
            self.tasks.abort_all();
        }
    }
}

impl Default for CommandQueue {
    fn default() -> Self {
        Self::new()
    }
}
