//! The daemon's life: start-up (in the foreground, or detached with a pid-file lock), the
//! main loop around the pure [`crate::director`] core, reloads, and the orderly stop.
//!
//! - [`run`]: the main loop (signals, checks, ticks, reload, stop).
//! - [`logging`]: stock's log destinations and line formats, through `tracing`.
//! - [`watch`]: autoreload's "did the file's content change" (mtime, then MD5).
//! - [`dynamic`]: real servers from `realsource=` directives, refreshed off the check path.
//! - [`effects`]: fallback/callback commands, monitorfile lines, alert dispatch.
//! - [`mail`]: the SMTP client and the sendmail path for alerts.
//! - [`observe`]: what the daemon has seen (last check runs, reloads), for `status`.
//! - [`control`]: the control socket (`status --json`, `drain`, `ready`); [`drain`]: where
//!   drains are kept.
//! - [`privilege`]: the capabilities a daemon started as root keeps.
//!
//! How `ldirectord CONFIG start` detaches without `unsafe` (the crate forbids it, and
//! `fork(2)` is unsafe in nix): the invoking process re-executes itself with
//! [`DAEMON_CHILD_ENV`] set and its stdout on a pipe (first fork+exec); that child calls
//! `daemon(3)` (second fork, `setsid`, `chdir /`), takes the pid-file lock, writes its pid,
//! builds the tokio runtime (after the forks), programs the initial table, and only then
//! writes `ready` to the pipe and moves its stdio to `/dev/null`. The invoking process
//! exits 0 once it reads `ready` (stock exits before any IPVS work): when `start` returns,
//! the virtual services are in the kernel.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ldirectord_parsers::config::Parsed;

pub mod accept_local;
pub mod control;
pub mod drain;
pub mod dynamic;
pub mod effects;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod observe;
pub mod privilege;
pub mod run;
pub mod watch;
pub mod worker;

use crate::instance::pidfile::{PidLock, PidLockError};
use logging::LogHandle;

/// Set in the environment of the re-executed child that becomes the daemon, to the
/// options it carries over (a JSON array), so its command line stays `PROGRAM CONFIG
/// start` as typed: stock's OCF agent finds a daemon with `pgrep -f "PROGRAM CONFIG start"`.
/// Only that child sees it: every program ours start comes from
/// [`ldirectord_checks::process`], which leaves it out.
pub use ldirectord_checks::process::DAEMON_CHILD_ENV;
use ldirectord_checks::process::{blocking_command, daemon_command};

/// In the daemon child: the options the invoking process carried over, `None` elsewhere.
pub fn carried_options() -> Option<Vec<String>> {
    let text = std::env::var(DAEMON_CHILD_ENV).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_default())
}

/// The version stock logs and prints; log watchers match on it, so it is kept.
pub const STOCK_VERSION: &str = "Linux Director v1.186-ha";

/// How long the daemon waits for an `execute=` sub-instance's action.
pub const SUB_INSTANCE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long `start` waits for the daemon to program the initial table.
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Which engine programs IPVS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    /// Generic netlink, the default.
    Netlink,
    /// The `ipvsadm` program at this path.
    Ipvsadm(PathBuf),
    /// The embedded TCP forwarder (no IPVS needed; see `engine::userspace`).
    Userspace,
    /// The netlink engine over an in-memory kernel, for tests that run the daemon in
    /// process and inject kernel faults (issue 14); no command line reaches it.
    InMemory(crate::engine::netlink::FakeKernel),
}

impl EngineChoice {
    pub fn name(&self) -> &'static str {
        match self {
            EngineChoice::Netlink => "netlink",
            EngineChoice::Ipvsadm(_) => "ipvsadm",
            EngineChoice::Userspace => "userspace",
            EngineChoice::InMemory(_) => "netlink",
        }
    }
}

/// How to run `execute=` sub-instances: this program, with the options that must carry
/// over (`--run-dir`, `--engine`, `--ipvsadm`), then `NAME ACTION`.
#[derive(Debug, Clone)]
pub struct SubInstances {
    pub exe: PathBuf,
    pub flags: Vec<String>,
}

