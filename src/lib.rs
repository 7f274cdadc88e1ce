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
//! - [`daemon`] is the daemon's life: detaching, the main loop, signals, reload, logging.
//! - [`cli`] is the drop-in command line.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cluster;
pub mod daemon;
pub mod director;
pub mod engine;
pub mod probe;
