//! Parsers for ldirectord-rs, with no knowledge of sockets:
//! - [`ipvs`]: the IPVS vocabulary (service keys, specs, entries, the table, [`ipvs::Op`])
//!   that the config, the listing parser, the director and every engine share;
//! - [`config`]: `ldirectord.cf` into a typed, fully resolved [`config::Config`];
//! - [`ipvsadm`]: `ipvsadm -L -n` (and `--thresholds`) listings into an [`ipvs::Table`].
#![forbid(unsafe_code)]

pub mod config;
pub mod ipvs;
pub mod ipvsadm;
