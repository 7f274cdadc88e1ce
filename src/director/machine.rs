//! The director state machine: health per (virtual, real), the table as last seen (plus
//! what we have asked for since), and the rules that turn both into [`Action`]s.
//!
//! Every change goes through one comparison: what a real *should* look like in the kernel
//! (from its health and the virtual's quiescent settings) against what the table holds.
//! Transitions, start-up adoption, reload and convergence after a fresh dump all use it, so
//! they agree by construction and re-running them is idempotent.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::{AlertSettings, CheckType, Config, Family, VirtualService};

use super::action::{
    Action, Alert, CheckPlan, CheckResult, DaemonState, FallbackAction, FallbackCommand,
};
use super::desired::{
    dest_matches, dest_quiesced, fallback_dest, mapped_port, real_dest, service_key,
    service_matches, service_spec,
};
use super::helpers;
use super::text::{self, Phase, Tag};
use crate::engine::{DestEntry, DestSpec, Op, ServiceEntry, ServiceKey, ServiceSpec, Table};

/// The director core. Owns no sockets, files, clocks or processes: time comes in as `now`,
/// a monotonic [`Duration`] since the daemon started.
#[derive(Debug)]
pub struct Director {
    config: Config,
    state: DaemonState,
    readdquiescent: bool,
    virtuals: Vec<Virtual>,
    checks: Vec<Check>,
    check_index: HashMap<Arc<CheckSpec>, usize>,
    /// The kernel table as last dumped, with our own operations applied since: what we
    /// believe the kernel holds. A fresh dump replaces it ([`Director::on_table`]).
    observed: HashMap<ServiceKey, ServiceEntry>,
    /// Operators' drains in force, across reloads.
    drains: Vec<DrainTarget>,
    /// The `checkpath=forwarding` helper services wanted now, each with its one real.
    helpers: Vec<(ServiceSpec, DestSpec)>,
}

/// One virtual service as the director sees it, for status output and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualStatus<'a> {
    /// ldirectord's virtual id, `tcp:10.0.0.100:80`.
    pub virtual_id: String,
    pub spec: ServiceSpec,
    /// Whether the service is in the table as we believe it.
    pub in_table: bool,
    /// The fallback server, and whether it is in the table now.
    pub fallback: Option<(DestSpec, bool)>,
    pub reals: Vec<RealStatus<'a>>,
}

/// Health of one (virtual, real), for status output and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealStatus<'a> {
    /// `RIP:PORT` as configured.
    pub real: String,
    /// As configured (weight, forwarding, thresholds).
    pub dest: DestSpec,
    /// The weight in the table as we believe it (`None`: not in the table).
    pub table_weight: Option<u32>,
    pub health: Health,
    /// An operator's drain ([`Director::set_drains`]) holds it at weight 0.
    pub drained: bool,
    /// The last check result was "in maintenance" (`maintenancedir=`).
    pub maintenance: bool,
    /// Consecutive failed checks while up (reset by a success).
    pub failures: u32,
    /// Consecutive successful checks while down (towards `risecount`).
    pub rises: u32,
    /// Health changes (to up or down, the first verdict included) since the real was
    /// configured; carried over reloads like the health.
    pub transitions: u32,
    /// When the last transition happened (director time), `None` = never.
    pub last_transition: Option<Duration>,
    /// The check that decides it; `None` for `checktype=on`/`off`. Borrowed: a status of
    /// a big director must not copy every check's parameters.
    pub check: Option<&'a CheckSpec>,
}

/// An operator's drain (`ldirectord drain RIP[:PORT] [VIRTUAL]`): matching reals stay in
/// the table at weight 0 (connections they hold go on) whatever their checks say, until
/// the drain is lifted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DrainTarget {
    pub ip: IpAddr,
    /// `None`: every port of `ip`.
    pub port: Option<u16>,
    /// A virtual id (`tcp:10.0.0.100:80`, `fwm:33`); `None`: every virtual service.
    pub virtual_id: Option<String>,
}

impl DrainTarget {
    /// Whether this drain names `dest` in the virtual `virtual_id`.
    pub fn matches(&self, virtual_id: &str, dest: &DestSpec) -> bool {
        self.ip == dest.ip
            && self.port.is_none_or(|p| p == dest.port)
            && self.virtual_id.as_deref().is_none_or(|v| v == virtual_id)
    }
}

/// What the director knows of one real's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Just built from the configuration: start-up or reload gives it a health next
    /// (carried over, the check's last result, or what the kernel holds).
    New,
    /// Down only because no check has answered yet (start-up or a new real on reload):
    /// its kernel entry is left as found.
    Unchecked,
    Up,
    Down,
}

impl Health {
    /// No check has decided yet: [`Health::New`] or [`Health::Unchecked`].
    fn is_unchecked(self) -> bool {
        matches!(self, Health::New | Health::Unchecked)
    }
}

#[derive(Debug)]
struct Check {
    /// What the shell runs, and the sharing key: [`CheckSpec::for_real`] leaves out
    /// everything a check does not depend on, so equal specs are one check (scenario 23).
    /// Shared with the index, the plans and the shell's scheduler: one copy per check.
    spec: Arc<CheckSpec>,
    /// (virtual, real) indices that this check decides, in file order.
    users: Vec<(usize, usize)>,
    interval: u32,
    /// The last result, so a reload can give a new user of a known check its health.
    last: Option<bool>,
}

#[derive(Debug)]
struct Virtual {
    key: ServiceKey,
    spec: ServiceSpec,
    /// `tcp:10.0.0.100:80`, for soft-failure lines.
    id: String,
    /// `10.0.0.100:80` or the mark, for everything else.
    text: String,
    /// `tcp`, `udp`, `fwm`.
    protocol: &'static str,
    fallback: Option<DestSpec>,
    fallbackcommand: Option<String>,
    last_command: Option<FallbackAction>,
    quiescent: bool,
    cleanstop: bool,
    failurecount: u32,
    risecount: u32,
    alerts: AlertSettings,
    servicename: Option<String>,
    comment: Option<String>,
    monitorfile: Option<PathBuf>,
    reals: Vec<Real>,
    /// Number of reals that serve: up and not drained.
    up: usize,
}

