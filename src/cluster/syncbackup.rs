//! The standby side of connection synchronisation: `ldirectord sync-backup
//! start|stop|status IFACE [SYNCID] [--group ADDR] [--port N]`, the kernel's backup sync
//! daemon that every standby director runs permanently, and the same as an OCF agent
//! (`ldirectord sync-backup --ocf ACTION`, `OCF_RESKEY_interface`, `syncid`, `group`,
//! `port`, `engine`, `ipvsadm`), meant as a clone on every director.
//!
//! Every action is idempotent: start adopts an identical running backup and refuses a
//! different one (naming it); stop stops only an identical one. The daemon is a kernel
//! thread: nothing of this process stays behind. Exit codes of the command line are the
//! LSB ones the OCF agent shares: 0 done (status: runs with these parameters), 3 (status)
//! not running, 2 no such interface here, 5 no IPVS (or no ipvsadm), 6 bad parameters, 1
//! anything else (a different backup runs); 255 for a bad command line, as `ldirectord`.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use super::metadata;
use super::ocf::{self, Env, Fail};
use crate::engine::ipvsadm::IpvsadmEngine;
use crate::engine::netlink::{NetlinkEngine, NetlinkOptions};
use crate::engine::sync::{self, SyncError, SyncStop};
use crate::engine::{Engine, EngineError, SyncDaemon, SyncRole};
use ldirectord_parsers::ipvs::valid_interface_name;

const USAGE: &str = "usage: ldirectord [--engine netlink|ipvsadm] sync-backup start|stop|status IFACE [SYNCID] [--group ADDR] [--port N]\n\
       ldirectord sync-backup --ocf start|stop|monitor|validate-all|meta-data (OCF_RESKEY_interface, syncid, group, port, engine)\n\
exit: 0 done (status: it runs with these parameters), 3 not running, 2 no such interface,\n\
      5 no IPVS, 6 bad parameters, 1 a different backup sync daemon runs (or another error)\n";

/// The backup daemon asked for, from the command line or the agent's parameters.
fn backup(
    interface: Option<&str>,
    syncid: Option<&str>,
    group: Option<&str>,
    port: Option<&str>,
) -> Result<SyncDaemon, Fail> {
    let interface = interface.ok_or_else(|| Fail::configured("interface is required"))?;
    if !valid_interface_name(interface) {
        return Err(Fail::configured(format!(
            "interface {interface:?} is not a network interface name (1 to 15 characters \
             without white space, '/' or ':')"
        )));
    }
    let syncid = match syncid {
        None => 0,
        Some(text) => text
            .trim()
            .parse::<u8>()
            .map_err(|_| Fail::configured(format!("syncid={text}: a number from 0 to 255")))?,
    };
    let mut daemon = SyncDaemon::new(SyncRole::Backup, interface, syncid);
    if let Some(text) = group {
        daemon.group = Some(
            text.trim()
                .parse::<IpAddr>()
                .ok()
                .filter(IpAddr::is_multicast)
                .ok_or_else(|| {
                    Fail::configured(format!("group={text}: not a multicast address"))
                })?,
        );
    }
    if let Some(text) = port {
        daemon.port = Some(
            text.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    Fail::configured(format!("port={text}: a number from 1 to 65535"))
                })?,
        );
    }
    Ok(daemon)
}

