//! The drop-in command line: `ldirectord [-d] [CONFIG] start|stop|...|status` with stock
//! ldirectord's outputs and exit codes (reference §1; the config lookup, instance names
//! and pid-file rules are [`crate::instance`]'s), plus what operators get on top: `--test` (validate a file before a
//! reload) and `--probe` (run every check once and say why a real is down).
//!
//! Output goes through the writers given to [`run`], so tests see exactly what an operator
//! (or heartbeat, which reads stdout only) would see.

use std::io::Write;
use std::path::{Path, PathBuf};

use ldirectord_parsers::config::{self, ConfigError, Diagnostic, EngineName, Origin, Parsed};

use crate::daemon::logging::{self, Destination};
use crate::daemon::{self, EngineChoice, Options, Spawned, SubInstances};
use crate::engine::ipvsadm::IpvsadmEngine;
use crate::instance::{self, PidState, STOP_TIMEOUT, instance_name, pid_file, pid_state};

/// The stock actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    TryRestart,
    Reload,
    ForceReload,
    Status,
}

impl Action {
    fn from_word(w: &str) -> Option<Action> {
        Some(match w {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "restart" => Action::Restart,
            "try-restart" => Action::TryRestart,
            "reload" => Action::Reload,
            "force-reload" => Action::ForceReload,
            "status" => Action::Status,
            _ => return None,
        })
    }
}

/// What the invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Action(Action),
    /// `--test`: parse and validate, print diagnostics.
    Test,
    /// `--probe`: one round of every check, as a table or JSON.
    Probe {
        json: bool,
    },
    /// A request to the running daemon over its control socket.
    Control(ControlAction),
    Help,
    Version,
}

/// What `status --json|--verbose`, `drain` and `ready` ask the running daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAction {
    /// `status --json` (`json`) or `status --verbose`: the daemon's own view.
    Status { json: bool },
    /// `drain RIP[:PORT] [VIRTUAL]`.
    Drain {
        real: String,
        r#virtual: Option<String>,
    },
    /// `ready RIP[:PORT] [VIRTUAL]`.
    Ready {
        real: String,
        r#virtual: Option<String>,
    },
}

/// How configuration errors are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// file:line:column, the line with a caret, what would be valid.
    Human,
    /// Stock's one line: `Error [PID] reading file PATH at line N: MESSAGE`.
    Stock,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub debug: bool,
    pub mode: Mode,
    /// CONFIG as typed, `None` when defaulted.
    pub config: Option<String>,
    pub error_format: ErrorFormat,
    /// Where pid files live (stock: `/var/run`).
    pub run_dir: PathBuf,
    /// `--engine` as given (`--ipvsadm PATH` alone implies the ipvsadm engine); `None`:
    /// the configuration's `engine=` (default netlink) decides.
    pub engine: Option<EngineChoice>,
}

/// The usage text (stock prints it on stdout and exits 255 on a bad command line).
pub const USAGE: &str = "\
Usage: ldirectord [-d|--debug] [--] [CONFIG] start|stop|restart|try-restart|reload|force-reload|status
       ldirectord [CONFIG] status --json|--verbose  the running daemon's view (JSON or a table)
       ldirectord [CONFIG] drain|ready RIP[:PORT] [VIRTUAL]
                                            hold a real at weight 0 / lift that (kept across
                                            checks, reloads and restarts)
       ldirectord -t|--test [CONFIG]        check a configuration file and exit (0 valid, 2 not)
       ldirectord --probe [--json] [CONFIG] run every configured check once and print the results
       ldirectord [--engine E] --ocf ACTION act as the OCF resource agent (parameters from OCF_RESKEY_*)
       ldirectord realserver start|stop|status|monitor --vip ADDR [--mode dr|tun]
                                            put a VIP on a real server for LVS-DR/TUN
       ldirectord sync-backup start|stop|status IFACE [SYNCID] [--group ADDR] [--port N]
                                            the IPVS backup sync daemon of a standby director
       ldirectord -h|-?|--help
       ldirectord -v|--version

CONFIG is looked up as /etc/ha.d/CONFIG, then /etc/ha.d/conf/CONFIG, then as given;
it defaults to ldirectord.cf.

