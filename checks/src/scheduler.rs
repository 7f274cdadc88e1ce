//! The one place that owns every check timer.
//!
//! Stock ldirectord runs its checks one after another in a single loop, so a round lasts the
//! sum of every check plus `checkinterval`, and one hung real delays every other one
//! (reference §4.2); a side effect is that its checks are spread over the round. Here each
//! scheduled check is its own task with its own clock, and the spreading is explicit:
//!
//! - **First runs.** A new check runs at once, as stock's first round does: a spread
//!   check as soon as the ramp allows: new checks (start-up, or a reload that adds them)
//!   start one after another at the nominal rate of all spread checks, so a thousand new
//!   checks every 5 s take 5 s for their first round instead of arriving as one burst
//!   ([`Scheduler::schedule_all`] paces a batch at the rate it will have, not at the rate
//!   of the checks scheduled before it). Not faster: at twice the rate, 50,000 new TCP
//!   checks a second ran out of file descriptors in the check-load benchmark (6,241 of
//!   them "Too many open files"). The ramp has its own cursor and no tolerance: it spaces
//!   exactly, and never delays the checks already running (they keep their slots; during
//!   a ramp the starts add up to at most twice the nominal rate). A check with
//!   `checkjitter=` runs first after its random delay. A check then moves onto its slot,
//!   the first one at least half an interval after its first run, so that no check runs
//!   twice in quick succession.
//! - **Phases.** By default ([`Phase::Spread`]) every check gets a slot of its own in its
//!   interval: slot *i* runs at `epoch + vdc(i)·interval + k·interval`, where `vdc` is the
//!   van der Corput sequence (the bits of *i* mirrored after the binary point: 0, ½, ¼, ¾,
//!   ⅛, …). Slots are handed out smallest free first, so the checks of one interval sit on
//!   an almost even grid whatever their number, no two start closer than half the even
//!   spacing, and any run of consecutive slots is itself spread over the whole interval.
//!   Callers give one host's checks consecutive slots by scheduling them together (the
//!   daemon schedules new checks sorted by real-server address), so the many ports and
//!   virtual services of one shared backend are evenly offset instead of arriving as one
//!   burst. The epoch is the scheduler's creation, so checks added on a reload fill the
//!   gaps left by removed ones instead of lining up with each other.
//! - [`Phase::Jitter`] (`checkjitter=`): the first run after a uniformly random delay in
//!   `[0, jitter)`, kept as the phase. `Jitter(0)` is lockstep: every check at the same
//!   instant of its interval, only when a configuration asks for it (`checkspread=lockstep`).
//! - **Randomness per round** ([`Timing::spread`], `checkspread=P`, HAProxy's
//!   `spread-checks`): each run starts a uniformly random delay in `[0, spread)` after its
//!   slot; the slots themselves stay on the grid.
//! - **The grid.** A check then runs every `interval` after its slot, on a fixed grid (no
//!   drift from the check's own duration);
//! - a run never overlaps the previous run of the same check: a check slower than its
//!   interval delays only itself, and the ticks it missed are skipped, not run in a burst;
//!   since it resumes on its own slot, checks that were all slow at once (an overloaded
//!   backend) come back spread, not as a herd that keeps the backend overloaded;
//! - **Pacing.** Spread checks start at no more than twice their nominal rate
//!   (`2 · Σ 1/interval`), with a tolerance of 50 ms ahead of that pace: when the director
//!   falls behind (a stall, a busy CPU), the first 50 ms of backlog start at once and the
//!   rest one after another at twice the nominal rate, late, instead of all at once; a
//!   stall of *s* is drained within about *s* more. The tolerance exists because a pace
//!   without one made an overloaded director later still: the timer's ordinary lateness
//!   on a busy host (a worker wakes a few ticks late, and everything due meanwhile
//!   together) then pushed each start behind the previous one, and in the check-load
//!   benchmark (10,000 HTTP checks a second on two shared cores) the on-time share fell
//!   from 78% (no pacing) to 56%. A start reserved less than the timer's 1 ms tick ahead
//!   goes at once (the pace holds per tick). Checks with an explicit jitter or in
//!   lockstep are not paced: their configuration chose when they run;
//! - **Beyond capacity: the governor.** When checks are due faster than the director can
//!   run them, starting every one of them fills the runtime's queue: each check's connect
//!   and reply then wait behind thousands of others, checks of healthy reals time out on
//!   the director's own delay, and the failing ones keep the load up, an overload that
//!   sustains itself (before the governor, `check_load`'s `recovery` scenario at 10,000
//!   HTTP reals every 1 s: the table complete 7.8 s after the backend resumed, and in the
//!   VM at 1,000 reals 24 s). A governor task ([`govern`]) sleeps [`LAG_PROBE`] and
//!   measures how late it wakes: that lag is what every task on the runtime suffers. At
//!   [`LAG_HIGH`] or more it cuts the pace's admitted share by [`ADMIT_CUT`] (at most once
//!   per [`CUT_EVERY`], since the checks already started are still queued), below
//!   [`LAG_LOW`] it adds [`ADMIT_RAISE`] back, down to [`ADMIT_FLOOR`] (every check still
//!   runs at least every ten intervals). The pace, `2 · Σ 1/interval · admit`, then binds:
//!   checks wait for their start (late, on the lateness metric) instead of queueing inside
//!   the runtime, and those that run get their answers in time. The signal is the
//!   director's own lag, never check results: a backend that times out is a failure to
//!   report, not a reason to check the others less (an earlier pace cut on timeouts of
//!   healthy reals settled below capacity but kept flapping them). With the governor the
//!   same recovery took 2.5 s, with every start within 50 ms of its slot (76% before);
//! - removing a check (or dropping the [`Scheduler`]) aborts its task, which drops the
//!   in-flight check future and with it its sockets or child process.
//!
//! Results go to one channel as [`CheckResult`]s carrying when the run was due and when it
//! actually started, so lateness can be measured. The key is generic: the daemon uses
//! [`crate::CheckSpec`], so identical checks of the same real in several virtual services
//! are scheduled once.
//!
//! Must be used from inside a tokio runtime (`schedule` spawns).

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldirectord_parsers::config::CheckSpread;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::check::{Checker, Outcome};

