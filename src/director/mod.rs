//! The director core: ldirectord's brain as a state machine with no I/O.
//!
//! Inputs: the parsed [`Config`](ldirectord_parsers::config::Config), the kernel
//! [`Table`](crate::engine::Table) an engine dumped, check results per check identity
//! ([`CheckSpec`](ldirectord_checks::CheckSpec)), and the time as a monotonic `Duration`
//! since the daemon started. Outputs: [`Action`]s in the order the shell must perform them —
//! engine [`Op`](crate::engine::Op)s, stock ldirectord's exact log lines, fallback command
//! runs, e-mail alerts that passed the `emailalertstatus` filter, monitorfile lines.
//!
//! How the daemon shell drives it:
//! 1. dump the table, [`Director::start`], perform the actions;
//! 2. run one check per [`Director::checks`] entry on its interval (testing the
//!    [`maintenance_names`] first when `maintenancedir` is set) and feed each result to
//!    [`Director::on_check`]; after the first full round call [`Director::running`];
//! 3. call [`Director::tick`] periodically (e.g. every second) for e-mail reminders;
//! 4. after any engine error (or periodically) dump the table and call
//!    [`Director::on_table`]: the core assumes its operations succeeded until a dump says
//!    otherwise, and converges from there;
//! 5. on reload, parse; on success dump and call [`Director::reload`], rebuild the check
//!    schedule from [`Director::checks`], and after the next full round call
//!    [`Director::running`]; on a parse error keep the old director untouched;
//! 6. on terminate, [`Director::stop`] and perform the actions.
//!
//! Differences from stock (no start-up flapping, health kept across reloads, port-mapped
//! reals recognised, fwmark fallbacks that work) are listed in `compat/DEVIATIONS.md`.

mod action;
mod desired;
mod helpers;
mod machine;
mod text;

pub use action::{
    Action, Alert, CheckPlan, CheckResult, DaemonState, FallbackAction, FallbackCommand,
};
pub use desired::{
    dest_matches, fallback_dest, mapped_port, real_dest, service_key, service_matches, service_spec,
};
pub use helpers::{check_routes, helper, is_helper_key};
pub use machine::{Director, DrainTarget, Health, RealStatus, VirtualStatus, apply_op};
pub use text::{IN_MAINTENANCE, escape_message, maintenance_names, monitor_identity, monitor_line};