#[derive(Debug)]
struct Real {
    /// As configured: full weight and thresholds.
    dest: DestSpec,
    /// The virtual's port when the kernel may list this real under it (§4.5).
    alt_port: Option<u16>,
    /// `RIP:PORT` as configured.
    text: String,
    check: usize,
    checktype: CheckType,
    health: Health,
    failures: u32,
    rises: u32,
    /// Down and due for `emailalertfreq` reminders: when the last one went out.
    reminded: Option<Duration>,
    monitor_identity: Option<String>,
    drained: bool,
    maintenance: bool,
    transitions: u32,
    last_transition: Option<Duration>,
}

impl Real {
    /// Up and not drained: new connections may go to it.
    fn serving(&self) -> bool {
        self.health == Health::Up && !self.drained
    }
}

/// What a real should look like in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Present,
    /// Weight 0 if present; re-added at weight 0 if absent and `readdquiescent=yes`.
    Quiesced,
    /// Not checked yet: leave it as found, except the `readdquiescent` re-add.
    ReaddOnly,
    /// Up but drained: in the table at weight 0, added at weight 0 if absent.
    Drained,
    Absent,
    AsFound,
}

impl Director {
    /// Start-up: take over `table` as the kernel holds it (§4.1 end state, without stock's
    /// transient add/delete of every real). Virtuals are added, or edited when they differ;
    /// reals present with weight > 0 are up until a check says otherwise; others are down
    /// until checked; untracked reals of configured virtuals are purged; unrelated virtual
    /// services are never touched; the fallback goes in where no real is up.
    ///
    /// Start-up is the origin of the director's clock: every later `now` is the time since.
    pub fn start(config: Config, table: &Table) -> (Director, Vec<Action>) {
        Director::start_drained(config, table, Vec::new())
    }

    /// [`Director::start`] with operators' drains already in force (kept from before a
    /// restart), so a drained real never gets its weight back in between.
    pub fn start_drained(
        config: Config,
        table: &Table,
        drains: Vec<DrainTarget>,
    ) -> (Director, Vec<Action>) {
        let mut out = Vec::new();
        let (mut virtuals, checks, check_index) = build(&config, &mut out, &[]);
        mark_drained(&mut virtuals, &drains);
        let mut director = Director {
            drains,
            helpers: wanted_helpers(&virtuals, &checks),
            readdquiescent: config.globals.readdquiescent,
            config,
            state: DaemonState::Starting,
            virtuals,
            checks,
            check_index,
            observed: observe(table),
        };
        for v in 0..director.virtuals.len() {
            // No check has run yet, so no real starts down and no reminder is armed.
            director.adopt(v, None, Duration::ZERO, &mut out);
        }
        director.sync_helpers(&mut out);
        (director, out)
    }

    /// The first full check round after start or reload is done: alerts are now filtered
    /// as `running`.
    pub fn running(&mut self) {
        self.state = DaemonState::Running;
    }

    pub fn state(&self) -> DaemonState {
        self.state
    }

    /// Whether some check goes through the forwarding path (`checkpath=forwarding`), so
    /// helper services are wanted.
    pub fn has_helpers(&self) -> bool {
        !self.helpers.is_empty()
    }

    /// Whether an IPv4 helper is wanted: replies through it come from the VIP, one of the
    /// director's own addresses, which IPv4 drops as a martian unless `accept_local` is
    /// set. IPv6 takes such a reply as it is (VM scenario 36), so its helpers need nothing.
    pub fn has_ipv4_helpers(&self) -> bool {
        self.helpers
            .iter()
            .any(|(service, _)| service.key.family() == Family::Inet)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The checks to run: one per distinct [`CheckSpec`], in file order of first use.
    /// `checktype=off` needs no check, `checktype=on` reals are up without one.
    pub fn checks(&self) -> Vec<CheckPlan> {
        self.checks
            .iter()
            .filter(|c| !matches!(c.spec.checktype, CheckType::Off | CheckType::On))
            .map(|c| CheckPlan {
                spec: Arc::clone(&c.spec),
                interval: Duration::from_secs(u64::from(c.interval.max(1))),
            })
            .collect()
    }

    /// Every configured virtual and (virtual, real), in file order.
    pub fn status(&self) -> Vec<VirtualStatus<'_>> {
        self.virtuals
            .iter()
            .map(|v| {
                let entry = self.observed.get(&v.key);
                // One map per service, so that 10,000 reals under one virtual stay linear.
                let weights: HashMap<(IpAddr, u16), u32> = entry
                    .map(|e| {
                        e.dests
                            .iter()
                            .map(|d| ((d.spec.ip, d.spec.port), d.spec.weight))
                            .collect()
                    })
                    .unwrap_or_default();
                let reals = v
                    .reals
                    .iter()
                    .map(|r| {
                        let check = &self.checks[r.check].spec;
                        RealStatus {
                            real: r.text.clone(),
                            dest: r.dest,
                            table_weight: {
                                let at = |p: u16| weights.get(&(r.dest.ip, p)).copied();
                                at(r.dest.port).or_else(|| r.alt_port.and_then(at))
                            },
                            health: r.health,
                            drained: r.drained,
                            maintenance: r.maintenance,
                            failures: r.failures,
                            rises: r.rises,
                            transitions: r.transitions,
                            last_transition: r.last_transition,
                            check: (!matches!(check.checktype, CheckType::On | CheckType::Off))
                                .then_some(check),
                        }
                    })
                    .collect();
                let fallback = v.fallback.map(|fb| {
                    let present = entry.is_some_and(|e| {
                        find_spec(e, fb.ip, fb.port, mapped_port(v.key, &fb)).is_some()
                    });
                    (fb, present)
                });
                VirtualStatus {
                    virtual_id: v.id.clone(),
                    spec: v.spec.clone(),
                    in_table: entry.is_some(),
                    fallback,
                    reals,
                }
            })
            .collect()
    }

