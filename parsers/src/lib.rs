//! Parsers for ldirectord-rs, with no knowledge of sockets or IPVS:
//! - [`config`]: `ldirectord.cf` into a typed, fully resolved [`config::Config`];
//! - [`ipvsadm`]: `ipvsadm -L -n` (and `--thresholds`) listings into a table.
#![forbid(unsafe_code)]

pub mod config;
pub mod ipvsadm;