/// The granularity of tokio's timers.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// The result of one scheduled run.
#[derive(Debug, Clone)]
pub struct CheckResult<K> {
    /// The key the check was scheduled under, shared: a result costs no clone of it.
    pub key: Arc<K>,
    pub outcome: Outcome,
    /// When this run was due (its slot plus its random delay of the round, if any).
    pub scheduled_at: Instant,
    /// When it actually started (`started_at - scheduled_at` is its lateness).
    pub started_at: Instant,
}

impl<K> CheckResult<K> {
    /// How late the run started compared with its schedule.
    pub fn lateness(&self) -> Duration {
        self.started_at.saturating_duration_since(self.scheduled_at)
    }
}

/// Where in its interval a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A slot of its own, spread evenly with the other checks of the same interval (the
    /// default; see the module documentation).
    Spread,
    /// The first run after a uniformly random delay in `[0, jitter)`, kept as the phase
    /// (`checkjitter=`). Zero is lockstep: the first run at once, then every check at the
    /// same instant of its interval.
    Jitter(Duration),
}

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Time between the slots of two runs (ldirectord's `checkinterval`). Must be > 0.
    pub interval: Duration,
    pub phase: Phase,
    /// Each run starts a uniformly random delay in `[0, spread)` after its slot
    /// (`checkspread=`); zero (the default) runs on the slot.
    pub spread: Duration,
}

impl Timing {
    /// Run every `interval` in a slot of its own, no randomness: the default.
    pub fn every(interval: Duration) -> Timing {
        Timing {
            interval,
            phase: Phase::Spread,
            spread: Duration::ZERO,
        }
    }

