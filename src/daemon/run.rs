//! The main loop: the imperative shell around the pure [`Director`].
//!
//! ```text
//! signals ──┐   check results (scheduler) ──┐   1 s tick (reminders, autoreload, resync)
//!           ▼                               ▼                 ▼
//!        Director::{reload, stop}   Director::on_check   Director::{tick, on_table}
//!                         └────────────── actions ───────────────┘
//!                 engine ops · log lines · commands · alerts · monitorfile lines
//! ```
//!
//! The engine runs in a task of its own ([`super::worker`]): the loop hands it operations
//! and never waits for them, so a hung `ipvsadm` or a slow kernel holds up neither check
//! results nor the control socket nor signals. Engine errors never stop the loop: the
//! worker reports them, they are logged, and the table is dumped again and handed to
//! [`Director::on_table`] on a later pass (after 1 s, doubling up to 60 s while errors
//! persist, back to 1 s once a resync finds nothing to fix), so the kernel converges on
//! what the director wants.

// CheckSpec holds a compiled regex behind an Arc but hashes and compares by the pattern's
// text, so it is a sound map key.
#![allow(clippy::mutable_key_type)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ldirectord_checks::scheduler::{self, Scheduler, Timing};
use ldirectord_checks::{BoxFuture, CheckSpec, Checker, Outcome};
use ldirectord_parsers::config::{self, Config, Diagnostic, Parsed};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::accept_local::AcceptLocal;
use super::control::{Control, Pending};
use super::drain::is_drain_file;
use super::dynamic::{Dynamic, Refreshed};
use super::effects::{CommandQueue, Mailer, append_monitor};
use super::logging::{Destination, LogHandle};
use super::metrics::Metrics;
use super::notify::{self, Notifier};
use super::observe::Observer;
use super::watch::FileWatch;
use super::worker::{Report, Worker};
use super::{EngineChoice, Options, Ready, SubInstances};
use crate::director::{Action, CheckResult, Director, IN_MAINTENANCE, maintenance_names};
use crate::engine::deferred::{self, Deferred};
use crate::engine::ipvsadm::IpvsadmEngine;
use crate::engine::netlink::{NetlinkEngine, NetlinkOptions};
use crate::engine::sync::{self, SyncError, SyncStart, SyncStop};
use crate::engine::userspace::UserspaceEngine;
use crate::engine::{Engine, EngineError, SyncDaemon, Table};
use crate::instance::claims::Claims;
use crate::instance::pidfile::PidLock;
use crate::instance::{control_socket, drain_file};

/// Longest wait between two resync attempts while engine errors persist.
const MAX_RESYNC_BACKOFF: Duration = Duration::from_secs(60);

/// How often the table is read back to find what was removed behind the daemon's back:
/// one dump of the whole table on the main loop (checks go on meanwhile in their tasks).
const VERIFY_INTERVAL: Duration = Duration::from_secs(10);

/// How long `stop` waits for alerts, commands and engine operations still in flight.
const DRAIN_ON_STOP: Duration = Duration::from_secs(10);

/// How long a reload waits for the table dump before it goes on with the table the
/// director believes the kernel holds (and schedules a resync).
const RELOAD_DUMP_WAIT: Duration = Duration::from_secs(2);

