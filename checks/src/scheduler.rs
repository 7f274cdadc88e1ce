//! The one place that owns every check timer.
//!
//! Stock ldirectord runs its checks one after another in a single loop, so a round lasts the
//! sum of every check plus `checkinterval`, and one hung real delays every other one
//! (reference §4.2). Here each scheduled check is its own task with its own clock:
//!
//! - it first runs after a random delay in `[0, jitter)`, so thousands of checks loaded at
//!   once do not all fire in the same millisecond;
//! - then every `interval`, on a fixed grid (no drift from the check's own duration);
//! - a run never overlaps the previous run of the same check: a check slower than its
//!   interval delays only itself, and the ticks it missed are skipped, not run in a burst;
//! - removing a check (or dropping the [`Scheduler`]) aborts its task, which drops the
//!   in-flight check future and with it its sockets or child process.
//!
//! Results go to one channel as [`CheckResult`]s carrying when the run was due and when it
//! actually started, so lateness can be measured. The key is generic: the daemon uses
//! [`crate::CheckSpec`], so identical checks of the same real in several virtual services
//! are scheduled once.
//!
//! Must be used from inside a tokio runtime (`schedule` spawns).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::check::{Checker, Outcome};

/// The result of one scheduled run.
#[derive(Debug, Clone)]
pub struct CheckResult<K> {
    /// The key the check was scheduled under, shared: a result costs no clone of it.
    pub key: Arc<K>,
    pub outcome: Outcome,
    /// When this run was due.
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

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Time between the starts of two runs (ldirectord's `checkinterval`). Must be > 0.
    pub interval: Duration,
    /// The first run happens after a uniformly random delay in `[0, jitter)`; zero runs
    /// the first check at once.
    pub jitter: Duration,
}

impl Timing {
    /// Run every `interval`, first after a random delay of up to one interval: the usual
    /// choice, which spreads checks evenly over the interval.
    pub fn every(interval: Duration) -> Timing {
        Timing {
            interval,
            jitter: interval,
        }
    }
}

/// Owns the timers of all scheduled checks. Dropping it cancels every check.
#[derive(Debug)]
pub struct Scheduler<K> {
    results: mpsc::Sender<CheckResult<K>>,
    tasks: HashMap<K, Scheduled>,
}

#[derive(Debug)]
struct Scheduled {
    timing: Timing,
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
        }
    }

    /// Run `checker` under `key` with `timing`. A check already scheduled under `key` is
    /// cancelled and replaced (its in-flight run, if any, is dropped). Returns whether one
    /// was replaced.
    ///
    /// # Panics
    /// If `timing.interval` is zero, or when called outside a tokio runtime.
    pub fn schedule(&mut self, key: K, checker: Arc<dyn Checker>, timing: Timing) -> bool {
        assert!(
            !timing.interval.is_zero(),
            "a check interval must be positive"
        );
        let first = Instant::now() + random_below(timing.jitter);
        let task = tokio::spawn(run(
            key.clone(),
            checker,
            first,
            timing.interval,
            self.results.clone(),
        ));
        match self.tasks.insert(key, Scheduled { timing, task }) {
            Some(old) => {
                old.task.abort();
                true
            }
            None => false,
        }
    }

    /// Cancel the check under `key`, dropping its in-flight run. Returns whether it existed.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.tasks.remove(key) {
            Some(old) => {
                old.task.abort();
                true
            }
            None => false,
        }
    }

    /// Cancel every check not in `keep` (used on reload: checks whose key survives keep
    /// their timers and phase). Returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) -> usize {
        let before = self.tasks.len();
        self.tasks.retain(|key, scheduled| {
            let keep = keep(key);
            if !keep {
                scheduled.task.abort();
            }
            keep
        });
        before - self.tasks.len()
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
}

impl<K> Drop for Scheduler<K> {
    fn drop(&mut self) {
        for scheduled in self.tasks.values() {
            scheduled.task.abort();
        }
    }
}

/// One check's life: wait for its slot, run, report, repeat.
async fn run<K: Send + Sync>(
    key: K,
    checker: Arc<dyn Checker>,
    first: Instant,
    interval: Duration,
    results: mpsc::Sender<CheckResult<K>>,
) {
    let key = Arc::new(key);
    let mut due = first;
    loop {
        tokio::time::sleep_until(due).await;
        let started_at = Instant::now();
        // Awaited here, inside the loop: the next run cannot start before this one ends.
        let outcome = checker.check().await;
        let result = CheckResult {
            key: Arc::clone(&key),
            outcome,
            scheduled_at: due,
            started_at,
        };
        if results.send(result).await.is_err() {
            return;
        }
        due = next_slot(due, interval, Instant::now());
    }
}

/// The first slot on the grid `due + k·interval` (k ≥ 1) that is not in the past at `now`.
/// A run that overran skips the slots it missed instead of running them in a burst, and the
/// check keeps its phase (its jitter) instead of drifting by its own duration.
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