    /// The drains in force.
    pub fn drains(&self) -> &[DrainTarget] {
        &self.drains
    }

    /// Whether `target` names at least one configured (virtual, real).
    pub fn drain_matches(&self, target: &DrainTarget) -> bool {
        self.virtuals
            .iter()
            .any(|v| v.reals.iter().any(|r| target.matches(&v.id, &r.dest)))
    }

    /// Put the operators' drains in force: a real a drain names goes to weight 0 (and
    /// stops counting as up for the fallback); one no longer named gets what its health
    /// says back.
    pub fn set_drains(&mut self, drains: Vec<DrainTarget>) -> Vec<Action> {
        let mut out = Vec::new();
        self.drains = drains;
        for v in 0..self.virtuals.len() {
            let mut changed = false;
            for r in 0..self.virtuals[v].reals.len() {
                let virt = &mut self.virtuals[v];
                let real = &mut virt.reals[r];
                let drained = self.drains.iter().any(|d| d.matches(&virt.id, &real.dest));
                if drained == real.drained {
                    continue;
                }
                let was_serving = real.serving();
                real.drained = drained;
                match (was_serving, real.serving()) {
                    (true, false) => virt.up -= 1,
                    (false, true) => virt.up += 1,
                    _ => {}
                }
                let line = if drained {
                    text::drained(&real.text, &virt.text)
                } else {
                    text::undrained(&real.text, &virt.text)
                };
                let at = out.len();
                self.sync_real(v, r, &mut out);
                // sync_real says "Drained …" itself when it changes the weight.
                if !drained || out.len() == at {
                    out.insert(at, Action::Log(line));
                }
                changed = true;
            }
            if changed {
                self.sync_fallback(v, &mut out);
                self.fallback_command(v, &mut out);
            }
        }
        out
    }

    /// What we believe the kernel holds for the configured virtuals (dump plus our ops).
    pub fn believed(&self, key: &ServiceKey) -> Option<&ServiceEntry> {
        self.observed.get(key)
    }

    /// The whole table as we believe the kernel holds it (last dump plus our operations),
    /// services in no particular order. For diagnostics, tests and benchmarks.
    pub fn believed_table(&self) -> Table {
        Table {
            services: self.observed.values().cloned().collect(),
        }
    }

    /// What the director put in the kernel that `table`, a fresh dump, lacks: its virtual
    /// services and the destinations it believes they hold, removed behind its back (an
    /// operator's `ipvsadm -D`, `-d` or `-C`). Weights are not compared: a weight set by
    /// hand is left alone while the real stays up, as stock leaves it (§4.5).
    pub fn missing_from(&self, table: &Table) -> Vec<String> {
        let mut missing = Vec::new();
        for virt in &self.virtuals {
            let Some(believed) = self.observed.get(&virt.key) else {
                continue;
            };
            let Some(found) = table.service(&virt.key) else {
                missing.push(format!("virtual server {}", virt.text));
                continue;
            };
            for dest in &believed.dests {
                let (ip, port) = (dest.spec.ip, dest.spec.port);
                if !found
                    .dests
                    .iter()
                    .any(|d| d.spec.ip == ip && d.spec.port == port)
                {
                    let addr = std::net::SocketAddr::new(ip, port);
                    missing.push(format!("real server {addr} ({})", virt.text));
                }
            }
        }
        missing
    }

    /// A check result for `spec`, applied to every (virtual, real) that uses this check. A
    /// result for a check that is no longer configured (in flight across a reload) is
    /// ignored.
    pub fn on_check(
        &mut self,
        spec: &CheckSpec,
        result: CheckResult<'_>,
        now: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(&c) = self.check_index.get(spec) else {
            return out;
        };
        if spec.checktype == CheckType::Off {
            return out;
        }
        let up = matches!(result, CheckResult::Up(_));
        self.checks[c].last = Some(up);
        let users = std::mem::take(&mut self.checks[c].users);
        for &(v, r) in &users {
            self.monitor(v, r, spec, result, &mut out);
            self.apply_result(v, r, result, now, &mut out);
        }
        self.checks[c].users = users;
        out
    }

    /// A fresh dump of the kernel table: bring it back to the desired state (recreate a
    /// missing virtual with its up reals and fallback, redo operations that failed, revert
    /// changes made behind our back to the reals we manage). Reals we do not manage are
    /// left alone here; only start-up and reload purge them.
    pub fn on_table(&mut self, table: &Table) -> Vec<Action> {
        let mut out = Vec::new();
        self.observed = observe(table);
        for v in 0..self.virtuals.len() {
            self.sync_service(v, &mut out);
            for r in 0..self.virtuals[v].reals.len() {
                self.sync_real(v, r, &mut out);
            }
            self.sync_fallback(v, &mut out);
        }
        self.sync_helpers(&mut out);
        out
    }

