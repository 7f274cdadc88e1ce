//! ldirectord-rs: a drop-in replacement for ldirectord, the health-checking director of
//! Linux Virtual Server clusters.
//!
//! The map, following the data:
//! - `ldirectord_parsers` reads `ldirectord.cf` into a typed [`Config`](ldirectord_parsers::config::Config)
//!   and parses `ipvsadm` listings.
//! - `ldirectord_checks` runs the health checks.
//! - [`engine`] programs IPVS (netlink, ipvsadm, userspace).
//! - [`director`] is the pure core: config + health + table in, operations out.
//! - [`probe`] runs one round of every check (`ldirectord --probe`).
//! - [`realsource`] selects real servers from the cluster (`realsource=`, the OCF agent's
//!   lvsdr parameters) for the daemon and the agent.
//! - [`instance`] holds stock's instance rules: config lookup, instance name, pid file,
//!   liveness, stopping.
//! - [`daemon`] is the daemon's life: detaching, the main loop, signals, reload, logging.
//! - [`status`] is the running daemon's view as the control socket serves it (`status
//!   --json`), and the socket's protocol and client.
//! - [`cli`] is the drop-in command line.
//! - [`cluster`] is ldirectord-rs under Pacemaker (the OCF agent) and on DR/TUN real
//!   servers (`ldirectord realserver`).
//!
//! Uses point one way (no module uses one that uses it back): `cli` uses `daemon`,
//! `instance`, `probe`, `status` and `engine`; `cluster` uses `instance` and `realsource`; `daemon`
//! uses `director`, `engine`, `instance`, `realsource` and `status`; `director` uses `engine`. The
//! binary (`main.rs`) picks `cluster` or `cli`.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cluster;
pub mod daemon;
pub mod director;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod instance;
pub mod probe;
pub mod realsource;
pub mod status;