impl SubInstances {
    /// Run `NAME ACTION` synchronously with this process's stdio (for `status`).
    pub fn run_blocking(&self, name: &str, action: &str) -> Option<i32> {
        blocking_command(&self.exe)
            .args(&self.flags)
            .arg(name)
            .arg(action)
            .status()
            .ok()
            .and_then(|s| s.code())
    }
}

/// What the daemon needs besides its configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file, absolute (the daemon runs in `/`).
    pub config_path: PathBuf,
    /// The instance name (`CFGNAME`).
    pub instance: String,
    /// `-d`: foreground, log to stderr.
    pub debug: bool,
    pub engine: EngineChoice,
    pub subs: SubInstances,
    /// Where the pid file, the control socket and the drain state file live, absolute.
    pub run_dir: PathBuf,
}

/// How the daemon tells whoever started it that it is up (or why it is not).
#[derive(Debug)]
pub enum Ready {
    /// In the foreground: nobody waits.
    Foreground,
    /// Detached: stdout is a pipe to the invoking `ldirectord start`.
    Pipe,
}

impl Ready {
    /// The initial table is programmed: say so, then detach stdio.
    pub fn ok(&mut self) {
        if let Ready::Pipe = self {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "ready");
            let _ = out.flush();
            drop(out);
            detach_stdio();
            *self = Ready::Foreground;
        }
    }

    /// Start-up failed: tell the invoker why.
    pub fn fail(&mut self, why: &str) {
        if let Ready::Pipe = self {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "error {why}");
            let _ = out.flush();
            *self = Ready::Foreground;
        }
    }
}

