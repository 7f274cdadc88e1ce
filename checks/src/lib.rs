//! Health checks for ldirectord-rs: pluggable async checkers that decide whether a real
//! server is up.
//!
//! - [`check`]: the vocabulary. [`Checker`] is the one small trait: run once, answer an
//!   [`Outcome`] (a [`Verdict`], a reason, the latency and, when down, a
//!   [`FailureClass`]). A checker is built for one [`CheckSpec`] and may keep state between
//!   runs (the combined `checktype=N` does). Checkers fail with a [`Failure`] (class and
//!   reason); [`bounded`] bounds a whole check by its timeout.
//! - [`spec`]: [`CheckSpec`], a check's identity as a value (kind, address, port,
//!   parameters): identical checks of the same real in several virtual services compare
//!   equal and run once. [`CheckSpec::for_real`] applies ldirectord's rules (§3 of the
//!   reference); [`CheckSpec::new`] gives the defaults for tests and tools.
//! - [`registry`]: [`build`], the one place that maps `checktype=`/`service=` to a checker.
//! - One file per check kind (`connect`, `ping`, `external`, `combined`, and the negotiate
//!   services `http` … `nntp`), built on `proto` (target address, I/O reasons, a capped
//!   line reader, UDP) and `tls` (the checks' one TLS client setup).
//! - [`scheduler`]: one owner of every check's timer.
//! - `fuzzing`: the fuzz targets' entry points (each decoder of server bytes, no socket).
//! - [`process`]: where every program ldirectord-rs starts is built (without the
//!   daemon's private variable).
#![forbid(unsafe_code)]

pub mod check;
pub mod registry;
pub mod spec;

pub use check::{BoxFuture, BuildError, Checker, Failure, FailureClass, Outcome, Verdict, bounded};
pub use registry::build;
pub use spec::{CheckRoute, CheckSpec};

mod proto;
mod tls;

pub mod combined;
pub mod connect;
pub mod dns;
pub mod external;
pub mod ftp;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod imap;
pub mod ldap;
pub mod mysql;
pub mod nntp;
pub mod pgsql;
pub mod ping;
pub mod pop;
pub mod process;
pub mod radius;
mod relay;
pub mod route;
pub mod scheduler;
pub mod simpletcp;
pub mod sip;
pub mod smtp;