    /// The timing of a check every `interval` under `checkjitter=` and `checkspread=`
    /// (percentages above 100 count as 100): what the daemon runs.
    pub fn configured(interval: Duration, checkjitter: u32, checkspread: CheckSpread) -> Timing {
        let percent = |p: u32| interval * p.min(100) / 100;
        match checkspread {
            CheckSpread::Lockstep => Timing::lockstep(interval),
            CheckSpread::Percent(p) => Timing {
                interval,
                phase: match checkjitter {
                    0 => Phase::Spread,
                    j => Phase::Jitter(percent(j)),
                },
                spread: percent(p),
            },
        }
    }

    /// Run at once, then every `interval`, at the same instant as every other lockstep
    /// check of that interval.
    pub fn lockstep(interval: Duration) -> Timing {
        Timing::jittered(interval, Duration::ZERO)
    }

    /// Run first after a random delay in `[0, jitter)`, then every `interval`.
    pub fn jittered(interval: Duration, jitter: Duration) -> Timing {
        Timing {
            interval,
            phase: Phase::Jitter(jitter),
            spread: Duration::ZERO,
        }
    }
}

/// Owns the timers of all scheduled checks. Dropping it cancels every check.
#[derive(Debug)]
pub struct Scheduler<K> {
    results: mpsc::Sender<CheckResult<K>>,
    tasks: HashMap<K, Scheduled>,
    /// Slots of [`Phase::Spread`] checks, per interval.
    slots: HashMap<Duration, Slots>,
    /// Where every spread slot's grid starts.
    epoch: Instant,
    pacer: Arc<Mutex<Pacer>>,
    /// Measures the director's own lag and sets the pace's admitted share
    /// ([`govern`]); started with the first spread check, stopped with the last.
    governor: Option<JoinHandle<()>>,
    /// How many spread checks are scheduled (counted exactly: the pacer's rate is a sum of
    /// floats).
    spread: usize,
    /// When the next first run may start: first runs are spaced at the pace, without the
    /// pacer's tolerance, apart from the pacer (a ramp must not delay running checks);
    /// with the spacing it was laid at, so that a faster pace shortens what is left of it.
    ramp: Option<(Instant, Duration)>,
}

#[derive(Debug)]
struct Scheduled {
    timing: Timing,
    /// The slot of a [`Phase::Spread`] check.
    slot: Option<u64>,
    task: JoinHandle<()>,
}

