//! What the selection asks the cluster and the host ([`ClusterQuery`]), and the real
//! thing ([`SystemQuery`]): Pacemaker's command-line tools, `sh` and the resolver, each
//! command bounded by [`COMMAND_TIMEOUT`].

use std::net::{IpAddr, ToSocketAddrs};
use std::process::{Command, Stdio};

use ldirectord_checks::process::blocking_command;
use std::time::{Duration, Instant};

use ldirectord_parsers::config::Family;

use super::SourceError;

/// How long one command of a source (`crm_resource`, `crm_node`, `crm_attribute`, a list
/// or filter command) may run before it is killed and the source counts as failed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// What the selection needs from the cluster and the host.
pub trait ClusterQuery {
    /// Nodes where `resource` runs.
    fn locate(&self, resource: &str) -> Result<Vec<String>, SourceError>;
    /// Members of the partition.
    fn partition(&self) -> Result<Vec<String>, SourceError>;
    /// A node's transient attribute; `Ok(None)` when the node has none.
    fn attribute(&self, node: &str, name: &str) -> Result<Option<String>, SourceError>;
    /// The words a command prints; an error if it fails.
    fn list_command(&self, command: &str) -> Result<Vec<String>, SourceError>;
    /// Whether `command candidate` prints exactly `t`.
    fn check_command(&self, command: &str, candidate: &str) -> bool;
    /// Resolve a host name in `family`.
    fn resolve(&self, host: &str, family: Family) -> Result<IpAddr, SourceError>;
}

/// The real thing: Pacemaker's command-line tools, `sh`, and the resolver. Every command
/// runs in its own process group, killed with it after `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct SystemQuery {
    pub timeout: Duration,
}

impl Default for SystemQuery {
    fn default() -> Self {
        SystemQuery {
            timeout: COMMAND_TIMEOUT,
        }
    }
}

fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Run `cmd` to completion, at most `timeout`: (exit code, stdout, stderr).
fn run(cmd: &mut Command, timeout: Duration) -> Result<(i32, String, String), SourceError> {
    use std::os::unix::process::CommandExt as _;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| SourceError::Spawn {
            program: program.clone(),
            source,
        })?;
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => break None,
        }
    };
    // What the command left behind (or the command itself, on a timeout) goes too, so
    // that nothing holds the pipes open.
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(SourceError::Timeout { program, timeout });
    };
    Ok((
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).trim().to_owned(),
    ))
}

/// The nodes in `crm_resource --locate -Q` output: one per line; a promoted instance may
/// carry a role word after it.
pub fn locate_output(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The members in `crm_node -p` output: names separated by blanks.
pub fn partition_output(out: &str) -> Vec<String> {
    out.split_whitespace().map(str::to_owned).collect()
}

/// The value in `crm_attribute -G -q` output (exit code 0).
pub fn attribute_output(out: &str) -> String {
    out.trim().to_owned()
}

impl ClusterQuery for SystemQuery {
    fn locate(&self, resource: &str) -> Result<Vec<String>, SourceError> {
        let (rc, out, err) = run(
            blocking_command("crm_resource").args(["--resource", resource, "--locate", "-Q"]),
            self.timeout,
        )?;
        if rc != 0 {
            return Err(SourceError::ToolFailed {
                tool: format!("crm_resource --locate -r {resource}"),
                code: rc,
                stderr: err,
            });
        }
        Ok(locate_output(&out))
    }

    fn partition(&self) -> Result<Vec<String>, SourceError> {
        let (rc, out, err) = run(blocking_command("crm_node").arg("-p"), self.timeout)?;
        if rc != 0 {
            return Err(SourceError::ToolFailed {
                tool: "crm_node -p".into(),
                code: rc,
                stderr: err,
            });
        }
        Ok(partition_output(&out))
    }

    fn attribute(&self, node: &str, name: &str) -> Result<Option<String>, SourceError> {
        let (rc, out, err) = run(
            blocking_command("crm_attribute")
                .args(["-N", node, "-l", "reboot", "-n", name, "-G", "-q"]),
            self.timeout,
        )?;
        match rc {
            0 => Ok(Some(attribute_output(&out))),
            // CRM_EX_NOSUCH: the node has no such attribute.
            105 => Ok(None),
            _ => Err(SourceError::ToolFailed {
                tool: format!("crm_attribute -N {node} -n {name}"),
                code: rc,
                stderr: err,
            }),
        }
    }

    fn list_command(&self, command: &str) -> Result<Vec<String>, SourceError> {
        let (rc, out, err) = run(
            blocking_command("/bin/sh").args(["-c", command]),
            self.timeout,
        )?;
        if rc != 0 {
            return Err(SourceError::CommandFailed {
                command: command.to_owned(),
                code: rc,
                stderr: err,
            });
        }
        Ok(out.split_whitespace().map(str::to_owned).collect())
    }

    fn check_command(&self, command: &str, candidate: &str) -> bool {
        // The candidate is one more argument, as lvsdr appends it.
        let script = format!("{command} \"$1\"");
        matches!(
            run(blocking_command("/bin/sh").args(["-c", &script, "sh", candidate]), self.timeout),
            Ok((_, out, _)) if out.trim() == "t"
        )
    }

    fn resolve(&self, host: &str, family: Family) -> Result<IpAddr, SourceError> {
        let addrs = (host, 0)
            .to_socket_addrs()
            .map_err(|source| SourceError::Resolve {
                host: host.to_owned(),
                source,
            })?;
        addrs
            .map(|a| a.ip())
            .find(|a| a.is_ipv4() == (family == Family::Inet))
            .ok_or_else(|| SourceError::NoAddressOfFamily(host.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_commands_are_bounded_and_their_leftovers_killed() {
        let q = SystemQuery {
            timeout: Duration::from_millis(300),
        };
        let e = q
            .list_command("sleep 30 & echo node1; wait")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not finish"), "{e}");
        assert_eq!(
            q.list_command("echo node1 node2; (sleep 30 &)").unwrap(),
            ["node1", "node2"]
        );
        assert!(q.check_command("echo", "t"));
        assert!(!q.check_command("echo x", "t"));
        assert!(
            q.list_command("exit 3")
                .unwrap_err()
                .to_string()
                .contains("exited 3")
        );
    }
}