    /// A new configuration (already parsed: a failed parse never gets here) and the table
    /// as it is now. Health carries over for every (virtual, real) whose check is unchanged,
    /// and a new real whose check is already known takes that check's last result; only the
    /// differences are applied. Removed reals and virtuals are purged.
    pub fn reload(&mut self, config: Config, table: &Table, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        self.state = DaemonState::Reloading;
        self.observed = observe(table);
        let old_checks = std::mem::take(&mut self.checks);
        let (mut virtuals, checks, check_index) = build(&config, &mut out, &old_checks);
        let old_virtuals = std::mem::take(&mut self.virtuals);
        let old_by_key: HashMap<ServiceKey, usize> = old_virtuals
            .iter()
            .enumerate()
            .map(|(i, v)| (v.key, i))
            .collect();
        let mut old_fallbacks = Vec::with_capacity(virtuals.len());
        for new in &mut virtuals {
            let Some(&o) = old_by_key.get(&new.key) else {
                old_fallbacks.push(None);
                continue;
            };
            let old = &old_virtuals[o];
            old_fallbacks.push(old.fallback);
            new.last_command = old.last_command;
            let old_reals: HashMap<(IpAddr, u16), &Real> = old
                .reals
                .iter()
                .map(|r| ((r.dest.ip, r.dest.port), r))
                .collect();
            for real in &mut new.reals {
                let Some(prev) = old_reals.get(&(real.dest.ip, real.dest.port)) else {
                    continue;
                };
                if old_checks[prev.check].spec != checks[real.check].spec {
                    continue;
                }
                real.health = prev.health;
                real.failures = prev.failures;
                real.rises = prev.rises;
                real.reminded = prev.reminded;
                real.maintenance = prev.maintenance;
                real.transitions = prev.transitions;
                real.last_transition = prev.last_transition;
            }
        }
        mark_drained(&mut virtuals, &self.drains);
        let new_keys: HashSet<ServiceKey> = virtuals.iter().map(|v| v.key).collect();
        self.helpers = wanted_helpers(&virtuals, &checks);
        self.virtuals = virtuals;
        self.checks = checks;
        self.check_index = check_index;
        self.readdquiescent = config.globals.readdquiescent;
        self.config = config;
        for (v, old_fallback) in old_fallbacks.into_iter().enumerate() {
            self.adopt(v, old_fallback, now, &mut out);
        }
        for old in &old_virtuals {
            if new_keys.contains(&old.key) || !self.observed.contains_key(&old.key) {
                continue;
            }
            self.emit(Op::DelService(old.key), &mut out);
            log_event(
                &mut out,
                self.state,
                old,
                text::purged_virtual(Phase::Start, &old.text),
            );
        }
        self.sync_helpers(&mut out);
        out
    }

    /// Shutdown: for each virtual with `cleanstop=yes`, delete the reals that are up, then
    /// the virtual (which takes quiesced reals and the fallback with it). `cleanstop=no`
    /// leaves everything serving. Unrelated services are never touched.
    ///
    /// With `fallbackcommandonstop=yes` each virtual's `fallbackcommand` then runs with
    /// `start` (unless its last run already was `start`): the director no longer sends
    /// anything to the reals.
    pub fn stop(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.state = DaemonState::Stopping;
        for v in 0..self.virtuals.len() {
            self.stop_virtual(v, &mut out);
        }
        // Helpers carry only our own checks: they go whatever `cleanstop` says.
        for key in self.helper_keys_present(|_| true) {
            self.emit(Op::DelService(key), &mut out);
        }
        if self.config.globals.fallbackcommandonstop {
            for v in 0..self.virtuals.len() {
                self.virtuals[v].up = 0;
                self.fallback_command(v, &mut out);
            }
        }
        out
    }

    fn stop_virtual(&mut self, v: usize, out: &mut Vec<Action>) {
        {
            let virt = &self.virtuals[v];
            if !virt.cleanstop {
                return;
            }
            let Some(entry) = self.observed.get(&virt.key) else {
                return;
            };
            let mut ops = Vec::new();
            for real in virt.reals.iter().filter(|r| r.health == Health::Up) {
                if let Some(found) = find_dest(entry, real) {
                    ops.push((
                        Op::DelDest {
                            service: virt.key,
                            ip: real.dest.ip,
                            port: found.spec.port,
                        },
                        text::purged_real(Phase::Stop, &real_label(real, &found), &virt.text),
                    ));
                }
            }
            ops.push((
                Op::DelService(virt.key),
                text::purged_virtual(Phase::Stop, &virt.text),
            ));
            for (op, line) in ops {
                self.emit(op, out);
                log_event(out, self.state, &self.virtuals[v], line);
            }
        }
    }

    /// Time passes: `emailalertfreq` reminders (`Inaccessible real server: …`) for reals
    /// that stay down.
    pub fn tick(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        let state = self.state;
        for virt in &mut self.virtuals {
            let freq = Duration::from_secs(u64::from(virt.alerts.emailalertfreq));
            if freq.is_zero() {
                continue;
            }
            let mut due = Vec::new();
            for real in &mut virt.reals {
                if let Some(last) = real.reminded
                    && now.saturating_sub(last) >= freq
                {
                    real.reminded = Some(now);
                    due.push(text::inaccessible(&real.text, &virt.text));
                }
            }
            for message in due {
                out.extend(alert_for(state, virt, message));
            }
        }
        out
    }

    // ---- transitions ----

    fn apply_result(
        &mut self,
        v: usize,
        r: usize,
        result: CheckResult<'_>,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let virt = &mut self.virtuals[v];
        let (failurecount, risecount) = (virt.failurecount.max(1), virt.risecount.max(1));
        let real = &mut virt.reals[r];
        real.maintenance = result == CheckResult::Maintenance;
        match result {
            CheckResult::Maintenance => {
                real.rises = 0;
                if real.health != Health::Down {
                    self.went_down(v, r, now, out);
                }
            }
            CheckResult::Up(_) => {
                if real.failures > 0 {
                    real.failures = 0;
                    out.push(Action::Log(text::reset_failures(&real.text, &virt.id)));
                }
                if real.health != Health::Up {
                    real.rises += 1;
                    if real.rises >= risecount {
                        self.went_up(v, r, now, out);
                    }
                }
            }
            CheckResult::Down(_) => {
                real.rises = 0;
                if real.health == Health::Up {
                    real.failures += 1;
                    if real.failures < failurecount {
                        out.push(Action::Log(text::soft_failure(
                            &real.text,
                            &virt.id,
                            real.failures,
                            failurecount,
                        )));
                    } else {
                        self.went_down(v, r, now, out);
                    }
                } else if real.health.is_unchecked() {
                    self.went_down(v, r, now, out);
                }
            }
        }
    }

