//! The `ipvsadm` engine: programs IPVS by running the `ipvsadm` program with exactly the
//! argument strings stock ldirectord uses (`shared/reference/ldirectord.md` §4.6), and
//! reads the table back the way stock does, from `ipvsadm -L -n` and
//! `ipvsadm -L -n --thresholds`.
//!
//! It exists for operators who want the switch from stock to change nothing in how the
//! kernel is driven (audit trails, wrappers around ipvsadm), and for compatibility tests
//! that diff our command stream with stock's. [`stock_command`] and [`argv`] are pure, so
//! those tests need no process.
//!
//! Stock builds one string and hands it to the shell (`system("$ipvsadm $args")`), with
//! some trailing spaces (`-A -t V -s wrr `). We exec without a shell, so the argv is that
//! string split on whitespace: the program sees the same arguments, and nothing in an
//! address or scheduler name can be interpreted by a shell.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ldirectord_parsers::ipvsadm as listing;

use super::{
    BoxFuture, DestSpec, Engine, EngineError, Op, ServiceKey, ServiceSpec, SyncDaemon, SyncRole,
    Table,
};

/// Arguments of the plain listing stock reads first.
pub const LIST_ARGS: [&str; 2] = ["-L", "-n"];
/// Arguments of the thresholds listing stock reads second.
pub const LIST_THRESHOLDS_ARGS: [&str; 3] = ["-L", "-n", "--thresholds"];
/// Arguments of the sync daemon listing (ipvsadm has no `--list-daemon`: it is `-L
/// --daemon`).
pub const LIST_DAEMON_ARGS: [&str; 2] = ["-L", "--daemon"];

/// How long one run of the program may take before it is killed. ipvsadm answers in
/// milliseconds; one that hangs (a wedged kernel lock, a wrapper waiting on something)
/// must not hold up the table forever. Stock waits without a bound. Generous, because a
/// wrapper script on a loaded host can take seconds to start (the tests' Python stand-in
/// took more than 4 s at a load average of 23 on 2 cores).
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(15);

/// Drives IPVS through an `ipvsadm` program.
#[derive(Debug, Clone)]
pub struct IpvsadmEngine {
    program: PathBuf,
    timeout: Duration,
}

impl IpvsadmEngine {
    /// `program` is the ipvsadm to run. Stock uses `/sbin/ipvsadm` if it is executable,
    /// else `/usr/sbin/ipvsadm`; [`IpvsadmEngine::default_program`] does the same lookup.
    pub fn new(program: PathBuf) -> Self {
        IpvsadmEngine {
            program,
            timeout: PROGRAM_TIMEOUT,
        }
    }

    /// Kill a run after `timeout` instead of [`PROGRAM_TIMEOUT`].
    pub fn with_timeout(self, timeout: Duration) -> Self {
        IpvsadmEngine { timeout, ..self }
    }

    /// Stock's lookup: `/sbin/ipvsadm` if it exists, else `/usr/sbin/ipvsadm`.
    pub fn default_program() -> PathBuf {
        let sbin = Path::new("/sbin/ipvsadm");
        if sbin.exists() {
            sbin.to_path_buf()
        } else {
            PathBuf::from("/usr/sbin/ipvsadm")
        }
    }

    /// The program this engine runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Runs the program; a non-zero exit becomes an error naming the whole command line,
    /// like stock's `system(<command>) failed` log line.
    async fn run(&self, args: &[String]) -> Result<Output, EngineError> {
        let command_line = format!("{} {}", self.program.display(), args.join(" "));
        let run = ldirectord_checks::process::command(&self.program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        // On the timeout the future is dropped, and with it (kill_on_drop) the program.
        let output = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| {
                EngineError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "{command_line}: no answer within {}s, killed",
                        self.timeout.as_secs_f64()
                    ),
                ))
            })?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    EngineError::Unavailable(format!("cannot run {}: {e}", self.program.display()))
                }
                _ => EngineError::Io(e),
            })?;
        if output.status.success() {
            return Ok(output);
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        // ipvsadm says this when the kernel has no IPVS or the caller lacks CAP_NET_ADMIN:
        // nothing the next operation could fix, so the daemon reports the engine as down.
        if stderr.contains("Can't initialize ipvs") || stderr.contains("Permission denied") {
            return Err(EngineError::Unavailable(format!(
                "{command_line}: {stderr}"
            )));
        }
        let message = if stderr.is_empty() {
            format!("exited with {}", output.status)
        } else {
            stderr
        };
        Err(EngineError::Command {
            command: command_line,
            message,
        })
    }

    async fn listing(&self, args: &[&str]) -> Result<listing::Listing, EngineError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let output = self.run(&args).await?;
        let parsed = listing::parse(&String::from_utf8_lossy(&output.stdout));
        for warning in &parsed.warnings {
            tracing::warn!(program = %self.program.display(), args = %args.join(" "), "ipvsadm listing: {warning}");
        }
        Ok(parsed)
    }
}