/// What the signal tasks tell the loop.
#[derive(Debug)]
enum Event {
    Terminate(&'static str),
    Reload,
}

/// Build the engine the command line asked for.
pub async fn make_engine(choice: &EngineChoice) -> Result<Box<dyn Engine>, EngineError> {
    match choice {
        EngineChoice::Netlink => NetlinkEngine::connect(NetlinkOptions::default())
            .await
            .map(|e| Box::new(e) as Box<dyn Engine>),
        EngineChoice::Ipvsadm(path) => Ok(Box::new(IpvsadmEngine::new(path.clone()))),
        EngineChoice::Userspace => Ok(Box::new(UserspaceEngine::new())),
        EngineChoice::InMemory(kernel) => {
            NetlinkEngine::with_transport(kernel.clone(), NetlinkOptions::default())
                .await
                .map(|e| Box::new(e) as Box<dyn Engine>)
        }
    }
}

/// The netlink engine, connected on the first call after the `ip_vs` module is loaded.
fn waiting_for_ipvs() -> Box<dyn Engine> {
    Box::new(Deferred::new(
        "netlink",
        Box::new(|| {
            Box::pin(async {
                let engine = NetlinkEngine::connect(NetlinkOptions::default()).await?;
                Ok(Box::new(engine) as Box<dyn Engine>)
            })
        }),
    ))
}

/// stock's wording for a failed engine operation.
pub(super) fn engine_error_text(engine: &str, error: &EngineError) -> String {
    match error {
        EngineError::Command { command, message } => {
            format!("system({command}) failed: {message}")
        }
        EngineError::Rejected { op, message, .. } => format!("IPVS: {op} failed: {message}"),
        EngineError::Unavailable(m) => format!("IPVS is not available: {m}"),
        EngineError::Io(e) => format!("{engine} engine: {e}"),
    }
}

/// Run the daemon until a terminate signal; returns the exit code. `pid` is the held
/// pid-file lock (none in the foreground), removed on an orderly exit.
pub async fn run(
    opts: Options,
    parsed: Parsed,
    log: LogHandle,
    pid: Option<PidLock>,
    mut ready: Ready,
) -> i32 {
    let pid_path = pid.as_ref().map(|p| p.path().to_path_buf());
    let mut events = match spawn_signal_tasks(pid_path) {
        Ok(rx) => rx,
        Err(e) => {
            let msg = format!("cannot install signal handlers: {e}");
            tracing::info!("{msg}");
            ready.fail(&msg);
            return 1;
        }
    };
    // Before anything touches the table: no other live instance manages this file or
    // one of its virtual services (blocks this start-up task up to START_GRACE when one
    // does; nothing else runs yet).
    let claims = match Claims::claim(
        &opts.run_dir,
        &opts.instance,
        &opts.config_path,
        service_keys(&parsed.config),
    ) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            tracing::info!("{msg}");
            ready.fail(&msg);
            if let Some(pid) = pid {
                pid.remove();
            }
            return 1;
        }
    };
    let mut metrics = Metrics::new(opts.engine.name());
    if let Err(e) = metrics.serve(parsed.config.globals.metrics).await {
        let msg = metrics_bind_error(parsed.config.globals.metrics, &e);
        tracing::info!("{msg}");
        ready.fail(&msg);
        if let Some(pid) = pid {
            pid.remove();
        }
        return 1;
    }
    let notify = Notifier::from_env(pid.is_some());
    let (mut engine, waiting) = match make_engine(&opts.engine).await {
        Ok(e) => (e, false),
        Err(EngineError::Unavailable(m))
            if opts.engine == EngineChoice::Netlink
                && deferred::ip_vs_installed_but_not_loaded() =>
        {
            tracing::info!(
                "IPVS is not available: {m}; the ip_vs module is installed but not loaded: \
                 checking the real servers meanwhile and retrying (backoff up to {} s)",
                MAX_RESYNC_BACKOFF.as_secs()
            );
            (waiting_for_ipvs(), true)
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::info!("{msg}");
            ready.fail(&msg);
            return 1;
        }
    };
    // The sync daemon first: when it cannot run, nothing else is started.
    let sync = parsed.config.globals.syncdaemon.clone();
    if let Some(want) = &sync
        && let Err(e) = start_sync(engine.as_mut(), want).await
    {
        let msg = sync_error_text(engine.name(), &e);
        tracing::info!("{msg}");
        ready.fail(&msg);
        return 1;
    }
    // Real servers from `realsource=` directives are selected before the first table.
    let (mut dynamic, refreshed) = Dynamic::new();
    let base = parsed.config;
    dynamic.configure(&base).await;
    let table = match engine.dump().await {
        Ok(t) => t,
        // Converged by the first resync that reads the table.
        Err(EngineError::Unavailable(_)) if waiting => Table::default(),
        Err(e) => {
            let msg = engine_error_text(engine.name(), &e);
            tracing::info!("{msg}");
            ready.fail(&msg);
            return 1;
        }
    };
    let started = Instant::now();
    let control = Control::start(
        &control_socket(&opts.run_dir, &opts.instance),
        base.globals.controlgroup.as_deref(),
        base.globals.maintenancedir.as_deref(),
        &drain_file(&opts.run_dir, &opts.instance),
    );
    let observe = Observer::new(opts.engine.name(), &opts.config_path, started);
    let (director, actions) =
        Director::start_drained(dynamic.derive(&base), &table, control.targets());
    let (results_tx, results) = mpsc::channel(1024);
    let accept_local = AcceptLocal::new(&opts.run_dir, &opts.instance);
    let (worker, reports) = Worker::spawn(engine);
    let mut daemon = Daemon {
        watch: FileWatch::new(&opts.config_path),
        opts,
        log,
        worker,
        reports,
        pending_dump: None,
        sent_since_dump: false,
        director,
        base,
        dynamic,
        started,
        scheduler: Scheduler::new(results_tx),
        maintenancedir: None,
        pending_round: HashSet::new(),
        resync_at: waiting.then(|| Instant::now() + Duration::from_secs(1)),
        resync_backoff: Duration::from_secs(1),
        unavailable: waiting,
        verify_at: Instant::now() + VERIFY_INTERVAL,
        verifying: false,
        commands: CommandQueue::new(),
        mailer: Mailer::default(),
        pid,
        claims,
        sync,
        observe,
        control,
        metrics,
        notify,
        accept_local,
    };
    daemon.accept_local_as_wanted();
    daemon.perform(actions).await;
    // `ready` means the initial table is programmed (each operation is bounded).
    daemon.worker.flush(super::READY_TIMEOUT).await;
    daemon.report_status();
    // Before the pipe's `ready`: systemd must know MAINPID before the invoker exits.
    daemon.notify.ready();
    ready.ok();
    let execute = daemon.director.config().globals.execute.clone();
    for name in &execute {
        daemon.opts.subs.run(name, "start").await;
    }
    daemon.sync_schedule();
    daemon.main_loop(&mut events, results, refreshed).await
}

