//! `checktype=external` and `checktype=external-perl`: run the operator's own check.
//!
//! `external` executes `checkcommand VIP VPORT RIP RPORT` directly (no shell, so
//! `checkcommand` cannot carry arguments, as in stock). `external-perl` runs
//! `perl CHECKCOMMAND VIP VPORT RIP RPORT`: same arguments, same contract. Stock compiles
//! the file once into the daemon; a fresh interpreter per check gives the same exit-code
//! contract without letting a script's `die` or global state touch the director, and picks
//! up edits without a restart.
//!
//! Arguments (§3.1): VIP is the numeric address (`[v6]` bracketed) or the fwmark number;
//! VPORT the virtual port (`0` for fwmark services); RIP the real's numeric address
//! (`[v6]`); RPORT the real's own port (`0` when none), e.g. `10.0.0.100 80 10.0.0.1 80`,
//! `33 0 127.0.0.2 0`.
//!
//! Exit 0 is up; a non-zero exit, death by signal, a failure to start, or running past
//! `checktimeout` is down. The child runs in its own process group: on timeout the whole
//! group (the script and anything it started) gets SIGTERM, then SIGKILL after a
//! [`KILL_GRACE`], and the child is always reaped. The cleanup runs in the background
//! so the check itself still ends at its timeout. stdin and stdout are `/dev/null`;
//! the last [`STDERR_TAIL`] bytes of stderr are kept for the reason.
//!
//! Defaults: `checkcommand` `/bin/true`, timeout `checktimeout` (5 s, §2.8). With
//! `scriptuser=` the command runs as that user and group (see [`crate::process`]).
//! Reasons: `-` when up; `exit status 3` (plus `: <stderr tail>` if the script wrote
//! any), `killed by signal 9 (SIGKILL)`, `cannot run /x/check: No such file or directory`,
//! `timed out after 5s` when down.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldirectord_parsers::config::{CheckType, ScriptUser, VirtualAddress, ip_text};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Child;

use crate::check::{BoxFuture, BuildError, Checker, Failure, Outcome, bounded};
use crate::proto::io_reason;
use crate::spec::CheckSpec;

/// Time a timed-out check's process group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(1);
/// Bytes of the child's stderr kept for the reason.
pub const STDERR_TAIL: usize = 256;
/// How long, after the child exits, its stderr is still read: a background process it
/// left behind may hold the pipe open, and must not hold the check.
const STDERR_LINGER: Duration = Duration::from_millis(100);

/// The external checker for `spec` (`external` or `external-perl`).
pub fn build(spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    if spec.checkcommand.is_empty() {
        return Err(BuildError::Invalid(format!(
            "checktype={} needs a checkcommand",
            spec.checktype.name()
        )));
    }
    let args = arguments(spec);
    let (program, args): (OsString, Vec<OsString>) = if spec.checktype == CheckType::ExternalPerl {
        let mut all = vec![OsString::from(&spec.checkcommand)];
        all.extend(args.into_iter().map(OsString::from));
        ("perl".into(), all)
    } else {
        (
            OsString::from(&spec.checkcommand),
            args.into_iter().map(OsString::from).collect(),
        )
    };
    Ok(Arc::new(External {
        program,
        args,
        timeout: spec.checktimeout,
        user: spec.scriptuser.clone(),
    }))
}

/// The four arguments stock passes: VIP VPORT RIP RPORT (§3.1).
pub fn arguments(spec: &CheckSpec) -> [String; 4] {
    let (vip, vport) = match spec.virtual_address {
        VirtualAddress::Inet { ip, port } => (ip_text(ip), port.to_string()),
        VirtualAddress::Fwmark { mark, .. } => (mark.to_string(), "0".to_owned()),
    };
    [vip, vport, ip_text(spec.ip), spec.real_port.to_string()]
}

/// One external command with its arguments.
#[derive(Debug, Clone)]
pub struct External {
    program: OsString,
    args: Vec<OsString>,
    timeout: Duration,
    /// `scriptuser=`: who the command runs as (`None`: the daemon's user).
    user: Option<ScriptUser>,
}

impl External {
    /// Run `program args…` bounded by `timeout`.
    pub fn new(program: impl Into<OsString>, args: Vec<OsString>, timeout: Duration) -> External {
        External {
            program: program.into(),
            args,
            timeout,
            user: None,
        }
    }