/// `ldirectord sync-backup ...`; returns the exit code.
pub fn run(args: &[String], env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if args.first().map(String::as_str) == Some("--ocf") {
        let action = args.get(1).map(String::as_str).unwrap_or("");
        return ocf_action(action, env, out, err);
    }
    let mut words = Vec::new();
    let mut group = None;
    let mut port = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-h" | "--help" => {
                let _ = out.write_all(USAGE.as_bytes());
                return 0;
            }
            "--group" | "--port" => {
                i += 1;
                let value = args.get(i).cloned();
                if a == "--group" {
                    group = value
                } else {
                    port = value
                }
            }
            _ if a.starts_with("--group=") => group = Some(a["--group=".len()..].to_owned()),
            _ if a.starts_with("--port=") => port = Some(a["--port=".len()..].to_owned()),
            _ if a.starts_with('-') => return usage(err, out, &format!("unexpected {a:?}")),
            _ => words.push(a),
        }
        i += 1;
    }
    let (action, interface, syncid) = match words.as_slice() {
        [action, interface] => (*action, *interface, None),
        [action, interface, syncid] => (*action, *interface, Some(*syncid)),
        _ => return usage(err, out, "needs ACTION and IFACE"),
    };
    if !matches!(action, "start" | "stop" | "status") {
        return usage(err, out, &format!("unknown action {action:?}"));
    }
    let want = match backup(Some(interface), syncid, group.as_deref(), port.as_deref()) {
        Ok(d) => d,
        Err(f) => return usage(err, out, &f.reason),
    };
    let act = match action {
        "start" => Act::Start,
        "stop" => Act::Stop,
        _ => Act::Monitor,
    };
    let result = on_engine(env, act, &want);
    match (action, result) {
        ("status", Ok(ocf::SUCCESS)) => {
            let _ = writeln!(out, "{} is running", describe(&want));
            0
        }
        ("status", Ok(_)) => {
            let _ = writeln!(out, "{} is stopped", describe(&want));
            3
        }
        (_, Ok(_)) => 0,
        (action, Err(f)) => {
            let _ = writeln!(err, "ldirectord sync-backup: {}", f.reason);
            if action == "status" && f.code == ocf::ERR_GENERIC {
                // A different backup runs: this one does not.
                let _ = writeln!(out, "{} is stopped", describe(&want));
                return 3;
            }
            f.code
        }
    }
}

fn usage(err: &mut dyn Write, out: &mut dyn Write, why: &str) -> i32 {
    let _ = writeln!(err, "ldirectord sync-backup: {why}");
    let _ = out.write_all(USAGE.as_bytes());
    255
}

/// `backup sync daemon on eth0 (syncid 0)`, for status lines.
fn describe(d: &SyncDaemon) -> String {
    format!(
        "backup sync daemon on {} (syncid {})",
        d.interface, d.syncid
    )
}

fn ocf_action(action: &str, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    const ACTIONS: [&str; 5] = ["start", "stop", "monitor", "status", "validate-all"];
    if let Some(code) = ocf::answer_fixed(action, &ACTIONS, metadata::syncbackup, USAGE, out) {
        return code;
    }
    let want = backup(
        env.param("interface"),
        env.param("syncid"),
        env.param("group"),
        env.param("port"),
    );
    let want = match (action, want) {
        // Nothing of ours can run without valid parameters: stopped.
        ("stop", Err(_)) => return ocf::SUCCESS,
        ("monitor" | "status", Err(_)) if env.is_probe() => return ocf::NOT_RUNNING,
        (_, Err(f)) => return ocf::finish(env, err, Err(f)),
        (_, Ok(want)) => want,
    };
    let act = match action {
        "start" => Act::Start,
        "stop" => Act::Stop,
        "validate-all" => Act::Validate,
        _ => Act::Monitor,
    };
    let result = match (on_engine(env, act, &want), act) {
        // A probe on a node without IPVS, or where another backup runs: ours is not there.
        (Err(f), Act::Monitor)
            if env.is_probe() && matches!(f.code, ocf::ERR_INSTALLED | ocf::ERR_GENERIC) =>
        {
            Ok(ocf::NOT_RUNNING)
        }
        // Without IPVS nothing of ours can run: stopped.
        (Err(f), Act::Stop) if f.code == ocf::ERR_INSTALLED => Ok(ocf::SUCCESS),
        (result, _) => result,
    };
    ocf::finish(env, err, result)
}

/// What to do with the backup daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Start,
    Stop,
    Monitor,
    Validate,
}

/// Does `act` on the engine the parameters choose (`engine`, `ipvsadm`; default netlink).
fn on_engine(env: &Env, act: Act, want: &SyncDaemon) -> Result<i32, Fail> {
    let ipvsadm = env.param("ipvsadm").map(PathBuf::from);
    // As on the drop-in command line, an ipvsadm program alone chooses its engine.
    let implied = if ipvsadm.is_some() {
        "ipvsadm"
    } else {
        "netlink"
    };
    let choice = env.param("engine").unwrap_or(implied).to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::generic(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let mut engine: Box<dyn Engine> = match choice.as_str() {
            "netlink" => Box::new(
                NetlinkEngine::connect(NetlinkOptions::default())
                    .await
                    .map_err(engine_fail)?,
            ),
            "ipvsadm" => Box::new(IpvsadmEngine::new(
                ipvsadm.unwrap_or_else(IpvsadmEngine::default_program),
            )),
            "userspace" => {
                return Err(Fail::configured(
                    "the userspace engine has no connection synchronisation: engine=netlink \
                     or ipvsadm",
                ));
            }
            other => {
                return Err(Fail::configured(format!(
                    "engine={other}: netlink or ipvsadm"
                )));
            }
        };
        let engine = engine.as_mut();
        match act {
            Act::Start => start(engine, want).await,
            Act::Stop => stop(engine, want).await,
            Act::Monitor => monitor(engine, want).await,
            Act::Validate => validate(engine, want).await,
        }
    })
}