struct Daemon {
    opts: Options,
    log: LogHandle,
    /// The engine's task.
    worker: Worker,
    reports: mpsc::UnboundedReceiver<Report>,
    /// A resync's dump, asked for and not answered yet.
    pending_dump: Option<oneshot::Receiver<Result<Table, EngineError>>>,
    /// Operations were sent after the pending dump: it will not show them.
    sent_since_dump: bool,
    director: Director,
    /// The configuration as read from the file (the director runs on it plus the real
    /// servers selected by `realsource=` directives).
    base: Config,
    dynamic: Dynamic,
    started: Instant,
    /// Owns the scheduled checks and their timings.
    scheduler: Scheduler<Arc<CheckSpec>>,
    /// `maintenancedir=` the scheduled checks were built with.
    maintenancedir: Option<PathBuf>,
    /// Checks that have not reported since the last start or reload.
    pending_round: HashSet<Arc<CheckSpec>>,
    resync_at: Option<Instant>,
    resync_backoff: Duration,
    /// IPVS was reported unavailable and has not answered since: the same report is not
    /// logged for every operation of every pass.
    unavailable: bool,
    /// When the table is next read back ([`VERIFY_INTERVAL`]).
    verify_at: Instant,
    /// The dump in [`Daemon::pending_dump`] is a read-back, not a resync.
    verifying: bool,
    commands: CommandQueue,
    mailer: Mailer,
    watch: FileWatch,
    pid: Option<PidLock>,
    /// The virtual services this instance manages, in the run dir's registry (released
    /// when the daemon is dropped).
    claims: Claims,
    /// The master sync daemon this director runs (`syncdaemon=`).
    sync: Option<SyncDaemon>,
    /// Last check runs and daemon facts, for `status`.
    observe: Observer,
    /// The control socket's requests and the operators' drains.
    control: Control,
    metrics: Metrics,
    notify: Notifier,
    /// `accept_local` held at 1 while `checkpath=forwarding` helpers exist.
    accept_local: AcceptLocal,
}

/// Start (or adopt) the sync daemon, and log which.
async fn start_sync(engine: &mut dyn Engine, want: &SyncDaemon) -> Result<(), SyncError> {
    sync::check_interface(want)?;
    match sync::ensure(engine, want).await? {
        SyncStart::Started => tracing::info!("Started {want}"),
        SyncStart::Adopted => tracing::info!("Adopted the running {want}"),
    }
    Ok(())
}

fn sync_error_text(engine: &str, error: &SyncError) -> String {
    match error {
        SyncError::Engine(e) => engine_error_text(engine, e),
        other => format!("cannot start the sync daemon: {other}"),
    }
}

/// Stop `old` (if any), start `new` (if any); if `new` cannot start, start `old` again
/// (the next reload retries). Returns the sync daemon that runs.
pub(super) async fn change_sync(
    engine: &mut dyn Engine,
    old: Option<SyncDaemon>,
    new: Option<SyncDaemon>,
) -> Option<SyncDaemon> {
    if let Some(old) = &old {
        stop_sync(engine, old).await;
    }
    let new = new?;
    match start_sync(engine, &new).await {
        Ok(()) => Some(new),
        Err(e) => {
            tracing::info!("{}", sync_error_text(engine.name(), &e));
            let old = old?;
            start_sync(engine, &old).await.is_ok().then_some(old)
        }
    }
}