impl<K> Scheduler<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// A scheduler that sends every result to `results`. When the receiver is gone, the
    /// checks stop on their next result.
    pub fn new(results: mpsc::Sender<CheckResult<K>>) -> Scheduler<K> {
        Scheduler {
            results,
            tasks: HashMap::new(),
            slots: HashMap::new(),
            epoch: Instant::now(),
            pacer: Arc::default(),
            governor: None,
            spread: 0,
            ramp: None,
        }
    }

    /// Run `checker` under `key` with `timing`. A check already scheduled under `key` is
    /// cancelled and replaced (its in-flight run, if any, is dropped). Returns whether one
    /// was replaced.
    ///
    /// # Panics
    /// If `timing.interval` is zero, or when called outside a tokio runtime.
    pub fn schedule(&mut self, key: K, checker: Arc<dyn Checker>, timing: Timing) -> bool {
        self.schedule_all([(key, checker, timing)]) > 0
    }

    /// [`Scheduler::schedule`] every `(key, checker, timing)`, in order, as one batch: the
    /// first runs of the batch's spread checks are paced at the rate of all spread checks,
    /// the batch included, so new checks ramp up over one interval instead
    /// of starting as one burst (or, scheduled one by one, ramping at the rate of the few
    /// scheduled before them). Give one host's checks one after another. Returns how many
    /// checks were replaced.
    ///
    /// # Panics
    /// As [`Scheduler::schedule`].
    pub fn schedule_all(
        &mut self,
        checks: impl IntoIterator<Item = (K, Arc<dyn Checker>, Timing)>,
    ) -> usize {
        let checks: Vec<_> = checks.into_iter().collect();
        let mut replaced = 0;
        for (key, _, timing) in &checks {
            assert!(
                !timing.interval.is_zero(),
                "a check interval must be positive"
            );
            replaced += usize::from(self.remove(key));
            if timing.phase == Phase::Spread {
                self.spread += 1;
                self.pace(timing.interval, true);
                if self.governor.is_none() {
                    self.governor = Some(tokio::spawn(govern(Arc::clone(&self.pacer))));
                }
            }
        }
        let now = Instant::now();
        // What is left of an earlier ramp was laid at that time's pace: at a faster pace
        // now (a reload from `checkinterval=3600` to 1 s), it is as many starts, closer
        // together; kept as it was, it would hold the new checks back for up to an hour.
        let spacing = self.spacing();
        if let Some((at, laid)) = self.ramp
            && at > now
            && spacing < laid
        {
            let left = (at - now).mul_f64(spacing.as_secs_f64() / laid.as_secs_f64());
            self.ramp = Some((now + left, spacing));
        }
        for (key, checker, timing) in checks {
            let (first, grid, slot, pacer) = match timing.phase {
                Phase::Spread => {
                    let slot = self.slots.entry(timing.interval).or_default().take();
                    let grid = self.epoch + fraction(timing.interval, slot.reverse_bits());
                    let first = self.ramp.map_or(now, |(r, _)| r.max(now));
                    // The nominal rate: twice the pacer's spacing.
                    self.ramp = Some((first + 2 * spacing, spacing));
                    (first, grid, Some(slot), Some(Arc::clone(&self.pacer)))
                }
                Phase::Jitter(jitter) => {
                    let first = now + random_below(jitter);
                    (first, first, None, None)
                }
            };
            let task = tokio::spawn(run(
                key.clone(),
                checker,
                Start { first, grid },
                timing,
                pacer,
                self.results.clone(),
            ));
            // A key given twice in one batch: the later one wins, as with `schedule`.
            if let Some(old) = self.tasks.insert(key, Scheduled { timing, slot, task }) {
                self.release(old);
                replaced += 1;
            }
        }
        replaced
    }

    /// Cancel the check under `key`, dropping its in-flight run. Returns whether it existed.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.tasks.remove(key) {
            Some(old) => {
                self.release(old);
                true
            }
            None => false,
        }
    }

    /// Cancel every check not in `keep` (used on reload: checks whose key survives keep
    /// their timers and phase). Returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) -> usize {
        let gone: Vec<K> = self.tasks.keys().filter(|k| !keep(k)).cloned().collect();
        for key in &gone {
            self.remove(key);
        }
        gone.len()
    }

    /// The keys of all scheduled checks, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.tasks.keys()
    }

    /// Whether a check is scheduled under `key`.
    pub fn contains(&self, key: &K) -> bool {
        self.tasks.contains_key(key)
    }

    /// The timing a check was scheduled with.
    pub fn timing(&self, key: &K) -> Option<Timing> {
        self.tasks.get(key).map(|s| s.timing)
    }

    /// How many checks are scheduled.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn release(&mut self, old: Scheduled) {
        old.task.abort();
        if let Some(slot) = old.slot {
            if let Some(slots) = self.slots.get_mut(&old.timing.interval) {
                slots.give_back(slot);
            }
            self.pace(old.timing.interval, false);
            self.spread -= 1;
            if self.spread == 0 {
                // Nothing left to pace: the governor would only wake 20 times a second for
                // nothing, and a share it cut belongs to a load that is gone.
                if let Some(governor) = self.governor.take() {
                    governor.abort();
                }
                *self.pacer.lock().unwrap_or_else(|e| e.into_inner()) = Pacer::default();
            }
        }
    }

    /// The pace's spacing between two starts.
    fn spacing(&self) -> Duration {
        self.pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spacing()
    }

    /// Count a spread check of `interval` in (or out of) the pacer's rate.
    fn pace(&mut self, interval: Duration, added: bool) {
        let mut pacer = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
        let rate = 1.0 / interval.as_secs_f64();
        pacer.rate = if added {
            pacer.rate + rate
        } else {
            (pacer.rate - rate).max(0.0)
        };
    }
}