    async fn run(&self) -> Result<String, Failure> {
        let mut cmd = crate::process::script_command(&self.program, self.user.as_ref());
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, so a timeout can kill everything the script started.
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            Failure::command(format!(
                "cannot run {}: {}",
                self.program.to_string_lossy(),
                io_reason(&e)
            ))
        })?;
        let mut group = Group::new(child);
        let tail = Arc::new(Mutex::new(Vec::new()));
        let reader = group
            .child
            .as_mut()
            .and_then(|c| c.stderr.take())
            .map(|mut stderr| {
                let tail = tail.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stderr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                        t.extend_from_slice(&buf[..n]);
                        let excess = t.len().saturating_sub(STDERR_TAIL);
                        t.drain(..excess);
                    }
                })
            });
        let status = group
            .wait()
            .await
            .map_err(|e| Failure::command(format!("waiting for the check: {}", io_reason(&e))))?;
        if let Some(reader) = reader {
            let abort = reader.abort_handle();
            if tokio::time::timeout(STDERR_LINGER, reader).await.is_err() {
                abort.abort();
            }
        }
        let tail = std::mem::take(&mut *tail.lock().unwrap_or_else(|p| p.into_inner()));
        status_result(status, &tail)
    }
}

impl Checker for External {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(bounded(self.timeout, self.run()))
    }
}

fn status_result(status: ExitStatus, stderr_tail: &[u8]) -> Result<String, Failure> {
    if status.success() {
        return Ok("-".to_owned());
    }
    let what = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({})", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => status.to_string(),
    };
    let text = String::from_utf8_lossy(stderr_tail);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Err(Failure::command(if text.is_empty() {
        what
    } else {
        format!("{what}: {text}")
    }))
}

/// A running check and its process group. Dropped before the child was reaped (the check
/// timed out, or its future was dropped), it kills the group and reaps in the background.
struct Group {
    child: Option<Child>,
    pgid: Option<Pid>,
}

impl Group {
    fn new(child: Child) -> Group {
        // With process_group(0) the child's pid is its group id.
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        Group {
            child: Some(child),
            pgid,
        }
    }

    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let child = self.child.as_mut().expect("child present until reaped");
        let status = child.wait().await?;
        // Reaped: nothing left to clean up from the script itself. Processes it left in
        // its group run on, as they do under stock.
        self.child = None;
        Ok(status)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let (Some(mut child), Some(pgid)) = (self.child.take(), self.pgid) else {
            return;
        };
        let _ = killpg(pgid, Signal::SIGTERM);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
                    // The leader may be gone while others in its group ignored SIGTERM.
                    let _ = killpg(pgid, Signal::SIGKILL);
                    let _ = child.wait().await;
                });
            }
            Err(_) => {
                // No runtime left to wait on: kill at once; tokio reaps orphans later.
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.start_kill();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use ldirectord_parsers::config::{Family, Service};

    use super::*;

    fn spec(va: VirtualAddress, ip: &str, real_port: u16) -> CheckSpec {
        CheckSpec {
            virtual_address: va,
            port: None,
            negotiatetimeout: Duration::from_secs(30),
            ..CheckSpec::new(
                CheckType::External,
                Service::None,
                ip.parse().unwrap(),
                real_port,
            )
        }
    }

    #[test]
    fn arguments_as_stock_passes_them() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let s = spec(
            VirtualAddress::Inet { ip: v4, port: 9000 },
            "127.0.0.2",
            9001,
        );
        assert_eq!(arguments(&s), ["127.0.0.1", "9000", "127.0.0.2", "9001"]);
        let s = spec(
            VirtualAddress::Fwmark {
                mark: 33,
                family: Family::Inet,
            },
            "127.0.0.2",
            0,
        );
        assert_eq!(arguments(&s), ["33", "0", "127.0.0.2", "0"]);
        let v6: IpAddr = "::1".parse().unwrap();
        let s = spec(VirtualAddress::Inet { ip: v6, port: 9000 }, "::1", 9001);
        assert_eq!(arguments(&s), ["[::1]", "9000", "[::1]", "9001"]);
    }

    #[test]
    fn status_reasons() {
        assert_eq!(status_result(ExitStatus::from_raw(0), b""), Ok("-".into()));
        assert_eq!(
            status_result(ExitStatus::from_raw(3 << 8), b""),
            Err(Failure::command("exit status 3"))
        );
        assert_eq!(
            status_result(ExitStatus::from_raw(1 << 8), b"backend\nnot ready\n"),
            Err(Failure::command("exit status 1: backend not ready"))
        );
        assert_eq!(
            status_result(ExitStatus::from_raw(9), b""),
            Err(Failure::command("killed by signal 9 (SIGKILL)"))
        );
    }

    #[test]
    fn perl_variant_runs_the_file_through_perl() {
        let mut s = spec(
            VirtualAddress::Inet {
                ip: "10.0.0.100".parse().unwrap(),
                port: 80,
            },
            "10.0.0.1",
            80,
        );
        s.checktype = CheckType::ExternalPerl;
        s.checkcommand = "/etc/ha.d/check.pl".into();
        let c = build(&s).unwrap();
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("\"perl\"") && dbg.contains("/etc/ha.d/check.pl"),
            "{dbg}"
        );
    }
}
