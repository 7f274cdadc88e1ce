//! Cluster stacks: ldirectord-rs as a Pacemaker OCF resource agent and under heartbeat v1.
//!
//! - [`agent`]: `ldirectord --ocf ACTION`, the director as an OCF agent driving the daemon
//!   (real servers from the cluster come from [`crate::realsource`]).
//! - [`realserver`]: `ldirectord realserver ...`, the VIP on `lo`/`tunl0` of a DR/TUN real
//!   server.
//! - [`metadata`]: both agents' meta-data XML.
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

/// If the arguments ask for a cluster entry point, run it and return its exit code:
/// `--ocf ACTION` or `ocf ACTION` (the director agent), `realserver ...`.
pub fn dispatch(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Option<i32> {
    let first = args.first()?.as_str();
    match first {
        "--ocf" | "ocf" => {
            let action = args.get(1).map(String::as_str).unwrap_or("");
            Some(agent::run(action, &ocf::Env::from_process(), out, err))
        }
        a if a.starts_with("--ocf=") => Some(agent::run(
            &a["--ocf=".len()..],
            &ocf::Env::from_process(),
            out,
            err,
        )),
        "realserver" => Some(realserver::run(
            &args[1..],
            &ocf::Env::from_process(),
            out,
            err,
        )),
        _ => None,
    }
}