impl<K> Drop for Scheduler<K> {
    fn drop(&mut self) {
        for scheduled in self.tasks.values() {
            scheduled.task.abort();
        }
        if let Some(governor) = &self.governor {
            governor.abort();
        }
    }
}

/// The slot numbers of one interval: smallest free first, so the slots in use stay close
/// to `0..n` and their phases close to an even grid.
#[derive(Debug, Default)]
struct Slots {
    free: BTreeSet<u64>,
    next: u64,
}

impl Slots {
    fn take(&mut self) -> u64 {
        self.free.pop_first().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn give_back(&mut self, slot: u64) {
        self.free.insert(slot);
        // Trim the top so that `next` stays the number of slots in (recent) use.
        while self.next > 0 && self.free.remove(&(self.next - 1)) {
            self.next -= 1;
        }
    }
}

/// Spaces the starts of spread checks at no more than twice their nominal rate times the
/// admitted share, `1 / (2·rate·admit)` apart, allowing starts up to [`PACE_TOLERANCE`]
/// ahead of that pace (a generic cell rate algorithm that delays instead of dropping).
#[derive(Debug)]
struct Pacer {
    /// Nominal starts per second of all spread checks.
    rate: f64,
    /// Where the paced schedule stands: the instant the next start is due at the pace.
    paced: Option<Instant>,
    /// The share of twice the nominal rate that may start, in [`ADMIT_FLOOR`]..=1: cut
    /// while the director lags, raised again while it keeps up ([`Pacer::on_lag`]).
    admit: f64,
    /// The last cut of `admit`.
    cut_at: Option<Instant>,
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer {
            rate: 0.0,
            paced: None,
            admit: 1.0,
            cut_at: None,
        }
    }
}

/// How far ahead of the pace a start may go. Up to this much backlog starts at once, so
/// the timer's ordinary lateness on a busy host (wake-ups that come a few ticks late,
/// together) costs nothing; only a real stall is drained at the pace. Measured: without
/// it (every start at the pace), check_load's on-time share on a saturated host fell from
/// 78% to 56% (see the module documentation).
const PACE_TOLERANCE: Duration = Duration::from_millis(50);

/// How often the governor measures the director's lag.
const LAG_PROBE: Duration = Duration::from_millis(50);
/// A timer that wakes this much late means the runtime's queue holds more work than the
/// CPU does in that time: the admitted share is cut.
const LAG_HIGH: Duration = Duration::from_millis(100);
/// Below this lag the director keeps up: the admitted share grows again.
const LAG_LOW: Duration = Duration::from_millis(25);
/// A cut multiplies the admitted share by this, at most once per [`CUT_EVERY`] (the
/// checks started before a cut are still in the queue the next probes measure).
const ADMIT_CUT: f64 = 0.7;
const CUT_EVERY: Duration = Duration::from_millis(500);
/// What a probe without lag adds back: from the floor to the whole pace in about 2 s.
const ADMIT_RAISE: f64 = 0.025;
/// The admitted share never goes below this: a tenth of the nominal rate, so that every
/// check still runs at least every ten intervals.
const ADMIT_FLOOR: f64 = 0.05;

impl Pacer {
    /// The instant a check ready at `now` may start, reserved for it.
    fn reserve(&mut self, now: Instant) -> Instant {
        if self.rate <= 0.0 {
            return now;
        }
        let paced = self.paced.map_or(now, |p| p.max(now));
        let start = paced
            .checked_sub(PACE_TOLERANCE)
            .map_or(now, |s| s.max(now));
        self.paced = Some(paced + self.spacing());
        start
    }