    fn went_up(&mut self, v: usize, r: usize, now: Duration, out: &mut Vec<Action>) {
        let virt = &mut self.virtuals[v];
        let real = &mut virt.reals[r];
        real.health = Health::Up;
        real.rises = 0;
        real.reminded = None;
        real.transitions += 1;
        real.last_transition = Some(now);
        if !real.drained {
            virt.up += 1;
        }
        self.sync_real(v, r, out);
        self.sync_fallback(v, out);
        self.fallback_command(v, out);
    }

    fn went_down(&mut self, v: usize, r: usize, now: Duration, out: &mut Vec<Action>) {
        let virt = &mut self.virtuals[v];
        let real = &mut virt.reals[r];
        if real.serving() {
            virt.up -= 1;
        }
        if real.health != Health::Down {
            real.transitions += 1;
            real.last_transition = Some(now);
        }
        real.health = Health::Down;
        real.rises = 0;
        if virt.alerts.emailalertfreq > 0 {
            real.reminded = Some(now);
        }
        self.sync_real(v, r, out);
        self.sync_fallback(v, out);
        self.fallback_command(v, out);
    }

    /// Start-up/reload for one virtual: service, initial health of fresh reals, reals,
    /// purge of untracked entries, fallback and fallback command.
    fn adopt(
        &mut self,
        v: usize,
        old_fallback: Option<DestSpec>,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        self.sync_service(v, out);
        let entry = self.observed.get(&self.virtuals[v].key);
        let virt = &mut self.virtuals[v];
        for real in &mut virt.reals {
            if real.health != Health::New {
                continue;
            }
            let known = self.checks[real.check].last;
            real.health = if real.checktype == CheckType::On {
                Health::Up
            } else if let Some(up) = known.filter(|_| real.checktype != CheckType::Off) {
                if up { Health::Up } else { Health::Down }
            } else {
                let present = entry
                    .and_then(|e| find_dest(e, real))
                    .is_some_and(|d| d.spec.weight > 0);
                if present {
                    Health::Up
                } else {
                    Health::Unchecked
                }
            };
            if real.health == Health::Down && virt.alerts.emailalertfreq > 0 {
                real.reminded = Some(now);
            }
        }
        virt.up = virt.reals.iter().filter(|r| r.serving()).count();
        for r in 0..self.virtuals[v].reals.len() {
            self.sync_real(v, r, out);
        }
        self.purge_untracked(v, old_fallback, out);
        self.sync_fallback(v, out);
        // At start-up only `start` can be due (stock runs nothing when a real is up); after
        // a reload, a virtual left in fallback mode whose reals are now up gets its `stop`.
        let virt = &self.virtuals[v];
        if virt.up == 0 || virt.last_command == Some(FallbackAction::Start) {
            self.fallback_command(v, out);
        }
    }

    // ---- desired state against the table ----

    fn sync_service(&mut self, v: usize, out: &mut Vec<Action>) {
        let virt = &self.virtuals[v];
        let (op, line) = match self.observed.get(&virt.key) {
            None => (
                Op::AddService(virt.spec.clone()),
                text::added_virtual(&virt.text),
            ),
            Some(entry) if !service_matches(&entry.spec, &virt.spec) => (
                Op::EditService(virt.spec.clone()),
                text::changed_virtual(&virt.text),
            ),
            Some(_) => return,
        };
        self.emit(op, out);
        out.push(Action::Log(line));
    }

    fn sync_real(&mut self, v: usize, r: usize, out: &mut Vec<Action>) {
        let virt = &self.virtuals[v];
        let real = &virt.reals[r];
        let want = match (real.health, virt.quiescent) {
            (Health::Up, _) if real.drained => Want::Drained,
            (Health::Up, _) => Want::Present,
            (Health::Down, true) => Want::Quiesced,
            (Health::Down, false) => Want::Absent,
            (Health::New | Health::Unchecked, true) => Want::ReaddOnly,
            (Health::New | Health::Unchecked, false) => Want::AsFound,
        };
        let Some(entry) = self.observed.get(&virt.key) else {
            return;
        };
        let found = find_dest(entry, real);
        let key = virt.key;
        let at = |port: u16| DestSpec { port, ..real.dest };
        let zero = |port: u16| DestSpec {
            port,
            weight: 0,
            upper: 0,
            lower: 0,
            ..real.dest
        };
        let (op, line) = match (want, found) {
            (Want::Present, None) => (
                Op::AddDest(key, real.dest),
                text::added(Tag::Real, &real.text, &virt.text, real.dest.weight),
            ),
            (Want::Present, Some(e)) if !dest_matches(&e, &real.dest) => (
                Op::EditDest(key, at(e.spec.port)),
                text::restored(
                    Tag::Real,
                    &real_label(real, &e),
                    &virt.text,
                    real.dest.weight,
                ),
            ),
            (Want::Drained, None) => (
                Op::AddDest(key, zero(real.dest.port)),
                text::added(Tag::Real, &real.text, &virt.text, 0),
            ),
            (Want::Drained, Some(e)) if !dest_quiesced(&e, &real.dest) => (
                Op::QuiesceDest(key, zero(e.spec.port)),
                text::drained(&real_label(real, &e), &virt.text),
            ),
            (Want::Quiesced, Some(e)) if !dest_quiesced(&e, &real.dest) => (
                Op::QuiesceDest(key, zero(e.spec.port)),
                text::quiescent(Tag::Real, &real_label(real, &e), &virt.text),
            ),
            (Want::Quiesced | Want::ReaddOnly, None) if self.readdquiescent => (
                Op::ReaddQuiescedDest(key, zero(real.dest.port)),
                text::readd_quiescent(Tag::Real, &real.text, &virt.text),
            ),
            (Want::Absent, Some(e)) => (
                Op::DelDest {
                    service: key,
                    ip: real.dest.ip,
                    port: e.spec.port,
                },
                text::deleted(Tag::Real, &real_label(real, &e), &virt.text),
            ),
            _ => return,
        };
        self.emit(op, out);
        log_event(out, self.state, &self.virtuals[v], line);
    }