impl Engine for IpvsadmEngine {
    fn name(&self) -> &'static str {
        "ipvsadm"
    }

    /// A dump runs the program twice.
    fn call_timeout(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(1)
    }

    fn dump(&mut self) -> BoxFuture<'_, Result<Table, EngineError>> {
        Box::pin(async move {
            let plain = self.listing(&LIST_ARGS).await?;
            let thresholds = self.listing(&LIST_THRESHOLDS_ARGS).await?;
            Ok(listing::merge(&plain, &thresholds))
        })
    }

    fn apply<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.run(&argv(op)).await?;
            Ok(())
        })
    }

    fn sync_daemons(&mut self) -> BoxFuture<'_, Result<Vec<SyncDaemon>, EngineError>> {
        Box::pin(async move {
            let args: Vec<String> = LIST_DAEMON_ARGS.iter().map(|a| a.to_string()).collect();
            let output = self.run(&args).await?;
            Ok(listing::parse_daemons(&String::from_utf8_lossy(
                &output.stdout,
            )))
        })
    }

    fn start_sync_daemon<'a>(
        &'a mut self,
        daemon: &'a SyncDaemon,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.run(&start_daemon_argv(daemon)).await?;
            Ok(())
        })
    }

    fn stop_sync_daemon(&mut self, role: SyncRole) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async move {
            self.run(&["--stop-daemon".to_owned(), role.as_str().to_owned()])
                .await?;
            Ok(())
        })
    }
}

/// `--start-daemon ROLE --mcast-interface IFACE --syncid N`, then the options that are
/// set (ipvsadm's own default id is 255, so the id is always given).
pub fn start_daemon_argv(daemon: &SyncDaemon) -> Vec<String> {
    let mut argv: Vec<String> = [
        "--start-daemon",
        daemon.role.as_str(),
        "--mcast-interface",
        &daemon.interface,
        "--syncid",
        &daemon.syncid.to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    let names = [
        "--sync-maxlen",
        "--mcast-group",
        "--mcast-port",
        "--mcast-ttl",
    ];
    for (option, value) in names.iter().zip(daemon.option_values()) {
        if let Some(value) = value {
            argv.extend([option.to_string(), value]);
        }
    }
    argv
}

/// The argument string stock ldirectord passes to the shell after the program path, byte
/// for byte (including its trailing spaces), e.g. `-A -t 1.2.3.4:80 -s wrr `.
pub fn stock_command(op: &Op) -> String {
    match op {
        Op::AddService(spec) => service_command("-A", spec),
        Op::EditService(spec) => service_command("-E", spec),
        Op::DelService(key) => format!("-D {key}"),
        Op::AddDest(key, dest) => dest_command("-a", key, dest),
        Op::EditDest(key, dest) => dest_command("-e", key, dest),
        // Stock's quiesce and re-add omit -x/-y, so ipvsadm resets both thresholds to 0.
        Op::QuiesceDest(key, dest) => format!(
            "-e {key} -r {} {} -w 0",
            dest.addr(),
            dest.forward.ipvsadm_flag()
        ),
        Op::ReaddQuiescedDest(key, dest) => format!(
            "-a {key} -r {} {} -w 0",
            dest.addr(),
            dest.forward.ipvsadm_flag()
        ),
        Op::DelDest { service, ip, port } => {
            format!("-d {service} -r {}", SocketAddr::new(*ip, *port))
        }
    }
}

/// The argv this engine executes for `op`: [`stock_command`] split on whitespace.
pub fn argv(op: &Op) -> Vec<String> {
    stock_command(op)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `-A <P> <V> [-o ]-s SCHED [-p N [-M MASK] ][-b FLAGS ]`, trailing space included.
fn service_command(verb: &str, spec: &ServiceSpec) -> String {
    let mut out = format!("{verb} {} ", spec.key);
    if spec.ops {
        out.push_str("-o ");
    }
    out.push_str(&format!("-s {} ", spec.scheduler));
    if let Some(timeout) = spec.persistent {
        out.push_str(&format!("-p {timeout} "));
        if let Some(mask) = spec.netmask {
            out.push_str(&format!("-M {mask} "));
        }
    }
    if !spec.sched_flags.is_empty() {
        out.push_str(&format!("-b {} ", spec.sched_flags));
    }
    out
}

/// `-a <P> <V> -x U -y L -r RIP:PORT <-g|-m|-i> -w W`.
fn dest_command(verb: &str, key: &ServiceKey, dest: &DestSpec) -> String {
    format!(
        "{verb} {key} -x {} -y {} -r {} {} -w {}",
        dest.upper,
        dest.lower,
        dest.addr(),
        dest.forward.ipvsadm_flag(),
        dest.weight
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Forward, IpProto, Netmask};
    use std::net::Ipv4Addr;

    fn key() -> ServiceKey {
        ServiceKey::Inet {
            proto: IpProto::Tcp,
            ip: "127.0.0.1".parse().unwrap(),
            port: 9000,
        }
    }

    #[test]
    fn stock_strings_keep_stocks_trailing_space() {
        let spec = ServiceSpec {
            persistent: Some(300),
            netmask: Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))),
            ..ServiceSpec::new(key(), "wlc")
        };
        assert_eq!(
            stock_command(&Op::AddService(spec.clone())),
            "-A -t 127.0.0.1:9000 -s wlc -p 300 -M 255.255.255.0 "
        );
        assert_eq!(
            argv(&Op::EditService(spec)).join("|"),
            "-E|-t|127.0.0.1:9000|-s|wlc|-p|300|-M|255.255.255.0"
        );
    }

    #[test]
    fn listed_local_forwarding_is_gate_and_local() {
        let text =
            "TCP  10.0.0.1:80 wrr\n  -> 127.0.0.1:80                 Local   1      0          0\n";
        let table = listing::merge(&listing::parse(text), &listing::parse(""));
        let dest = table.services[0].dests[0];
        assert_eq!((dest.spec.forward, dest.local), (Forward::Gate, true));
    }
}