    /// Between two starts at the pace: `1 / (2·rate·admit)` (zero without spread checks).
    fn spacing(&self) -> Duration {
        if self.rate > 0.0 {
            Duration::from_secs_f64(0.5 / (self.rate * self.admit))
        } else {
            Duration::ZERO
        }
    }

    /// The governor measured `lag` at `now`: cut the admitted share when the director
    /// lags (multiplicative, at most once per [`CUT_EVERY`]), raise it when it keeps up
    /// (additive), leave it between the two thresholds.
    fn on_lag(&mut self, lag: Duration, now: Instant) {
        if lag >= LAG_HIGH {
            if self.cut_at.is_none_or(|at| now >= at + CUT_EVERY) {
                self.admit = (self.admit * ADMIT_CUT).max(ADMIT_FLOOR);
                self.cut_at = Some(now);
            }
        } else if lag < LAG_LOW {
            self.admit = (self.admit + ADMIT_RAISE).min(1.0);
        }
    }
}

/// The governor: every [`LAG_PROBE`] it sleeps and measures how late it wakes, the lag
/// every task on this runtime suffers (a check's connect, its reply, the daemon's loop),
/// and feeds it to the pacer. It looks at the director's CPU only, never at results: a
/// backend that times out does not slow the checks of the others.
async fn govern(pacer: Arc<Mutex<Pacer>>) {
    loop {
        let asleep = Instant::now();
        tokio::time::sleep(LAG_PROBE).await;
        let now = Instant::now();
        let lag = (now - asleep).saturating_sub(LAG_PROBE);
        pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .on_lag(lag, now);
    }
}

/// Where a check's life starts.
#[derive(Debug, Clone, Copy)]
struct Start {
    /// The first run (already paced).
    first: Instant,
    /// A point on the grid of the check's slots.
    grid: Instant,
}

/// One check's life: run once, then wait for its slot, run, report, repeat.
async fn run<K: Send + Sync>(
    key: K,
    checker: Arc<dyn Checker>,
    start: Start,
    timing: Timing,
    pacer: Option<Arc<Mutex<Pacer>>>,
    results: mpsc::Sender<CheckResult<K>>,
) {
    let key = Arc::new(key);
    let mut due = start.first;
    // The slot of the run under way; `None` on the first run.
    let mut slot: Option<Instant> = None;
    loop {
        tokio::time::sleep_until(due).await;
        // When the pacer let it start at once, the instant it was asked at is the start:
        // one clock read fewer per run (each read traps on a guest whose clock source is
        // the HPET, as the project's qemu guest's is).
        let mut started_at = None;
        if let (Some(pacer), Some(_)) = (&pacer, slot) {
            let now = Instant::now();
            let start = pacer.lock().unwrap_or_else(|e| e.into_inner()).reserve(now);
            // Closer than the timer wheel's tick, a sleep would only round up to the next
            // tick and cost a wake-up: the pace is kept per tick, not below it.
            if start >= now + TIMER_TICK {
                tokio::time::sleep_until(start).await;
            } else {
                started_at = Some(now);
            }
        }
        let started_at = started_at.unwrap_or_else(Instant::now);
        // Awaited here, inside the loop: the next run cannot start before this one ends.
        let outcome = checker.check().await;
        // A permit first, then the result: `send` would hold the whole result in its future,
        // the largest state of this task (624 bytes a task instead of 480).
        let Ok(permit) = results.reserve().await else {
            return;
        };
        permit.send(CheckResult {
            key: Arc::clone(&key),
            outcome,
            scheduled_at: due,
            started_at,
        });
        let now = Instant::now();
        let next = match slot {
            Some(slot) => next_slot(slot, timing.interval, now),
            // Onto the grid, no sooner than half an interval after the first run.
            None => {
                let earliest = now.max(start.first + timing.interval / 2);
                if start.grid >= earliest {
                    start.grid
                } else {
                    next_slot(start.grid, timing.interval, earliest)
                }
            }
        };
        slot = Some(next);
        due = next + random_below(timing.spread);
    }
}