/// A resync's dump, once it comes; never, when none was asked for.
async fn dump_reply(
    pending: &mut Option<oneshot::Receiver<Result<Table, EngineError>>>,
) -> Result<Table, EngineError> {
    match pending {
        Some(rx) => rx.await.unwrap_or_else(|_| {
            Err(EngineError::Io(std::io::Error::other(
                "the engine task has ended",
            )))
        }),
        None => std::future::pending().await,
    }
}

/// Stop our sync daemon, and log what happened.
async fn stop_sync(engine: &mut dyn Engine, ours: &SyncDaemon) {
    match sync::stop(engine, ours).await {
        Ok(SyncStop::Stopped) => tracing::info!("Stopped {ours}"),
        Ok(SyncStop::NotRunning) => tracing::info!("{ours} was not running any more"),
        Ok(SyncStop::Foreign(other)) => {
            tracing::info!("Left {other} alone: it is not the one this director started")
        }
        Err(e) => tracing::info!("{}", engine_error_text(engine.name(), &e)),
    }
}

impl Daemon {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    async fn main_loop(
        mut self,
        events: &mut mpsc::UnboundedReceiver<Event>,
        mut results: mpsc::Receiver<scheduler::CheckResult<Arc<CheckSpec>>>,
        mut refreshed: mpsc::Receiver<Refreshed>,
    ) -> i32 {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watchdog_period = self.notify.watchdog_period();
        // Off: a period that never comes (the branch is disabled anyway).
        let mut watchdog =
            tokio::time::interval(watchdog_period.unwrap_or(Duration::from_secs(86_400)));
        let signal = loop {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(Event::Terminate(name)) => break name,
                    Some(Event::Reload) => {
                        tracing::info!("Reloading Linux Director Daemon config on signal");
                        self.reload().await;
                    }
                    None => break "TERM",
                },
                Some(result) = results.recv() => self.on_result(result).await,
                Some(request) = self.control.requests.recv() => self.on_control(request).await,
                Some(report) = self.reports.recv() => self.on_report(report),
                dumped = dump_reply(&mut self.pending_dump), if self.pending_dump.is_some() => {
                    self.pending_dump = None;
                    self.on_dump(dumped).await;
                }
                Some(r) = refreshed.recv() => {
                    if self.dynamic.on_refreshed(r) {
                        self.apply_sources().await;
                    }
                }
                _ = tick.tick() => {
                    self.dynamic.start_due();
                    let mut actions = self.director.tick(self.now());
                    actions.extend(self.control.poll(&mut self.director));
                    self.perform(actions).await;
                    self.poll_config().await;
                    self.maybe_resync().await;
                    self.maybe_verify();
                    self.metrics.observe(&self.director, false);
                    self.report_status();
                }
                _ = watchdog.tick(), if watchdog_period.is_some() => self.notify.watchdog(),
            }
        };
        self.stop(signal).await
    }

    /// Perform the core's actions in order; engine operations go to the engine's task,
    /// which reports each one ([`Daemon::on_report`]).
    async fn perform(&mut self, actions: Vec<Action>) {
        let acted = !actions.is_empty();
        let mut ops = Vec::new();
        for action in actions {
            match action {
                Action::Apply(op) => ops.push(op),
                Action::Log(line) => tracing::info!("{line}"),
                Action::RunFallbackCommand(cmd) => {
                    let user = self.director.config().globals.scriptuser.clone();
                    self.commands.run(cmd.shell_line(), user);
                }
                Action::Alert(alert) => {
                    let from = self.director.config().globals.emailalertfrom.clone();
                    self.mailer.send(&alert, from.as_deref());
                }
                Action::Monitor { path, line } => append_monitor(&path, &line),
            }
        }
        if !ops.is_empty() {
            self.sent_since_dump |= self.pending_dump.is_some();
            self.worker.apply(ops);
        }
        self.metrics.observe(&self.director, acted);
    }

    /// Log an engine error; IPVS being unavailable once per outage, not for every try.
    fn engine_error(&mut self, e: &EngineError) {
        let repeated = matches!(e, EngineError::Unavailable(_)) && self.unavailable;
        self.unavailable = matches!(e, EngineError::Unavailable(_));
        if !repeated {
            tracing::info!("{}", engine_error_text(self.worker.name(), e));
        }
    }

    /// The engine's task tried an operation (or gave up on some).
    fn on_report(&mut self, report: Report) {
        match report {
            Report::Applied(op, applied) => {
                self.metrics.engine_op(&op, applied.is_ok());
                match applied {
                    Err(e) => {
                        self.engine_error(&e);
                        self.engine_failed();
                    }
                    // Nothing failed since the last resync: the streak is over, and the
                    // next failure is retried after 1 s again.
                    Ok(()) if self.resync_at.is_none() && self.pending_dump.is_none() => {
                        self.unavailable = false;
                        self.resync_backoff = Duration::from_secs(1);
                    }
                    Ok(()) => self.unavailable = false,
                }
            }
            Report::Skipped(n) => {
                tracing::info!(
                    "{} engine: {n} more operation(s) not tried after that failure; \
                     the resync applies what is still missing",
                    self.worker.name()
                );
                self.engine_failed();
            }
        }
    }

    /// Schedule a resync, backing off while failures go on.
    fn engine_failed(&mut self) {
        if self.resync_at.is_none() {
            self.resync_at = Some(Instant::now() + self.resync_backoff);
            self.resync_backoff = (self.resync_backoff * 2).min(MAX_RESYNC_BACKOFF);
        }
    }

    /// `STATUS=` for systemd: virtual services and reals up.
    fn report_status(&mut self) {
        if !self.notify.is_on() {
            return;
        }
        let status = self.director.status();
        let reals = || status.iter().flat_map(|v| &v.reals);
        let up = reals()
            .filter(|r| r.health == crate::director::Health::Up)
            .count();
        self.notify
            .status(notify::status_line(status.len(), up, reals().count()));
    }

    /// After engine errors: ask for a dump (answered in [`Daemon::on_dump`]).
    async fn maybe_resync(&mut self) {
        let Some(at) = self.resync_at else { return };
        if Instant::now() < at || self.pending_dump.is_some() {
            return;
        }
        self.resync_at = None;
        self.sent_since_dump = false;
        self.pending_dump = Some(self.worker.request_dump());
    }

    /// A resync's dump: let the core converge on it. A failed dump backs off; a dump
    /// that operations sent meanwhile have already overtaken is asked for again.
    async fn on_dump(&mut self, dumped: Result<Table, EngineError>) {
        let verifying = std::mem::take(&mut self.verifying);
        self.metrics.engine_dump(dumped.is_ok());
        match dumped {
            // A read-back overtaken by operations proves nothing: the next one looks again.
            Ok(_) if self.sent_since_dump && verifying => {}
            Ok(_) if self.sent_since_dump => {
                self.resync_at.get_or_insert(Instant::now());
            }
            Ok(table) => {
                self.unavailable = false;
                if verifying {
                    // Hand-set weights are left alone while nothing is missing.
                    let missing = self.director.missing_from(&table);
                    if missing.is_empty() {
                        return;
                    }
                    tracing::info!(
                        "IPVS table changed outside ldirectord: {} removed; restoring",
                        missing.join(", ")
                    );
                }
                let actions = self.director.on_table(&table);
                if !actions.iter().any(|a| matches!(a, Action::Apply(_))) {
                    // Converged: the next failure starts again from 1 s.
                    self.resync_backoff = Duration::from_secs(1);
                }
                self.perform(actions).await;
            }
            Err(e) => {
                self.engine_error(&e);
                self.engine_failed();
            }
        }
    }

    /// Every [`VERIFY_INTERVAL`] while no resync is due: a dump, asked of the engine's task
    /// like a resync's (the loop never waits for it); what the director had put in and
    /// someone removed (stock leaves it missing until a reload, §4.5) is reported and
    /// restored, with the rest of the table, as after an engine error ([`Daemon::on_dump`]).
    fn maybe_verify(&mut self) {
        let now = Instant::now();
        if self.resync_at.is_some() || self.pending_dump.is_some() || now < self.verify_at {
            return;
        }
        self.verify_at = now + VERIFY_INTERVAL;
        self.sent_since_dump = false;
        self.verifying = true;
        self.pending_dump = Some(self.worker.request_dump());
    }

    async fn on_result(&mut self, result: scheduler::CheckResult<Arc<CheckSpec>>) {
        if !self.scheduler.contains(&result.key) {
            return; // in flight across a reload that removed it
        }
        let now = self.now();
        self.observe.on_check(&result.key, &result.outcome, now);
        self.metrics.check(&result.key, &result.outcome);
        self.metrics.check_lateness(result.lateness());
        let check = CheckResult::from(&result.outcome);
        let actions = self.director.on_check(&result.key, check, now);
        self.perform(actions).await;
        if self.pending_round.remove(&*result.key) && self.pending_round.is_empty() {
            self.director.running();
        }
    }

    /// A control socket request (status, drain, ready).
    async fn on_control(&mut self, request: Pending) {
        let (response, actions) = self
            .control
            .answer(&request, &mut self.director, &self.observe);
        self.perform(actions).await;
        let _ = request.reply.send(response);
    }

    /// Make the scheduler run exactly `Director::checks()`: checks whose spec and timing
    /// are unchanged keep their timers; the round towards `running()` starts afresh.
    fn sync_schedule(&mut self) {
        let globals = &self.director.config().globals;
        let maintenancedir = globals.maintenancedir.clone();
        let (jitter, spread) = (globals.checkjitter, globals.checkspread);
        if maintenancedir != self.maintenancedir {
            self.scheduler.retain(|_| false);
            self.maintenancedir = maintenancedir;
        }
        let want: HashMap<Arc<CheckSpec>, Timing> = self
            .director
            .checks()
            .into_iter()
            .map(|p| (p.spec, Timing::configured(p.interval, jitter, spread)))
            .collect();
        let keep: HashSet<Arc<CheckSpec>> = self
            .scheduler
            .keys()
            .filter(|k| want.get(*k) == self.scheduler.timing(k).as_ref())
            .cloned()
            .collect();
        self.scheduler.retain(|k| keep.contains(k));
        // One host's new checks one after another: they get consecutive slots, which the
        // scheduler spreads over the whole interval (see its module documentation).
        let mut new: Vec<(&Arc<CheckSpec>, &Timing)> = want
            .iter()
            .filter(|(spec, _)| !self.scheduler.contains(spec))
            .collect();
        new.sort_by_key(|(spec, _)| (spec.ip, spec.real_port, spec.port));
        // One batch, so that their first runs ramp up at the pace of the whole population.
        let mut batch = Vec::with_capacity(new.len());
        for (spec, timing) in new {
            let checker = match ldirectord_checks::build(spec) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    tracing::info!(
                        "cannot check real server {}: {e}",
                        SocketAddr::new(spec.ip, spec.real_port)
                    );
                    Arc::new(Failing(e.to_string())) as Arc<dyn Checker>
                }
            };
            let checker: Arc<dyn Checker> = match &self.maintenancedir {
                Some(dir) => Arc::new(Maintained {
                    inner: checker,
                    dir: dir.clone(),
                    names: maintenance_names(spec),
                }),
                None => checker,
            };
            batch.push((Arc::clone(spec), checker, *timing));
        }
        self.scheduler.schedule_all(batch);
        self.observe.retain(|k| want.contains_key(k));
        self.pending_round = want.into_keys().collect();
        if self.pending_round.is_empty() {
            self.director.running();
        }
    }

    /// Autoreload and callback (§4.7), polled every pass.
    async fn poll_config(&mut self) {
        if !self.watch.changed() {
            return;
        }
        let path = self.opts.config_path.display().to_string();
        tracing::info!("Configuration file '{path}' has changed on disk");
        if self.director.config().globals.autoreload {
            tracing::info!(" - reread new configuration");
            self.reload().await;
        } else {
            tracing::info!(" - ignore new configuration");
        }
        if let Some(callback) = self.director.config().globals.callback.clone()
            && is_executable(Path::new(&callback))
        {
            let user = self.director.config().globals.scriptuser.clone();
            self.commands.run(format!("{callback} {path}"), user);
        }
    }

    /// A real-server set changed: hand the director the new configuration, whose reload
    /// applies only the difference (checks of the servers that stayed keep their state).
    async fn apply_sources(&mut self) {
        let config = self.dynamic.derive(&self.base);
        if &config == self.director.config() {
            return;
        }
        let table = self.dump_or_believed().await;
        let actions = self.director.reload(config, &table, self.now());
        self.accept_local_as_wanted();
        self.perform(actions).await;
        self.sync_schedule();
    }

    /// The kernel table for a reload; when the dump fails, what the director believes it
    /// holds (and a resync is scheduled).
    async fn dump_or_believed(&mut self) -> Table {
        let dumped = self.worker.dump_within(RELOAD_DUMP_WAIT).await;
        self.metrics.engine_dump(dumped.is_ok());
        match dumped {
            Ok(t) => {
                self.unavailable = false;
                t
            }
            Err(e) => {
                self.engine_error(&e);
                self.engine_failed();
                self.director.believed_table()
            }
        }
    }

    /// Reload, told to systemd and counted.
    async fn reload(&mut self) {
        self.notify.reloading();
        let ok = self.reload_config().await;
        self.metrics.reload(ok);
        self.report_status();
        self.notify.ready();
    }

    /// Parse fully first; on an error keep everything as it is (and return false).
    async fn reload_config(&mut self) -> bool {
        let path = self.opts.config_path.clone();
        let parsed = match std::fs::read(&path) {
            Ok(bytes) => {
                self.watch.accept(&bytes);
                config::parse_str(&String::from_utf8_lossy(&bytes), &path)
            }
            Err(_) => config::load(&path),
        };
        let pid = std::process::id();
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                log_diagnostics(&e.warnings, pid, &path);
                tracing::info!("{}", e.error.stock_format(pid, &path));
                self.observe
                    .on_reload(Err(e.error.stock_format(pid, &path)));
                return false;
            }
        };
        log_diagnostics(&parsed.warnings, pid, &path);
        if let Err(e) = self.claims.update(&path, service_keys(&parsed.config)) {
            let msg = format!("{e}: the configuration is not reloaded");
            tracing::info!("{msg}");
            self.observe.on_reload(Err(msg));
            return false;
        }
        self.observe.on_reload(Ok(()));
        let old_execute = self.director.config().globals.execute.clone();
        let old_keep = self.director.config().globals.keepcapabilities;
        let table = self.dump_or_believed().await;
        self.dynamic.configure(&parsed.config).await;
        let config = self.dynamic.derive(&parsed.config);
        self.base = parsed.config;
        let now = self.now();
        let actions = self.director.reload(config, &table, now);
        self.accept_local_as_wanted();
        self.perform(actions).await;
        self.log.set(Destination::for_config(
            self.director.config(),
            self.opts.debug,
            &self.opts.instance,
        ));
        self.sync_schedule();
        let keep = self.director.config().globals.keepcapabilities;
        if keep != old_keep {
            // Capabilities dropped at start cannot come back (see daemon::privilege).
            tracing::info!(
                "keepcapabilities={} takes effect at the next start",
                if keep { "yes" } else { "no" }
            );
        }
        let want_sync = self.director.config().globals.syncdaemon.clone();
        if want_sync != self.sync {
            self.sync = self.worker.change_sync(self.sync.take(), want_sync).await;
        }
        let new_execute = self.director.config().globals.execute.clone();
        for name in old_execute.iter().filter(|n| !new_execute.contains(n)) {
            self.opts.subs.run(name, "stop").await;
        }
        for name in &new_execute {
            // Kept instances are reloaded, or started if that fails; new ones started.
            let reloaded =
                old_execute.contains(name) && self.opts.subs.run(name, "reload").await == Some(0);
            if !reloaded {
                self.opts.subs.run(name, "start").await;
            }
        }
        let addr = self.director.config().globals.metrics;
        if let Err(e) = self.metrics.serve(addr).await {
            let kept = self
                .metrics
                .address()
                .map(|a| format!("; still serving on {a}"));
            let msg = metrics_bind_error(addr, &e);
            tracing::info!("{msg}{}", kept.unwrap_or_default());
        }
        true
    }

    /// `accept_local` on while the director wants IPv4 forwarding-path helpers, restored
    /// when it no longer does (before the checks through them start).
    fn accept_local_as_wanted(&mut self) {
        if let Some(line) = self.accept_local.want(self.director.has_ipv4_helpers()) {
            tracing::info!("{line}");
        }
    }

    /// Orderly stop (§1.5, §4.8).
    async fn stop(mut self, signal: &str) -> i32 {
        self.notify.stopping();
        let execute = self.director.config().globals.execute.clone();
        for name in &execute {
            self.opts.subs.run(name, "stop").await;
        }
        self.scheduler.retain(|_| false);
        let actions = self.director.stop();
        self.perform(actions).await;
        if let Some(line) = self.accept_local.want(false) {
            tracing::info!("{line}");
        }
        if let Some(ours) = self.sync.take() {
            self.worker.change_sync(Some(ours), None).await;
        }
        if !self.worker.flush(DRAIN_ON_STOP).await {
            tracing::info!(
                "{} engine: operations still unfinished after {}s, leaving them",
                self.worker.name(),
                DRAIN_ON_STOP.as_secs()
            );
        }
        while let Ok(report) = self.reports.try_recv() {
            self.on_report(report);
        }
        let reason = format!("Linux Director Daemon terminated on signal: {signal}");
        tracing::info!("{reason}");
        if self.opts.debug {
            tracing::info!("Exiting with exit_status 0: {reason}");
        }
        self.mailer.drain(DRAIN_ON_STOP).await;
        self.commands.drain(DRAIN_ON_STOP).await;
        if let Some(pid) = self.pid.take() {
            pid.remove();
        }
        // The claims go when `self` is dropped, after the pid file: a start that sees no
        // pid file may find the claim a moment longer, never the other way round.
        0
    }
}