    /// The fallback is in the table exactly while no real is up; never quiesced.
    fn sync_fallback(&mut self, v: usize, out: &mut Vec<Action>) {
        let virt = &self.virtuals[v];
        let Some(fb) = virt.fallback else {
            return;
        };
        let Some(entry) = self.observed.get(&virt.key) else {
            return;
        };
        let found = find_spec(entry, fb.ip, fb.port, mapped_port(virt.key, &fb));
        let fb_text = fb.addr().to_string();
        let (op, line) = match (virt.up == 0, found) {
            (true, None) => (
                Op::AddDest(virt.key, fb),
                text::added(Tag::Fallback, &fb_text, &virt.text, 1),
            ),
            (true, Some(e)) if !dest_matches(&e, &fb) => (
                Op::EditDest(
                    virt.key,
                    DestSpec {
                        port: e.spec.port,
                        ..fb
                    },
                ),
                text::restored(Tag::Fallback, &label(fb.ip, fb.port, &e), &virt.text, 1),
            ),
            (false, Some(e)) => (
                Op::DelDest {
                    service: virt.key,
                    ip: fb.ip,
                    port: e.spec.port,
                },
                text::deleted(Tag::Fallback, &label(fb.ip, fb.port, &e), &virt.text),
            ),
            _ => return,
        };
        self.emit(op, out);
        log_event(out, self.state, &self.virtuals[v], line);
    }

    /// `start` when no real is up, `stop` when one is, never the same twice in a row.
    fn fallback_command(&mut self, v: usize, out: &mut Vec<Action>) {
        let virt = &mut self.virtuals[v];
        let Some(command) = &virt.fallbackcommand else {
            return;
        };
        let action = if virt.up == 0 {
            FallbackAction::Start
        } else {
            FallbackAction::Stop
        };
        if virt.last_command == Some(action) {
            return;
        }
        virt.last_command = Some(action);
        let virtual_arg = match virt.key {
            ServiceKey::Fwmark { mark, .. } => format!("{mark}:0"),
            ServiceKey::Inet { .. } => virt.text.clone(),
        };
        out.push(Action::RunFallbackCommand(FallbackCommand {
            command: command.clone(),
            action,
            virtual_arg,
            protocol: virt.protocol,
        }));
    }

    /// Start-up and reload only: delete kernel entries of this virtual that no configured
    /// real (nor the fallback) accounts for.
    fn purge_untracked(&mut self, v: usize, old_fallback: Option<DestSpec>, out: &mut Vec<Action>) {
        let virt = &self.virtuals[v];
        let Some(entry) = self.observed.get(&virt.key) else {
            return;
        };
        let mut tracked: HashSet<(IpAddr, u16)> = HashSet::with_capacity(virt.reals.len() * 2 + 2);
        for real in &virt.reals {
            tracked.insert((real.dest.ip, real.dest.port));
            if let Some(alt) = real.alt_port {
                tracked.insert((real.dest.ip, alt));
            }
        }
        if let Some(fb) = virt.fallback {
            tracked.insert((fb.ip, fb.port));
            if let Some(alt) = mapped_port(virt.key, &fb) {
                tracked.insert((fb.ip, alt));
            }
        }
        let old_fallback = old_fallback.filter(|old| Some(*old) != virt.fallback);
        let mut purges = Vec::new();
        for dest in &entry.dests {
            let (ip, port) = (dest.spec.ip, dest.spec.port);
            if tracked.contains(&(ip, port)) {
                continue;
            }
            let was_fallback = old_fallback.is_some_and(|old| {
                old.ip == ip && (old.port == port || mapped_port(virt.key, &old) == Some(port))
            });
            let rtext = SocketAddr::new(ip, port).to_string();
            let line = if was_fallback {
                text::deleted(Tag::Fallback, &rtext, &virt.text)
            } else {
                text::purged_real(Phase::Start, &rtext, &virt.text)
            };
            purges.push((
                Op::DelDest {
                    service: virt.key,
                    ip,
                    port,
                },
                line,
            ));
        }
        for (op, line) in purges {
            self.emit(op, out);
            log_event(out, self.state, &self.virtuals[v], line);
        }
    }

    fn monitor(
        &self,
        v: usize,
        r: usize,
        spec: &CheckSpec,
        result: CheckResult<'_>,
        out: &mut Vec<Action>,
    ) {
        let virt = &self.virtuals[v];
        let (Some(path), Some(identity)) = (&virt.monitorfile, &virt.reals[r].monitor_identity)
        else {
            return;
        };
        let (up, message) = match result {
            CheckResult::Up(m) => (true, m),
            CheckResult::Down(m) => (false, m),
            CheckResult::Maintenance => (false, text::IN_MAINTENANCE),
        };
        if result != CheckResult::Maintenance && !text::monitor_logs(spec, up) {
            return;
        }
        out.push(Action::Monitor {
            path: path.clone(),
            line: text::monitor_line(identity, up, message),
        });
    }