/// An engine error as an OCF failure: no IPVS is "not installed".
fn engine_fail(e: EngineError) -> Fail {
    match e {
        EngineError::Unavailable(m) => Fail::new(ocf::ERR_INSTALLED, m),
        EngineError::Rejected {
            errno: Some(crate::engine::Errno::ENODEV),
            message,
            op,
        } => Fail::new(ocf::ERR_ARGS, format!("{op}: {message}")),
        other => Fail::generic(other.to_string()),
    }
}

fn sync_fail(e: SyncError) -> Fail {
    match e {
        SyncError::NoInterface(_) => Fail::new(ocf::ERR_ARGS, e.to_string()),
        SyncError::Conflict { .. } => Fail::generic(e.to_string()),
        SyncError::Engine(e) => engine_fail(e),
    }
}

async fn start(engine: &mut dyn Engine, want: &SyncDaemon) -> Result<i32, Fail> {
    sync::check_interface(want).map_err(sync_fail)?;
    sync::ensure(engine, want).await.map_err(sync_fail)?;
    warn_without_services(engine).await;
    Ok(ocf::SUCCESS)
}

async fn stop(engine: &mut dyn Engine, want: &SyncDaemon) -> Result<i32, Fail> {
    match sync::stop(engine, want).await.map_err(engine_fail)? {
        SyncStop::Foreign(other) => {
            eprintln!("ldirectord sync-backup: left {other} alone: it is not the one asked for");
            Ok(ocf::SUCCESS)
        }
        SyncStop::Stopped | SyncStop::NotRunning => Ok(ocf::SUCCESS),
    }
}

/// 0 when `want` runs, 7 when no backup runs, 1 when a different one does.
async fn monitor(engine: &mut dyn Engine, want: &SyncDaemon) -> Result<i32, Fail> {
    match sync::running(engine, SyncRole::Backup)
        .await
        .map_err(engine_fail)?
    {
        Some(running) if want.is_satisfied_by(&running) => {
            warn_without_services(engine).await;
            Ok(ocf::SUCCESS)
        }
        Some(running) => Err(Fail::generic(format!(
            "a different backup sync daemon runs: {running}"
        ))),
        None => Ok(ocf::NOT_RUNNING),
    }
}

/// The interface exists here, and the kernel answers.
async fn validate(engine: &mut dyn Engine, want: &SyncDaemon) -> Result<i32, Fail> {
    sync::check_interface(want).map_err(sync_fail)?;
    sync::running(engine, SyncRole::Backup)
        .await
        .map_err(engine_fail)?;
    Ok(ocf::SUCCESS)
}

/// The standby trap of `shared/reference/ipvs-sync.md`: without a virtual service the
/// synced entries are never used.
async fn warn_without_services(engine: &mut dyn Engine) {
    if let Ok(table) = engine.dump().await
        && table.services.is_empty()
    {
        eprintln!(
            "ldirectord sync-backup: warning: no virtual service here yet: on a takeover, \
             start the director before the VIP arrives, or the synced connections are reset"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        let d = backup(Some("eth1"), Some("7"), Some("ff02::81"), Some("8850")).unwrap();
        assert_eq!(
            (d.role, d.syncid, d.port),
            (SyncRole::Backup, 7, Some(8850))
        );
        for (i, s, g, p) in [
            (None, None, None, None),
            (Some("eth 1"), None, None, None),
            (Some("eth1"), Some("256"), None, None),
            (Some("eth1"), None, Some("10.0.0.1"), None),
            (Some("eth1"), None, None, Some("0")),
        ] {
            assert_eq!(
                backup(i, s, g, p).unwrap_err().code,
                ocf::ERR_CONFIGURED,
                "{i:?} {s:?} {g:?} {p:?}"
            );
        }
    }
}
