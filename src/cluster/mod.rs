//! Cluster stacks: ldirectord-rs as a Pacemaker OCF resource agent and under heartbeat v1.
//!
//! - [`agent`]: `ldirectord --ocf ACTION`, the director as an OCF agent driving the daemon
//!   (real servers from the cluster come from [`crate::realsource`]).
//! - [`realserver`]: `ldirectord realserver ...`, the VIP on `lo`/`tunl0` of a DR/TUN real
//!   server.
//! - [`syncbackup`]: `ldirectord sync-backup ...`, the kernel's backup sync daemon on a
//!   standby director (connection synchronisation).
//! - [`metadata`]: the agents' meta-data XML.
//! - [`ocf`]: exit codes, parameters, probes and exit reasons.
//!
//! The binary asks [`dispatch`] first, then hands anything else to the drop-in command
//! line. heartbeat v1 needs nothing here: it calls `ldirectord CONFIG start|stop|status`,
//! the drop-in command line of `cli` (see `compat/heartbeat/README.md`).

use std::io::Write;

pub mod agent;
pub mod metadata;
pub mod ocf;
pub mod realserver;
pub mod syncbackup;

/// The options a wrapper may put before `--ocf`, and the agent parameter each one sets
/// (the command line wins over `OCF_RESKEY_*`).
const LEADING: [(&str, &str); 3] = [
    ("--engine", "engine"),
    ("--ipvsadm", "ipvsadm"),
    ("--run-dir", "run_dir"),
];

/// If the arguments ask for a cluster entry point, run it and return its exit code:
/// `[OPTIONS] --ocf ACTION` or `ocf ACTION` (the director agent; OPTIONS are `--engine`,
/// `--ipvsadm` and `--run-dir`, as `--name VALUE` or `--name=VALUE`), `[OPTIONS] realserver
/// ...` (which needs none of them), `[OPTIONS] sync-backup ...` (`--engine`, `--ipvsadm`).
pub fn dispatch(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Option<i32> {
    let mut env = ocf::Env::from_process();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (a.as_str(), None),
        };
        let Some((_, param)) = LEADING.iter().find(|(option, _)| *option == name) else {
            break;
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)?.clone()
            }
        };
        env.set_param(param, &value);
        i += 1;
    }
    let args = &args[i..];
    let first = args.first()?.as_str();
    match first {
        "--ocf" | "ocf" => {
            let action = args.get(1).map(String::as_str).unwrap_or("");
            Some(agent::run(action, &env, out, err))
        }
        a if a.starts_with("--ocf=") => Some(agent::run(&a["--ocf=".len()..], &env, out, err)),
        "realserver" => Some(realserver::run(&args[1..], &env, out, err)),
        "sync-backup" => Some(syncbackup::run(&args[1..], &env, out, err)),
        _ => None,
    }
}