Options:
  -d, --debug             stay in the foreground, log to stderr, write no pid file
  -t, --test              validate CONFIG: diagnostics on stderr, exit 0 if valid, 2 if not
      --probe             run one round of every check (no IPVS changes), exit 0 if it ran
      --json              with --probe: print a JSON array instead of a table; with
                          status: the daemon's view as JSON (compat/status-schema.md)
      --verbose           with status: the daemon's view as a table
      --error-format F    human (default: file:line:column, the line, a hint) or stock
                          (ldirectord's `Error [PID] reading file PATH at line N: MESSAGE`)
      --run-dir DIR       directory of pid files (default /var/run)
      --engine E          how IPVS is programmed: netlink (generic netlink), ipvsadm
                          (runs ipvsadm with stock's arguments) or userspace; wins over
                          the configuration's engine= (default netlink)
      --ipvsadm PATH      the ipvsadm program for --engine ipvsadm (implies it; default
                          /sbin/ipvsadm if it exists, else /usr/sbin/ipvsadm)
  -h, -?, --help          this text
  -v, --version           version
";

/// Why the command line could not be understood (stock: usage on stdout, exit 255).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// Parse the arguments after the program name, stock style: options first (bundling,
/// no abbreviations), `--` ends them; then `[CONFIG] ACTION`.
pub fn parse_args(args: &[String]) -> Result<Invocation, UsageError> {
    let mut debug = false;
    let mut test = false;
    let mut probe = false;
    let mut json = false;
    let mut verbose = false;
    let mut help = false;
    let mut version = false;
    let mut error_format = ErrorFormat::Human;
    let mut run_dir = PathBuf::from(instance::DEFAULT_RUN_DIR);
    let mut engine_name: Option<String> = None;
    let mut ipvsadm: Option<PathBuf> = None;
    let mut i = 0;
    let value = |i: &mut usize, name: &str, inline: Option<&str>| -> Result<String, UsageError> {
        if let Some(v) = inline {
            return Ok(v.to_owned());
        }
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| UsageError(format!("option {name} needs a value")))
    };
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            match name {
                "debug" => debug = true,
                "test" => test = true,
                "probe" => probe = true,
                "json" => json = true,
                "verbose" => verbose = true,
                "help" => help = true,
                "version" => version = true,
                "error-format" => {
                    error_format = match value(&mut i, "--error-format", inline)?.as_str() {
                        "human" => ErrorFormat::Human,
                        "stock" => ErrorFormat::Stock,
                        other => {
                            return Err(UsageError(format!(
                                "unknown error format {other:?}: human or stock"
                            )));
                        }
                    }
                }
                "run-dir" => run_dir = PathBuf::from(value(&mut i, "--run-dir", inline)?),
                "engine" => engine_name = Some(value(&mut i, "--engine", inline)?),
                "ipvsadm" => ipvsadm = Some(PathBuf::from(value(&mut i, "--ipvsadm", inline)?)),
                _ => return Err(UsageError(format!("unknown option --{name}"))),
            }
        } else if a.len() > 1 && a.starts_with('-') {
            for c in a[1..].chars() {
                match c {
                    'd' => debug = true,
                    't' => test = true,
                    'h' | '?' => help = true,
                    'v' => version = true,
                    _ => return Err(UsageError(format!("unknown option -{c}"))),
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    let positional = &args[i..];
    let engine = match (engine_name.as_deref(), ipvsadm) {
        (None, None) => None,
        (None | Some("ipvsadm"), Some(path)) => Some(EngineChoice::Ipvsadm(path)),
        (Some(name), None) => Some(
            EngineName::from_word(name)
                .map(configured_engine)
                .ok_or_else(|| {
                    UsageError(format!(
                        "unknown engine {name:?}: netlink, ipvsadm or userspace"
                    ))
                })?,
        ),
        (Some("netlink" | "userspace"), Some(_)) => {
            return Err(UsageError("--ipvsadm goes with --engine ipvsadm".into()));
        }
        (Some(other), _) => {
            return Err(UsageError(format!(
                "unknown engine {other:?}: netlink, ipvsadm or userspace"
            )));
        }
    };
    if help {
        return Ok(Invocation {
            debug,
            mode: Mode::Help,
            config: None,
            error_format,
            run_dir,
            engine,
        });
    }
    if version {
        return Ok(Invocation {
            debug,
            mode: Mode::Version,
            config: None,
            error_format,
            run_dir,
            engine,
        });
    }
    if test || probe {
        if positional.len() > 1 {
            return Err(UsageError(
                "--test and --probe take at most one CONFIG".into(),
            ));
        }
        let mode = if test {
            Mode::Test
        } else {
            Mode::Probe { json }
        };
        return Ok(Invocation {
            debug,
            mode,
            config: positional.first().cloned(),
            error_format,
            run_dir,
            engine,
        });
    }
    let status_flags = |rest: &[String]| {
        !rest.is_empty() && rest.iter().all(|a| a == "--json" || a == "--verbose")
    };
    // Stock's forms are `ACTION` and `CONFIG ACTION …`; `drain`/`ready` (and `status` with
    // our flags) may come first too, taking arguments of their own.
    let (config, action, rest) = match positional {
        [] => return Err(UsageError("no action given".into())),
        [a, rest @ ..]
            if matches!(a.as_str(), "drain" | "ready") || (a == "status" && status_flags(rest)) =>
        {
            (None, a, rest)
        }
        [action] => (None, action, &[][..]),
        [config, action, rest @ ..] => (Some(config.clone()), action, rest),
    };
    let mode = match action.as_str() {
        "drain" | "ready" => {
            let (real, r#virtual) = match rest {
                [real] => (real.clone(), None),
                [real, virt] => (real.clone(), Some(virt.clone())),
                _ => {
                    return Err(UsageError(format!(
                        "{action} takes RIP[:PORT] and an optional VIRTUAL"
                    )));
                }
            };
            Mode::Control(if action == "drain" {
                ControlAction::Drain { real, r#virtual }
            } else {
                ControlAction::Ready { real, r#virtual }
            })
        }
        "status" => {
            let json = json || rest.iter().any(|a| a == "--json");
            let verbose = verbose || rest.iter().any(|a| a == "--verbose");
            if json || verbose {
                Mode::Control(ControlAction::Status { json })
            } else {
                Mode::Action(Action::Status)
            }
        }
        _ => Mode::Action(
            Action::from_word(action)
                .ok_or_else(|| UsageError(format!("unknown action {action:?}")))?,
        ),
    };
    Ok(Invocation {
        debug,
        mode,
        config,
        error_format,
        run_dir,
        engine,
    })
}

/// Run the command line; returns the exit code.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // The daemon child: the options came in the environment, `[CONFIG] start` on the
    // command line (see daemon::spawn_daemon).
    let args = match daemon::carried_options() {
        Some(mut options) => {
            options.push("--".to_owned());
            options.extend_from_slice(args);
            options
        }
        None => args.to_vec(),
    };
    let inv = match parse_args(&args) {
        Ok(inv) => inv,
        Err(UsageError(why)) => {
            let _ = writeln!(err, "ldirectord: {why}");
            let _ = out.write_all(USAGE.as_bytes());
            return 255;
        }
    };
    match inv.mode {
        Mode::Help => {
            let _ = out.write_all(USAGE.as_bytes());
            0
        }
        Mode::Version => {
            let _ = writeln!(
                out,
                "ldirectord-rs {} (drop-in for Linux Director v1.186-ha)\n\
                 A health-checking director for Linux Virtual Server clusters.\n\
                 This is free software, licensed under the GNU General Public License, version 2 or later.",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Mode::Test => test(&inv, out, err),
        Mode::Probe { json } => probe(&inv, json, out, err),
        Mode::Action(action) => act(&inv, action, out, err),
        Mode::Control(ref c) => control(&inv, c.clone(), out, err),
    }
}

/// Find and parse the configuration, reporting as stock does. `Err(exit code)` on failure.
fn load(inv: &Invocation, err: &mut dyn Write) -> Result<(PathBuf, Parsed), i32> {
    let typed = inv
        .config
        .clone()
        .unwrap_or_else(|| "ldirectord.cf".to_owned());
    let Some(path) = instance::resolve_config(&typed, &instance::ha_dir()) else {
        let _ = writeln!(err, "Config file {typed} not found");
        return Err(1);
    };
    match config::load(&path) {
        Ok(parsed) => {
            print_diagnostics(inv, &path, &parsed.warnings, err);
            Ok((path, parsed))
        }
        Err(ConfigError {
            error, warnings, ..
        }) => {
            print_diagnostics(inv, &path, &warnings, err);
            print_diagnostics(inv, &path, std::slice::from_ref(&error), err);
            Err(2)
        }
    }
}

fn print_diagnostics(inv: &Invocation, path: &Path, diags: &[Diagnostic], err: &mut dyn Write) {
    let source = match inv.error_format {
        ErrorFormat::Human if !diags.is_empty() => {
            std::fs::read_to_string(path).unwrap_or_default()
        }
        _ => String::new(),
    };
    for d in diags {
        match inv.error_format {
            ErrorFormat::Stock => {
                // Ours-only hints are not stock output; keep the compatible stream clean.
                if d.origin == Origin::Stock || d.severity == config::Severity::Error {
                    let _ = writeln!(err, "{}", d.stock_format(std::process::id(), path));
                }
            }
            ErrorFormat::Human => {
                let _ = write!(err, "{}", d.render(path, &source));
            }
        }
    }
}

fn test(inv: &Invocation, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match load(inv, err) {
        Ok((path, parsed)) => {
            let c = &parsed.config;
            let reals: usize = c.virtuals.iter().map(|v| v.reals.len()).sum();
            let _ = writeln!(
                out,
                "{}: OK: {} virtual service{}, {} real server{}{}",
                path.display(),
                c.virtuals.len(),
                if c.virtuals.len() == 1 { "" } else { "s" },
                reals,
                if reals == 1 { "" } else { "s" },
                match parsed.warnings.len() {
                    0 => String::new(),
                    n => format!(", {n} warning{}", if n == 1 { "" } else { "s" }),
                }
            );
            0
        }
        Err(code) => code,
    }
}

fn probe(inv: &Invocation, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (_path, parsed) = match load(inv, err) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "ldirectord: cannot start the runtime: {e}");
            return 1;
        }
    };
    let rows = runtime.block_on(crate::probe::run(&parsed.config));
    let text = if json {
        crate::probe::render_json(&rows)
    } else {
        crate::probe::render_table(&rows)
    };
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    0
}

fn act(inv: &Invocation, action: Action, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // Stock parses the configuration fully for every action, before the pid file: a
    // config error exits 2 and (unlike stock, defect 21) leaves the pid file alone.
    let (path, parsed) = match load(inv, err) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let name = instance_name(inv.config.as_deref());
    let pidfile = pid_file(&inv.run_dir, &name);
    let daemon_child = std::env::var_os(daemon::DAEMON_CHILD_ENV).is_some();
    let log = logging::install(Destination::for_config(&parsed.config, inv.debug, &name));
    if daemon_child {
        let opts = match daemon_options(inv, &path, &name, parsed.config.globals.engine) {
            Ok(o) => o,
            Err(e) => {
                let _ = writeln!(out, "error {e}");
                return 1;
            }
        };
        let pidfile = std::path::absolute(&pidfile).unwrap_or(pidfile);
        return daemon::daemon_child(opts, parsed, log, &pidfile);
    }
    let argv: Vec<String> = std::env::args().collect();
    tracing::info!("Invoking ldirectord invoked as: {} ", argv.join(" "));
    let (code, reason) = act_on(inv, action, &path, &name, &pidfile, parsed, log, out, err);
    if code != 0 || inv.debug {
        tracing::info!("Exiting with exit_status {code}: {reason}");
    }
    code
}

/// The action proper; returns the exit code and the reason stock logs with it.
#[allow(clippy::too_many_arguments)]
fn act_on(
    inv: &Invocation,
    action: Action,
    path: &Path,
    name: &str,
    pidfile: &Path,
    parsed: Parsed,
    log: logging::LogHandle,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> (i32, String) {
    let config_text = path.display().to_string();
    let state = pid_state(pidfile);
    let subs = sub_instances(inv);
    let done = |code: i32, what: &str| (code, format!("Exiting from ldirectord {what}"));
    match (action, state) {
        (Action::Status, PidState::Running(pid)) => {
            // Stock writes "running" on stderr; heartbeat reads stdout only (keep it so).
            let _ = writeln!(
                err,
                "ldirectord for {config_text} is running with pid: {pid}"
            );
            let _ = err.flush();
            let _ = out.flush();
            if let Ok(subs) = &subs {
                for child in &parsed.config.globals.execute {
                    subs.run_blocking(child, "status");
                }
            }
            done(0, "status")
        }
        (Action::Status, PidState::Stale(_)) => {
            let _ = writeln!(
                err,
                "ldirectord stale pid file {} for {config_text}",
                pidfile.display()
            );
            let _ = writeln!(out, "ldirectord is stopped for {config_text}");
            done(1, "status")
        }
        (Action::Status, PidState::Absent) => {
            let _ = writeln!(out, "ldirectord is stopped for {config_text}");
            done(3, "status")
        }
        (Action::Reload | Action::ForceReload, PidState::Running(pid)) => {
            instance::signal(pid, nix::sys::signal::Signal::SIGHUP);
            done(0, "reload")
        }
        (Action::Reload | Action::ForceReload, _) => {
            let _ = writeln!(err, "ldirectord is stopped for {config_text}");
            tracing::info!("ldirectord is stopped for {config_text}");
            done(1, "reload")
        }
        (Action::Stop, PidState::Running(pid)) => (
            stop_and_wait(pid, &config_text, err),
            "Exiting from ldirectord stop".into(),
        ),
        (Action::Stop, _) | (Action::TryRestart, PidState::Absent | PidState::Stale(_)) => {
            done(0, "stop")
        }
        (Action::Start, PidState::Running(_)) => done(0, "start"),
        (Action::Restart | Action::TryRestart, PidState::Running(pid)) => {
            let code = stop_and_wait(pid, &config_text, err);
            if code != 0 {
                return (code, "Exiting from ldirectord restart".into());
            }
            start(inv, path, name, parsed, log, err)
        }
        (Action::Start | Action::Restart, _) => start(inv, path, name, parsed, log, err),
    }
}

/// `status --json|--verbose`, `drain`, `ready`: ask the running daemon over its control
/// socket. Exit codes: 0 done; 1 refused (unknown real, not drained, not stored) or no
/// answer, and a stale pid file for `status`; 2 configuration error; 3 not running; 4 no
/// permission on the socket.
fn control(
    inv: &Invocation,
    action: ControlAction,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    use crate::status::protocol::{self, ClientError, Command};
    let (path, _parsed) = match load(inv, err) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let config_text = path.display().to_string();
    let name = instance_name(inv.config.as_deref());
    let state = pid_state(&pid_file(&inv.run_dir, &name));
    let (command, json) = match action {
        ControlAction::Status { json } => (Command::Status, json),
        ControlAction::Drain { real, r#virtual } => (Command::Drain { real, r#virtual }, false),
        ControlAction::Ready { real, r#virtual } => (Command::Ready { real, r#virtual }, false),
    };
    let is_status = command == Command::Status;
    if !matches!(state, PidState::Running(_)) {
        let code = match (is_status, &state) {
            (true, PidState::Stale(_)) => 1,
            _ => 3,
        };
        if json {
            let doc = serde_json::json!({
                "schema": crate::status::SCHEMA_VERSION,
                "running": false,
                "config_path": config_text,
            });
            let _ = writeln!(out, "{doc}");
        } else if is_status {
            let _ = writeln!(out, "ldirectord is stopped for {config_text}");
        } else {
            let _ = writeln!(err, "ldirectord is stopped for {config_text}");
        }
        return code;
    }
    let socket = instance::control_socket(&inv.run_dir, &name);
    let response = match protocol::request(&socket, command) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "ldirectord: {e}");
            if let (ClientError::NotRunning { .. }, PidState::Running(pid)) = (&e, &state) {
                let _ = writeln!(
                    err,
                    "ldirectord: the daemon (pid {pid}) runs but has no control socket: a \
                     version without one, or the socket could not be made (see its log)"
                );
            }
            return if matches!(e, ClientError::Permission { .. }) {
                4
            } else {
                1
            };
        }
    };
    if !response.ok {
        let why = response.error.unwrap_or_else(|| "request refused".into());
        let _ = writeln!(err, "ldirectord: {why}");
        return 1;
    }
    match response.status {
        Some(snapshot) if json => {
            let text = serde_json::to_string_pretty(&snapshot).unwrap_or_default();
            let _ = writeln!(out, "{text}");
        }
        Some(snapshot) => {
            let _ = out.write_all(crate::status::render_table(&snapshot).as_bytes());
        }
        None => {
            for line in &response.changed {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    0
}

/// SIGTERM, then wait until the daemon finished its cleanup and exited (stock returns at
/// once, defect 14).
fn stop_and_wait(pid: i32, config_text: &str, err: &mut dyn Write) -> i32 {
    if instance::stop(pid, STOP_TIMEOUT) {
        return 0;
    }
    let _ = writeln!(
        err,
        "ldirectord for {config_text} (pid {pid}) did not stop within {} s; it may still be \
         cleaning up",
        STOP_TIMEOUT.as_secs()
    );
    1
}

/// `start` when no daemon runs: in the foreground for `-d`/`supervised=yes`, else detached.
fn start(
    inv: &Invocation,
    path: &Path,
    name: &str,
    parsed: Parsed,
    log: logging::LogHandle,
    err: &mut dyn Write,
) -> (i32, String) {
    let opts = match daemon_options(inv, path, name, parsed.config.globals.engine) {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(err, "ldirectord: {e}");
            return (1, "Initialisation Error".into());
        }
    };
    if inv.debug || parsed.config.globals.supervised {
        let code = daemon::foreground(opts, parsed, log);
        return (code, "Linux Director Daemon terminated".into());
    }
    tracing::info!("Starting {} as daemon", daemon::STOCK_VERSION);
    let (options, args) = child_args(inv);
    match daemon::spawn_daemon(&options, &args) {
        Spawned::Ready | Spawned::AlreadyRunning => (0, "Exiting from ldirectord start".into()),
        Spawned::StillStarting => {
            let _ = writeln!(
                err,
                "ldirectord: the daemon has not finished programming the table after {} s; it \
                 goes on in the background",
                daemon::READY_TIMEOUT.as_secs()
            );
            (0, "Exiting from ldirectord start".into())
        }
        Spawned::Failed(why) => {
            let _ = writeln!(err, "ldirectord: {why}");
            (1, "Initialisation Error".into())
        }
    }
}

/// The options that carry over to a re-executed daemon and to `execute=` sub-instances.
fn carried_flags(inv: &Invocation) -> Vec<String> {
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let mut flags = vec!["--run-dir".to_owned(), absolute(&inv.run_dir)];
    // Only an engine chosen on the command line: a sub-instance's own file says its own.
    match &inv.engine {
        Some(EngineChoice::Ipvsadm(program)) => {
            flags.extend(["--engine".to_owned(), "ipvsadm".to_owned()]);
            flags.extend(["--ipvsadm".to_owned(), absolute(program)]);
        }
        Some(other) => flags.extend(["--engine".to_owned(), other.name().to_owned()]),
        None => {}
    }
    flags
}

/// The daemon child's options and arguments: the same instance (CONFIG as typed, so the
/// instance name is the same), action `start`.
fn child_args(inv: &Invocation) -> (Vec<String>, Vec<String>) {
    let mut options = carried_flags(inv);
    if inv.error_format == ErrorFormat::Stock {
        options.push("--error-format=stock".to_owned());
    }
    let mut args: Vec<String> = inv.config.iter().cloned().collect();
    args.push("start".to_owned());
    (options, args)
}

fn sub_instances(inv: &Invocation) -> std::io::Result<SubInstances> {
    Ok(SubInstances {
        exe: std::env::current_exe()?,
        flags: carried_flags(inv),
    })
}

/// The engine `engine=` names, with the default ipvsadm program.
fn configured_engine(name: EngineName) -> EngineChoice {
    match name {
        EngineName::Netlink => EngineChoice::Netlink,
        EngineName::Ipvsadm => EngineChoice::Ipvsadm(IpvsadmEngine::default_program()),
        EngineName::Userspace => EngineChoice::Userspace,
    }
}

/// The daemon's options; the engine is the command line's, else the configuration's.
fn daemon_options(
    inv: &Invocation,
    path: &Path,
    name: &str,
    configured: EngineName,
) -> std::io::Result<Options> {
    let engine = match inv.engine.clone() {
        Some(EngineChoice::Ipvsadm(p)) => EngineChoice::Ipvsadm(std::path::absolute(p)?),
        Some(other) => other,
        None => configured_engine(configured),
    };
    Ok(Options {
        config_path: std::path::absolute(path)?,
        instance: name.to_owned(),
        debug: inv.debug,
        engine,
        subs: sub_instances(inv)?,
        run_dir: std::path::absolute(&inv.run_dir)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn positional_forms_follow_stock() {
        let i = parse_args(&args("status")).unwrap();
        assert_eq!((i.mode, i.config), (Mode::Action(Action::Status), None));
        let i = parse_args(&args("-d /etc/x.cf start extra")).unwrap();
        assert_eq!(
            (i.debug, i.mode, i.config.as_deref()),
            (true, Mode::Action(Action::Start), Some("/etc/x.cf"))
        );
        let i = parse_args(&args("-- www reload")).unwrap();
        assert_eq!(
            (i.mode, i.config.as_deref()),
            (Mode::Action(Action::Reload), Some("www"))
        );
        assert!(parse_args(&args("")).is_err());
        assert!(parse_args(&args("x.cf bogus")).is_err());
        assert!(parse_args(&args("-x start")).is_err());
        assert_eq!(parse_args(&args("-?")).unwrap().mode, Mode::Help);
        assert_eq!(parse_args(&args("-dv")).unwrap().mode, Mode::Version);
    }

    #[test]
    fn status_views_drain_and_ready() {
        let i = parse_args(&args("www status --json")).unwrap();
        assert_eq!(
            (i.mode, i.config.as_deref()),
            (
                Mode::Control(ControlAction::Status { json: true }),
                Some("www")
            )
        );
        let i = parse_args(&args("status --verbose")).unwrap();
        assert_eq!(
            (i.mode, i.config),
            (Mode::Control(ControlAction::Status { json: false }), None)
        );
        // Stock's extra words after the action stay ignored.
        let i = parse_args(&args("www status extra")).unwrap();
        assert_eq!(i.mode, Mode::Action(Action::Status));
        let i = parse_args(&args("drain 10.0.0.1:80")).unwrap();
        assert_eq!(
            (i.mode, i.config),
            (
                Mode::Control(ControlAction::Drain {
                    real: "10.0.0.1:80".into(),
                    r#virtual: None
                }),
                None
            )
        );
        let i = parse_args(&args("www ready 10.0.0.1 tcp:10.0.0.100:80")).unwrap();
        assert_eq!(
            (i.mode, i.config.as_deref()),
            (
                Mode::Control(ControlAction::Ready {
                    real: "10.0.0.1".into(),
                    r#virtual: Some("tcp:10.0.0.100:80".into())
                }),
                Some("www")
            )
        );
        assert!(parse_args(&args("www drain")).is_err());
        assert!(parse_args(&args("drain a b c")).is_err());
    }

    #[test]
    fn test_and_probe_take_an_optional_config() {
        let i = parse_args(&args("--test")).unwrap();
        assert_eq!((i.mode, i.config), (Mode::Test, None));
        let i = parse_args(&args("-t my.cf")).unwrap();
        assert_eq!((i.mode, i.config.as_deref()), (Mode::Test, Some("my.cf")));
        let i = parse_args(&args("--probe --json my.cf")).unwrap();
        assert_eq!(i.mode, Mode::Probe { json: true });
        let i = parse_args(&args("--error-format=stock -t")).unwrap();
        assert_eq!(i.error_format, ErrorFormat::Stock);
    }
}