    /// The `checkpath=forwarding` helpers as wanted: each present with its one real and
    /// nothing else; any other service in the helper mark range (a crash's or an older
    /// configuration's leftover) deleted. Start-up, reload and resync share it.
    fn sync_helpers(&mut self, out: &mut Vec<Action>) {
        let wanted = std::mem::take(&mut self.helpers);
        for (service, dest) in &wanted {
            let key = service.key;
            let Some(entry) = self.observed.get(&key) else {
                self.emit(Op::AddService(service.clone()), out);
                self.emit(Op::AddDest(key, *dest), out);
                continue;
            };
            let edit = !service_matches(&entry.spec, service);
            let same = |d: &DestEntry| (d.spec.ip, d.spec.port) == (dest.ip, dest.port);
            let found = entry.dests.iter().find(|d| same(d)).copied();
            let strays: Vec<(IpAddr, u16)> = entry
                .dests
                .iter()
                .filter(|d| !same(d))
                .map(|d| (d.spec.ip, d.spec.port))
                .collect();
            if edit {
                self.emit(Op::EditService(service.clone()), out);
            }
            for (ip, port) in strays {
                let op = Op::DelDest {
                    service: key,
                    ip,
                    port,
                };
                self.emit(op, out);
            }
            match found {
                None => self.emit(Op::AddDest(key, *dest), out),
                Some(have) if !dest_matches(&have, dest) => {
                    self.emit(Op::EditDest(key, *dest), out)
                }
                Some(_) => {}
            }
        }
        let keep: HashSet<ServiceKey> = wanted.iter().map(|(s, _)| s.key).collect();
        self.helpers = wanted;
        for key in self.helper_keys_present(|k| !keep.contains(k)) {
            self.emit(Op::DelService(key), out);
        }
    }

    /// The services in the table, in the helper mark range and not a configured virtual,
    /// that `pick` selects, in mark order.
    fn helper_keys_present(&self, pick: impl Fn(&ServiceKey) -> bool) -> Vec<ServiceKey> {
        let configured: HashSet<ServiceKey> = self.virtuals.iter().map(|v| v.key).collect();
        let mut keys: Vec<ServiceKey> = self
            .observed
            .keys()
            .filter(|k| helpers::is_helper_key(&self.config, k))
            .filter(|k| !configured.contains(k) && pick(k))
            .copied()
            .collect();
        keys.sort();
        keys
    }

    /// Hand an operation to the shell and assume it worked until a dump says otherwise.
    fn emit(&mut self, op: Op, out: &mut Vec<Action>) {
        apply_to(&mut self.observed, &op);
        out.push(Action::Apply(op));
    }
}

/// Apply `op` to `table` as the kernel would: the model behind [`Director`]'s belief,
/// public so tests, benchmarks and the userspace engine can simulate a kernel with it.
/// Operations the kernel would refuse (adding what exists, editing what does not) leave
/// the table unchanged.
pub fn apply_op(table: &mut Table, op: &Op) {
    let mut map = observe(table);
    apply_to(&mut map, op);
    let order: Vec<ServiceKey> = table.services.iter().map(|s| s.spec.key).collect();
    let mut services = Vec::with_capacity(map.len());
    for key in order {
        if let Some(entry) = map.remove(&key) {
            services.push(entry);
        }
    }
    // A new service goes last, as the kernel lists it.
    services.extend(map.into_values());
    table.services = services;
}

fn apply_to(observed: &mut HashMap<ServiceKey, ServiceEntry>, op: &Op) {
    let dest_at = |entry: &mut ServiceEntry, ip: IpAddr, port: u16| {
        entry
            .dests
            .iter()
            .position(|d| d.spec.ip == ip && d.spec.port == port)
    };
    match op {
        Op::AddService(spec) => {
            observed
                .entry(spec.key)
                .or_insert_with(|| ServiceEntry::new(spec.clone()));
        }
        Op::EditService(spec) => {
            if let Some(entry) = observed.get_mut(&spec.key) {
                entry.spec = spec.clone();
            }
        }
        Op::DelService(key) => {
            observed.remove(key);
        }
        Op::AddDest(key, dest) | Op::ReaddQuiescedDest(key, dest) => {
            if let Some(entry) = observed.get_mut(key)
                && dest_at(entry, dest.ip, dest.port).is_none()
            {
                entry.dests.push(DestEntry {
                    spec: *dest,
                    local: false,
                    active_conns: 0,
                    inactive_conns: 0,
                });
            }
        }
        Op::EditDest(key, dest) | Op::QuiesceDest(key, dest) => {
            if let Some(entry) = observed.get_mut(key)
                && let Some(i) = dest_at(entry, dest.ip, dest.port)
            {
                entry.dests[i].spec = *dest;
            }
        }
        Op::DelDest { service, ip, port } => {
            if let Some(entry) = observed.get_mut(service)
                && let Some(i) = dest_at(entry, *ip, *port)
            {
                entry.dests.remove(i);
            }
        }
    }
}

fn observe(table: &Table) -> HashMap<ServiceKey, ServiceEntry> {
    table
        .services
        .iter()
        .map(|s| (s.spec.key, s.clone()))
        .collect()
}

/// The kernel entry of a configured real: under its own port, else under the virtual's
/// port when the kernel maps it (§4.5).
fn find_dest(entry: &ServiceEntry, real: &Real) -> Option<DestEntry> {
    find_spec(entry, real.dest.ip, real.dest.port, real.alt_port)
}

fn find_spec(entry: &ServiceEntry, ip: IpAddr, port: u16, alt: Option<u16>) -> Option<DestEntry> {
    let at = |p: u16| {
        entry
            .dests
            .iter()
            .find(|d| d.spec.ip == ip && d.spec.port == p)
            .copied()
    };
    at(port).or_else(|| alt.and_then(at))
}

/// `RIP:PORT`, or `RIP:VPORT mapped from RIP:RPORT` when the kernel lists the real under
/// the virtual's port.
fn real_label(real: &Real, found: &DestEntry) -> String {
    label(real.dest.ip, real.dest.port, found)
}

fn label(ip: IpAddr, port: u16, found: &DestEntry) -> String {
    if found.spec.port == port {
        SocketAddr::new(ip, port).to_string()
    } else {
        format!(
            "{} mapped from {}",
            SocketAddr::new(ip, found.spec.port),
            SocketAddr::new(ip, port)
        )
    }
}