/// The kernel identities of the configuration's virtual services.
fn service_keys(config: &Config) -> impl Iterator<Item = crate::engine::ServiceKey> + '_ {
    config.virtuals.iter().map(crate::director::service_key)
}

fn metrics_bind_error(addr: Option<SocketAddr>, e: &std::io::Error) -> String {
    let addr = addr.map(|a| a.to_string()).unwrap_or_default();
    format!("cannot serve metrics on {addr}: {e}")
}

fn log_diagnostics(diags: &[Diagnostic], pid: u32, path: &Path) {
    for d in diags {
        tracing::info!("{}", d.stock_format(pid, path));
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Forward signals to the loop. A second terminate signal while the first is being
/// handled exits at once (stock: "Exit Handler Repeatedly Called").
fn spawn_signal_tasks(
    pid_path: Option<PathBuf>,
) -> std::io::Result<mpsc::UnboundedReceiver<Event>> {
    use nix::libc;
    let (tx, rx) = mpsc::unbounded_channel();
    let terminating = Arc::new(AtomicBool::new(false));
    // SIGILL, SIGFPE and SIGSEGV are left at their default: they mean the process itself
    // is broken, and cleaning up from such a state cannot be trusted.
    let terminate = [
        (SignalKind::terminate(), "TERM"),
        (SignalKind::interrupt(), "INT"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::from_raw(libc::SIGABRT), "ABRT"),
        (SignalKind::from_raw(libc::SIGBUS), "BUS"),
        (SignalKind::from_raw(libc::SIGSYS), "SYS"),
        (SignalKind::from_raw(libc::SIGXCPU), "XCPU"),
        (SignalKind::from_raw(libc::SIGXFSZ), "XFSZ"),
    ];
    for (kind, name) in terminate {
        let mut stream = signal(kind)?;
        let tx = tx.clone();
        let terminating = terminating.clone();
        let pid_path = pid_path.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if terminating.swap(true, Ordering::SeqCst) {
                    tracing::info!("Exit Handler Repeatedly Called (signal {name})");
                    if let Some(path) = &pid_path {
                        let _ = std::fs::remove_file(path);
                    }
                    std::process::exit(1);
                }
                let _ = tx.send(Event::Terminate(name));
            }
        });
    }
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if tx.send(Event::Reload).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// A check whose checker could not be built: always down, with the reason.
#[derive(Debug)]
struct Failing(String);