/// The first slot on the grid `due + k·interval` (k ≥ 1) that is not in the past at `now`.
/// A run that overran skips the slots it missed instead of running them in a burst, and the
/// check keeps its phase instead of drifting by its own duration.
fn next_slot(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next >= now {
        return next;
    }
    let behind = (now - next).as_nanos();
    let step = interval.as_nanos();
    let skipped = behind.div_ceil(step);
    let skip = u64::try_from(skipped * step).unwrap_or(u64::MAX);
    next + Duration::from_nanos(skip)
}

/// `interval · f / 2⁶⁴`.
fn fraction(interval: Duration, f: u64) -> Duration {
    let nanos = (interval.as_nanos() * u128::from(f)) >> 64;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn random_below(bound: Duration) -> Duration {
    if bound.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_below_stays_in_bounds() {
        assert_eq!(random_below(Duration::ZERO), Duration::ZERO);
        for _ in 0..1000 {
            assert!(random_below(Duration::from_millis(3)) < Duration::from_millis(3));
        }
        assert!(random_below(Duration::from_nanos(1)).is_zero());
    }

    #[test]
    fn slots_are_reused_smallest_first_and_spread_like_van_der_corput() {
        let mut slots = Slots::default();
        let taken: Vec<u64> = (0..5).map(|_| slots.take()).collect();
        assert_eq!(taken, [0, 1, 2, 3, 4]);
        slots.give_back(1);
        slots.give_back(3);
        assert_eq!(slots.take(), 1);
        slots.give_back(4);
        assert_eq!((slots.next, slots.take(), slots.take()), (3, 3, 4));
        let s = Duration::from_secs(1);
        let phases: Vec<u128> = (0..4u64)
            .map(|i| fraction(s, i.reverse_bits()).as_millis())
            .collect();
        assert_eq!(phases, [0, 500, 250, 750]);
    }

    #[test]
    fn the_pacer_spaces_starts_at_twice_the_nominal_rate_beyond_its_tolerance() {
        let t0 = Instant::now();
        let mut pacer = Pacer {
            rate: 100.0,
            ..Pacer::default()
        };
        // 5 ms apart at the pace; the first 50 ms of backlog (11 starts) go at once.
        let starts: Vec<Duration> = (0..13).map(|_| pacer.reserve(t0) - t0).collect();
        assert_eq!(starts[..11], [Duration::ZERO; 11]);
        assert_eq!(starts[11..], [5, 10].map(Duration::from_millis));
        // Once the backlog is gone, a start goes at once again.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(pacer.reserve(later), later);
        // No spread checks, no pace.
        let mut idle = Pacer::default();
        assert_eq!((idle.reserve(t0), idle.reserve(t0)), (t0, t0));
    }

    #[test]
    fn the_governor_cuts_the_pace_while_the_director_lags_and_gives_it_back() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pacer = Pacer {
            rate: 1000.0,
            ..Pacer::default()
        };
        assert_eq!(pacer.spacing(), Duration::from_micros(500));
        // Lag: one cut, then no other within CUT_EVERY however many probes lag.
        pacer.on_lag(ms(150), t0);
        pacer.on_lag(ms(400), t0 + ms(50));
        pacer.on_lag(ms(400), t0 + ms(450));
        assert!((pacer.admit - ADMIT_CUT).abs() < 1e-9, "{}", pacer.admit);
        pacer.on_lag(ms(400), t0 + ms(500));
        assert!((pacer.admit - ADMIT_CUT * ADMIT_CUT).abs() < 1e-9);
        // The pace slows with it: starts further apart.
        assert!(pacer.spacing() > Duration::from_micros(1000));
        // A lasting lag goes no lower than the floor.
        for k in 0..100 {
            pacer.on_lag(ms(1000), t0 + ms(1000 + 500 * k));
        }
        assert!((pacer.admit - ADMIT_FLOOR).abs() < 1e-9);
        // Between the thresholds nothing moves; below, the share grows back to all of it.
        pacer.on_lag(ms(50), t0 + ms(60_000));
        assert!((pacer.admit - ADMIT_FLOOR).abs() < 1e-9);
        for _ in 0..100 {
            pacer.on_lag(ms(1), t0 + ms(60_000));
        }
        assert_eq!(pacer.admit, 1.0);
        assert_eq!(pacer.spacing(), Duration::from_micros(500));
    }

    /// Answers up at once.
    #[derive(Debug)]
    struct Up;

    impl Checker for Up {
        fn check(&self) -> crate::BoxFuture<'_, Outcome> {
            Box::pin(async { Outcome::up("-", Duration::ZERO) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_governor_runs_only_while_spread_checks_are_scheduled() {
        let (tx, _rx) = mpsc::channel(64);
        let mut scheduler = Scheduler::new(tx);
        let second = Duration::from_secs(1);
        scheduler.schedule("jittered", Arc::new(Up), Timing::jittered(second, second));
        assert!(scheduler.governor.is_none(), "no spread check yet");
        scheduler.schedule("a", Arc::new(Up), Timing::every(second));
        scheduler.schedule("b", Arc::new(Up), Timing::every(second));
        assert!(scheduler.governor.is_some());
        // A cut share belongs to the load of the checks that are scheduled.
        scheduler.pacer.lock().unwrap().admit = ADMIT_FLOOR;
        scheduler.remove(&"a");
        assert!(scheduler.governor.is_some(), "one spread check is left");
        // Replacing the last spread check by itself keeps the governor.
        scheduler.schedule("b", Arc::new(Up), Timing::every(second));
        assert!(scheduler.governor.is_some());
        let handle = scheduler.governor.as_ref().map(|g| g.abort_handle());
        scheduler.remove(&"b");
        assert!(scheduler.governor.is_none(), "stopped with the last one");
        tokio::task::yield_now().await;
        assert!(handle.is_some_and(|h| h.is_finished()));
        let pacer = scheduler.pacer.lock().unwrap();
        assert_eq!((pacer.rate, pacer.admit), (0.0, 1.0));
        drop(pacer);
        scheduler.schedule("c", Arc::new(Up), Timing::every(second));
        assert!(scheduler.governor.is_some(), "started again");
    }

    #[test]
    fn the_default_config_spreads_and_lockstep_is_asked_for() {
        let s = Duration::from_secs(10);
        let d = ldirectord_parsers::config::Globals::default();
        assert_eq!(
            Timing::configured(s, d.checkjitter, d.checkspread),
            Timing::every(s),
            "the default configuration must spread"
        );
        assert_eq!(
            Timing::configured(s, 20, CheckSpread::Percent(50)),
            Timing {
                interval: s,
                phase: Phase::Jitter(Duration::from_secs(2)),
                spread: Duration::from_secs(5),
            }
        );
        assert_eq!(
            Timing::configured(s, 20, CheckSpread::Lockstep),
            Timing::lockstep(s)
        );
    }

    #[test]
    fn next_slot_keeps_the_grid_and_skips_missed_slots() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        // On time or early: the very next slot.
        assert_eq!(next_slot(t0, s, t0 + Duration::from_millis(300)), t0 + s);
        assert_eq!(next_slot(t0, s, t0 + s), t0 + s);
        // Overran by 2.5 intervals: slots 1 and 2 are skipped, the next is slot 3.
        assert_eq!(
            next_slot(t0, s, t0 + Duration::from_millis(2500)),
            t0 + 3 * s
        );
        // Ended exactly on a later slot: that slot is kept.
        assert_eq!(next_slot(t0, s, t0 + 2 * s), t0 + 2 * s);
    }
}