/// A log line that is also an alert to the virtual's `emailalert` recipients.
fn log_event(out: &mut Vec<Action>, state: DaemonState, virt: &Virtual, line: String) {
    let alert = alert_for(state, virt, line.clone());
    out.push(Action::Log(line));
    out.extend(alert);
}

fn alert_for(state: DaemonState, virt: &Virtual, message: String) -> Option<Action> {
    let recipients = virt.alerts.emailalert.as_ref()?;
    if !state.alerts_allowed(&virt.alerts.emailalertstatus) {
        return None;
    }
    Some(Action::Alert(Alert {
        message,
        recipients: recipients.clone(),
        smtp: virt.alerts.smtp.clone(),
        servicename: virt.servicename.clone(),
        comment: virt.comment.clone(),
        state,
    }))
}

type Built = (Vec<Virtual>, Vec<Check>, HashMap<Arc<CheckSpec>, usize>);

/// The helper service of every check that goes through the forwarding path (one user
/// each: the mark is part of the check's identity).
fn wanted_helpers(virtuals: &[Virtual], checks: &[Check]) -> Vec<(ServiceSpec, DestSpec)> {
    checks
        .iter()
        .filter_map(|c| {
            let &(v, r) = c.users.first()?;
            helpers::helper(&c.spec, virtuals[v].reals[r].dest.forward)
        })
        .collect()
}

/// Set each real's drained flag from `drains` (before health is adopted).
fn mark_drained(virtuals: &mut [Virtual], drains: &[DrainTarget]) {
    for virt in virtuals {
        for real in &mut virt.reals {
            real.drained = drains.iter().any(|d| d.matches(&virt.id, &real.dest));
        }
    }
}

/// The per-virtual and per-check structures of a config. Reals start fresh (no health).
/// `previous` are the checks before a reload: a check that stays keeps its last verdict
/// and its Arc (the scheduler's key and the observer's record are that allocation, so
/// they stay one copy, found by address).
// CheckSpec holds a compiled regex behind an Arc, but hashes and compares by the
// pattern's source text only, so keys never change under the map.
#[allow(clippy::mutable_key_type)]
fn build(config: &Config, out: &mut Vec<Action>, previous: &[Check]) -> Built {
    let previous: HashMap<&CheckSpec, &Check> = previous.iter().map(|c| (&*c.spec, c)).collect();
    let mut virtuals = Vec::with_capacity(config.virtuals.len());
    let mut checks: Vec<Check> = Vec::new();
    let mut index: HashMap<Arc<CheckSpec>, usize> = HashMap::new();
    let routes = helpers::check_routes(config);
    for (vs, routes) in config.virtuals.iter().zip(&routes) {
        let v = virtuals.len();
        let mut virt = build_virtual(vs);
        let mut seen: HashSet<(IpAddr, u16)> = HashSet::with_capacity(vs.reals.len());
        for (rs, route) in vs.reals.iter().zip(routes) {
            if !seen.insert((rs.ip, rs.port)) {
                out.push(Action::Log(text::duplicate_real(
                    &SocketAddr::new(rs.ip, rs.port).to_string(),
                    &virt.text,
                )));
                continue;
            }
            let mut spec = CheckSpec::for_real(vs, rs);
            if let Some(route) = *route {
                spec = spec.through(route);
            }
            let r = virt.reals.len();
            let c = match index.get(&spec) {
                Some(&c) => {
                    checks[c].interval = checks[c].interval.min(vs.checkinterval);
                    c
                }
                None => {
                    let (spec, last) = match previous.get(&spec) {
                        Some(old) => (Arc::clone(&old.spec), old.last),
                        None => (Arc::new(spec), None),
                    };
                    index.insert(Arc::clone(&spec), checks.len());
                    checks.push(Check {
                        spec,
                        users: Vec::new(),
                        interval: vs.checkinterval,
                        last,
                    });
                    checks.len() - 1
                }
            };
            checks[c].users.push((v, r));
            let dest = real_dest(rs);
            let monitor_identity = vs.monitorfile.as_ref().map(|_| {
                text::monitor_identity(&checks[c].spec, vs.check.checkport, rs.weight, rs.forward)
            });
            virt.reals.push(Real {
                dest,
                alt_port: None,
                text: SocketAddr::new(rs.ip, rs.port).to_string(),
                check: c,
                checktype: vs.check.checktype,
                health: Health::New,
                failures: 0,
                rises: 0,
                reminded: None,
                monitor_identity,
                drained: false,
                maintenance: false,
                transitions: 0,
                last_transition: None,
            });
        }
        // A mapped port is only an alias when no configured real owns it outright.
        for i in 0..virt.reals.len() {
            let alt = mapped_port(virt.key, &virt.reals[i].dest);
            virt.reals[i].alt_port = alt.filter(|&p| !seen.contains(&(virt.reals[i].dest.ip, p)));
        }
        // A fallback that is also a real would be deleted when that real comes up.
        if let Some(fb) = virt.fallback
            && seen.contains(&(fb.ip, fb.port))
        {
            virt.fallback = None;
        }
        virtuals.push(virt);
    }
    (virtuals, checks, index)
}

fn build_virtual(vs: &VirtualService) -> Virtual {
    Virtual {
        key: service_key(vs),
        spec: service_spec(vs),
        id: vs.id(),
        text: vs.virtual_text(),
        protocol: vs.protocol.as_str(),
        fallback: vs.fallback.as_ref().map(|fb| fallback_dest(vs, fb)),
        fallbackcommand: vs.fallbackcommand.clone(),
        last_command: None,
        quiescent: vs.quiescent,
        cleanstop: vs.cleanstop,
        failurecount: vs.failurecount,
        risecount: vs.risecount,
        alerts: vs.alerts.clone(),
        servicename: vs.servicename.clone(),
        comment: vs.comment.clone(),
        monitorfile: vs.monitorfile.clone(),
        reals: Vec::with_capacity(vs.reals.len()),
        up: 0,
    }
}