impl Checker for Failing {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move { Outcome::down(self.0.clone(), Duration::ZERO) })
    }
}

/// `maintenancedir=`: before each run, a file named after the real puts it in maintenance
/// and the check is not run (§3.8; the reverse-DNS names are not tried, see DEVIATIONS).
#[derive(Debug)]
struct Maintained {
    inner: Arc<dyn Checker>,
    dir: PathBuf,
    names: [String; 2],
}

impl Checker for Maintained {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            // Drain files (`ldirectord drain`) share the directory but not the meaning.
            let hit = self.names.iter().any(|n| {
                let path = self.dir.join(n);
                std::fs::symlink_metadata(&path).is_ok() && !is_drain_file(&path)
            });
            if hit {
                Outcome::maintenance(IN_MAINTENANCE)
            } else {
                self.inner.check().await
            }
        })
    }
}

impl SubInstances {
    /// Run `ldirectord [flags] NAME ACTION` (an `execute=` sub-instance), bounded; returns
    /// its exit code.
    pub async fn run(&self, name: &str, action: &str) -> Option<i32> {
        let mut cmd = ldirectord_checks::process::command(&self.exe);
        cmd.args(&self.flags)
            .arg(name)
            .arg(action)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::info!("cannot run {} {name} {action}: {e}", self.exe.display());
                return None;
            }
        };
        match tokio::time::timeout(super::SUB_INSTANCE_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = child.kill().await;
                tracing::info!(
                    "{} {name} {action} did not finish within {}s",
                    self.exe.display(),
                    super::SUB_INSTANCE_TIMEOUT.as_secs()
                );
                None
            }
        }
    }
}