/// Point stdin, stdout and stderr at `/dev/null`.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// Close every descriptor above stderr that this process inherited from whoever started
/// it (under heartbeat: its sockets and log files), so the daemon neither keeps them open
/// nor passes them on to the programs it runs. What this program opened itself is left:
/// std and tokio open everything with `O_CLOEXEC`, so a descriptor without the flag came
/// through `exec`. The flag is read from `/proc/self/fdinfo` (`fcntl` on a bare number
/// needs `unsafe`, which this crate forbids).
fn close_inherited_descriptors() {
    /// `O_CLOEXEC` as `/proc/PID/fdinfo` shows it, in the octal `flags:` field.
    const O_CLOEXEC: u32 = 0o2_000_000;
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        let flags = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
            .ok()
            .and_then(|info| {
                let value = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
                u32::from_str_radix(value.trim(), 8).ok()
            });
        if flags.is_some_and(|f| f & O_CLOEXEC == 0) {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Run the daemon's main loop as a task on the runtime's workers rather than on this
/// thread: every check result wakes the main loop, and waking a task on a worker is much
/// cheaper than waking a parked thread (thousands of results a second on a big cluster).
fn on_a_worker(
    rt: &tokio::runtime::Runtime,
    main: impl std::future::Future<Output = i32> + Send + 'static,
) -> i32 {
    // A panic in the main loop: the hook has printed it; exit as a panicking thread would.
    rt.block_on(rt.spawn(main)).unwrap_or(101)
}

/// Drop to the capabilities the daemon needs ([`privilege`]) and say so once. Called in
/// the start-up thread just before [`runtime`] starts the others, which inherit the set.
fn drop_capabilities(parsed: &Parsed) {
    let outcome = privilege::drop_to_needed(parsed.config.globals.keepcapabilities);
    if let Some(line) = outcome.log_line() {
        tracing::info!("{line}");
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Run in the foreground (`-d` or `supervised=yes`): no pid file, like stock.
pub fn foreground(opts: Options, parsed: Parsed, log: LogHandle) -> i32 {
    tracing::info!("Starting {STOCK_VERSION} with pid: {}", std::process::id());
    tracing::info!(
        "ldirectord-rs {} using the {} engine",
        env!("CARGO_PKG_VERSION"),
        opts.engine.name()
    );
    drop_capabilities(&parsed);
    match runtime() {
        Ok(rt) => on_a_worker(&rt, run::run(opts, parsed, log, None, Ready::Foreground)),
        Err(e) => {
            tracing::info!("cannot start the runtime: {e}");
            1
        }
    }
}

/// The re-executed child: detach (`daemon(3)`), lock the pid file, run.
pub fn daemon_child(opts: Options, parsed: Parsed, log: LogHandle, pid_file: &Path) -> i32 {
    let mut ready = Ready::Pipe;
    if let Err(e) = nix::unistd::daemon(false, true) {
        ready.fail(&format!("cannot detach: {e}"));
        return 1;
    }
    close_inherited_descriptors();
    let mut lock = match PidLock::acquire(pid_file) {
        Ok(lock) => lock,
        Err(PidLockError::Held(_)) => {
            // Another start won the race: it is the daemon; this start is a no-op.
            let _ = writeln!(std::io::stdout(), "running");
            return 0;
        }
        Err(e) => {
            tracing::info!("{e}");
            ready.fail(&e.to_string());
            return 1;
        }
    };
    if let Err(e) = lock.write_pid(std::process::id()) {
        let msg = format!("Can not open {}: {e}", pid_file.display());
        ready.fail(&msg);
        return 1;
    }
    tracing::info!(
        "ldirectord-rs {} running with pid: {} using the {} engine",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        opts.engine.name()
    );
    drop_capabilities(&parsed);
    match runtime() {
        Ok(rt) => {
            let code = on_a_worker(&rt, run::run(opts, parsed, log, Some(lock), ready));
            // Checks may still be in flight in blocking threads; do not wait for them.
            rt.shutdown_timeout(Duration::from_secs(1));
            code
        }
        Err(e) => {
            let msg = format!("cannot start the runtime: {e}");
            tracing::info!("{msg}");
            ready.fail(&msg);
            lock.remove();
            1
        }
    }
}

/// What the invoking `start` learnt from the daemon it spawned.
#[derive(Debug, PartialEq, Eq)]
pub enum Spawned {
    /// Up, with its initial table programmed.
    Ready,
    /// Another daemon of this instance holds the pid file.
    AlreadyRunning,
    /// Still starting after [`READY_TIMEOUT`]; it goes on in the background.
    StillStarting,
    Failed(String),
}

/// Re-execute this program as the daemon and wait until it is ready. Its command line is
/// this one's program name (as invoked) and `args` (`[CONFIG] start`); `options` travel in
/// [`DAEMON_CHILD_ENV`].
pub fn spawn_daemon(options: &[String], args: &[String]) -> Spawned {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Spawned::Failed(format!("cannot find my own program: {e}")),
    };
    let arg0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| exe.clone().into_os_string());
    let mut cmd = daemon_command(&exe);
    notify::inherit_watchdog(&mut cmd);
    let child = cmd
        .arg0(arg0)
        .args(args)
        .env(
            DAEMON_CHILD_ENV,
            serde_json::to_string(options).unwrap_or_default(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Spawned::Failed(format!("cannot start the daemon: {e}")),
    };
    let Some(stdout) = child.stdout.take() else {
        return Spawned::Failed("no pipe to the daemon".into());
    };
    // Read on a thread so the wait is bounded.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let verdict = match rx.recv_timeout(READY_TIMEOUT) {
        Ok(line) => match line.trim_end() {
            "ready" => Spawned::Ready,
            "running" => Spawned::AlreadyRunning,
            "" => Spawned::Failed("the daemon exited during start-up".into()),
            other => Spawned::Failed(other.strip_prefix("error ").unwrap_or(other).to_owned()),
        },
        Err(_) => Spawned::StillStarting,
    };
    // The first child exits as soon as daemon(3) forked; reap it.
    let _ = child.wait();
    verdict
}

#[cfg(test)]
mod tests {
    /// Every program the workspace's libraries and binary start is built by
    /// `ldirectord_checks::process`, so none inherits [`super::DAEMON_CHILD_ENV`].
    #[test]
    fn programs_are_started_only_through_the_process_module() {
        // Split so that this line is not one.
        let needle = concat!("Command", "::new(");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut offenders = Vec::new();
        let mut dirs = vec![
            root.join("src"),
            root.join("checks/src"),
            root.join("parsers/src"),
        ];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("checks/src/process.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        if line.contains(needle) {
                            offenders.push(format!(
                                "{}:{}: {}",
                                path.display(),
                                n + 1,
                                line.trim()
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "start programs with ldirectord_checks::process::command or blocking_command \
             (they drop {}):\n{}",
            super::DAEMON_CHILD_ENV,
            offenders.join("\n")
        );
    }
}
