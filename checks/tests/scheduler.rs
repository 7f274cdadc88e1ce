//! The scheduler's timing, on tokio's paused clock: every assertion is exact and
//! deterministic, nothing waits on the wall clock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ldirectord_checks::scheduler::{CheckResult, Scheduler, Timing};
use ldirectord_checks::{BoxFuture, Checker, Outcome};
use tokio::sync::mpsc;
use tokio::time::Instant;

const SEC: Duration = Duration::from_secs(1);

/// A check that takes `duration` and counts how many of its runs are in flight at once.
#[derive(Debug, Default)]
struct Probe {
    duration: Duration,
    running: AtomicUsize,
    max_running: AtomicUsize,
    runs: AtomicUsize,
}

impl Probe {
    fn taking(duration: Duration) -> Arc<Probe> {
        Arc::new(Probe {
            duration,
            ..Probe::default()
        })
    }
}

impl Checker for Probe {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            self.runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.duration).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Outcome::up("-", self.duration)
        })
    }
}

/// A check that never finishes and records when its in-flight future is dropped.
#[derive(Debug, Default)]
struct Hung {
    started: AtomicBool,
    dropped: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Checker for Hung {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        self.started.store(true, Ordering::SeqCst);
        let guard = SetOnDrop(self.dropped.clone());
        Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            unreachable!()
        })
    }
}

fn channel<K>() -> (mpsc::Sender<CheckResult<K>>, mpsc::Receiver<CheckResult<K>>) {
    mpsc::channel(1024)
}

#[tokio::test(start_paused = true)]
async fn runs_every_interval_on_a_fixed_grid() {
    let (tx, mut rx) = channel();
    let mut scheduler = Scheduler::new(tx);
    let t0 = Instant::now();
    // The check itself takes 300 ms: the grid must not drift by it.
    scheduler.schedule(
        "a",
        Probe::taking(Duration::from_millis(300)),
        Timing::lockstep(SEC),
    );
    for k in 0..5u32 {
        let r = rx.recv().await.unwrap();
        assert_eq!(*r.key, "a");
        assert!(r.outcome.is_up());
        assert_eq!(r.scheduled_at, t0 + k * SEC, "run {k}");
        assert_eq!(r.started_at, r.scheduled_at, "run {k} started late");
    }
}

#[tokio::test(start_paused = true)]
async fn first_runs_are_spread_over_the_jitter_and_keep_their_phase() {
    let (tx, mut rx) = channel();
    let mut scheduler = Scheduler::new(tx);
    let t0 = Instant::now();
    let timing = Timing::jittered(Duration::from_secs(10), SEC);
    const N: usize = 1000;
    for i in 0..N {
        scheduler.schedule(i, Probe::taking(Duration::ZERO), timing);
    }
    assert_eq!(scheduler.len(), N);
    let mut first = std::collections::HashMap::new();
    let mut millis = HashSet::new();
    while first.len() < N {
        let r = rx.recv().await.unwrap();
        let offset = r.scheduled_at - t0;
        assert!(
            offset < SEC,
            "first run of {} at {offset:?}, beyond the jitter",
            r.key
        );
        assert!(
            r.lateness() < Duration::from_millis(1),
            "the timer wheel's granularity is 1 ms"
        );
        millis.insert(offset.as_millis());
        assert!(
            first.insert(*r.key, r.scheduled_at).is_none(),
            "a second run inside the first interval"
        );
    }
    // 1000 uniform draws over 1000 ms: all in one or a few slots would mean no jitter at all.
    assert!(
        millis.len() > 400,
        "first runs fell in only {} distinct milliseconds",
        millis.len()
    );
    // The second run of each check is exactly one interval after its first.
    for _ in 0..N {
        let r = rx.recv().await.unwrap();
        assert_eq!(r.scheduled_at, first[&r.key] + timing.interval);
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_check_never_overlaps_itself_and_skips_missed_slots() {
    let (tx, mut rx) = channel();
    let mut scheduler = Scheduler::new(tx);
    let t0 = Instant::now();
    let slow = Probe::taking(Duration::from_millis(2500));
    scheduler.schedule("slow", slow.clone(), Timing::lockstep(SEC));
    // Runs take 2.5 s on a 1 s grid: slots 1 and 2 are skipped, the next run is at 3 s.
    for expected in [0u32, 3, 6, 9] {
        let r = rx.recv().await.unwrap();
        assert_eq!(r.scheduled_at, t0 + expected * SEC);
        assert_eq!(r.started_at, r.scheduled_at);
    }
    assert_eq!(slow.max_running.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hung_check_delays_no_other_check() {
    let (tx, mut rx) = channel();
    let mut scheduler = Scheduler::new(tx);
    let t0 = Instant::now();
    let every_second = Timing::lockstep(SEC);
    let hung = Arc::new(Hung::default());
    scheduler.schedule("hung".to_owned(), hung.clone(), every_second);
    for i in 0..50 {
        scheduler.schedule(
            format!("healthy{i}"),
            Probe::taking(Duration::from_millis(40)),
            every_second,
        );
    }
    // Ten rounds of the 50 healthy checks, all exactly on time, none from the hung one.
    for _ in 0..50 * 10 {
        let r = rx.recv().await.unwrap();
        assert_ne!(*r.key, "hung", "the hung check produced a result");
        assert_eq!(r.lateness(), Duration::ZERO, "{} started late", r.key);
        assert!(r.scheduled_at < t0 + 10 * SEC);
    }
    assert!(hung.started.load(Ordering::SeqCst));
    assert!(!hung.dropped.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn removing_a_check_drops_its_in_flight_run_and_stops_it() {
    let (tx, mut rx) = channel();
    let mut scheduler = Scheduler::new(tx);
    let hung = Arc::new(Hung::default());
    let probe = Probe::taking(Duration::ZERO);
    scheduler.schedule("hung", hung.clone(), Timing::lockstep(SEC));
    scheduler.schedule("probe", probe.clone(), Timing::lockstep(SEC));
    // Let both start.
    assert_eq!(*rx.recv().await.unwrap().key, "probe");
    assert!(hung.started.load(Ordering::SeqCst));
    assert!(!hung.dropped.load(Ordering::SeqCst));

    assert!(scheduler.remove(&"hung"));
    assert!(!scheduler.remove(&"hung"), "removed twice");
    tokio::task::yield_now().await;
    assert!(
        hung.dropped.load(Ordering::SeqCst),
        "the in-flight run was not dropped"
    );

    assert!(scheduler.remove(&"probe"));
    let runs = probe.runs.load(Ordering::SeqCst);
    tokio::time::sleep(10 * SEC).await;
    assert_eq!(
        probe.runs.load(Ordering::SeqCst),
        runs,
        "a removed check kept running"
    );
    assert!(scheduler.is_empty());
    // Nothing is left that could send: only the scheduler's own sender keeps the channel open.
    drop(scheduler);
    assert!(rx.recv().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_scheduler_cancels_everything() {
    let (tx, mut rx) = channel();
    let mut scheduler = Scheduler::new(tx);
    let hung = Arc::new(Hung::default());
    scheduler.schedule(1, hung.clone(), Timing::lockstep(SEC));
    scheduler.schedule(2, Probe::taking(Duration::ZERO), Timing::lockstep(SEC));
    assert_eq!(*rx.recv().await.unwrap().key, 2);
    drop(scheduler);
    tokio::task::yield_now().await;
    assert!(hung.dropped.load(Ordering::SeqCst));
    assert!(rx.recv().await.is_none(), "a check outlived its scheduler");
}

#[tokio::test(start_paused = true)]
async fn rescheduling_a_key_replaces_the_check_and_retain_prunes() {
    let (tx, mut rx) = channel();
    let mut scheduler = Scheduler::new(tx);
    let t0 = Instant::now();
    let old = Arc::new(Hung::default());
    assert!(!scheduler.schedule("a", old.clone(), Timing::lockstep(SEC)));
    tokio::task::yield_now().await;
    assert!(old.started.load(Ordering::SeqCst));
    let new = Probe::taking(Duration::ZERO);
    let timing = Timing::lockstep(Duration::from_secs(5));
    assert!(scheduler.schedule("a", new.clone(), timing));
    tokio::task::yield_now().await;
    assert!(old.dropped.load(Ordering::SeqCst));
    assert_eq!(scheduler.timing(&"a"), Some(timing));
    assert_eq!(rx.recv().await.unwrap().scheduled_at, t0);
    assert_eq!(rx.recv().await.unwrap().scheduled_at, t0 + 5 * SEC);

    scheduler.schedule("b", Probe::taking(Duration::ZERO), timing);
    scheduler.schedule("c", Probe::taking(Duration::ZERO), timing);
    assert_eq!(scheduler.retain(|k| *k != "b"), 1);
    let mut keys: Vec<_> = scheduler.keys().copied().collect();
    keys.sort();
    assert_eq!(keys, ["a", "c"]);
    assert!(scheduler.contains(&"c") && !scheduler.contains(&"b"));
}

#[tokio::test(start_paused = true)]
async fn checks_stop_when_the_results_receiver_is_gone() {
    let (tx, rx) = channel();
    let mut scheduler = Scheduler::new(tx);
    let probe = Probe::taking(Duration::ZERO);
    scheduler.schedule("a", probe.clone(), Timing::every(SEC));
    drop(rx);
    tokio::time::sleep(3 * SEC).await;
    // The first run found no receiver and the task ended there.
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
}

/// 1024 ms: the even slots of up to 1024 checks fall on whole milliseconds, the timer
/// wheel's granularity, so start times are exact.
const INTERVAL: Duration = Duration::from_millis(1024);

/// A new scheduler, its results and the instant it was made (its slots' epoch).
fn started<K>() -> (Scheduler<K>, mpsc::Receiver<CheckResult<K>>, Instant)
where
    K: Clone + Eq + std::hash::Hash + Send + Sync + 'static,
{
    let (tx, rx) = channel();
    (Scheduler::new(tx), rx, Instant::now())
}

/// Schedule quick checks under `keys`, every `INTERVAL` in spread slots, as one batch (as
/// the daemon does).
fn schedule_spread<K>(scheduler: &mut Scheduler<K>, keys: impl IntoIterator<Item = K>)
where
    K: Clone + Eq + std::hash::Hash + Send + Sync + 'static,
{
    let checks = keys.into_iter().map(|k| {
        let probe: Arc<dyn Checker> = Probe::taking(Duration::ZERO);
        (k, probe, Timing::every(INTERVAL))
    });
    scheduler.schedule_all(checks);
}

/// The start offsets of the first `rounds` runs of each of `n` checks, by key (results
/// past a key's `rounds` are dropped), each on time.
async fn runs<K: Eq + std::hash::Hash>(
    rx: &mut mpsc::Receiver<CheckResult<K>>,
    n: usize,
    rounds: usize,
    t0: Instant,
) -> HashMap<Arc<K>, Vec<Duration>> {
    let mut runs: HashMap<Arc<K>, Vec<Duration>> = HashMap::new();
    let mut complete = 0;
    while complete < n {
        let r = rx.recv().await.unwrap();
        assert!(
            r.lateness() < Duration::from_millis(1),
            "{:?}",
            r.lateness()
        );
        let mine = runs.entry(r.key).or_default();
        if mine.len() < rounds {
            mine.push(r.started_at - t0);
            complete += usize::from(mine.len() == rounds);
        }
    }
    runs
}

/// The most starts in any of `k` equal slices of `INTERVAL` (offsets taken modulo it).
fn most_in_a_slice(offsets: impl IntoIterator<Item = Duration>, k: u32) -> usize {
    let mut counts = vec![0; k as usize];
    for offset in offsets {
        let within = offset.as_nanos() % INTERVAL.as_nanos();
        counts[(within * u128::from(k) / INTERVAL.as_nanos()) as usize] += 1;
    }
    counts.into_iter().max().unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn first_runs_start_at_once_and_ramp_up_at_the_nominal_rate() {
    let (mut scheduler, mut rx, t0) = started();
    const N: usize = 1000;
    schedule_spread(&mut scheduler, 0..N);
    let runs = runs(&mut rx, N, 2, t0).await;
    let mut starts: Vec<Instant> = runs.values().map(|at| t0 + at[0]).collect();
    starts.sort();
    assert_eq!(starts[0], t0, "the first run is not at once");
    // 1000 a 1.024 s: one every 1.024 ms, the round within one interval, never a burst.
    assert!(*starts.last().unwrap() - t0 < INTERVAL);
    let most = most_within(&starts, Duration::from_millis(16));
    assert!(most <= 17, "{most} first runs within 16 ms");
    // Then onto the grid, no run sooner than half an interval after the first.
    assert!(
        runs.values().all(|at| at[1] >= at[0] + INTERVAL / 2),
        "a check ran twice within half an interval"
    );
}

/// A ramp laid at a slow pace does not hold back the checks of a faster one: three checks
/// every hour ramp over an hour; after a reload to three checks every `INTERVAL`, what is
/// left of the old ramp is as many starts at the new pace, so the new checks start within
/// two `INTERVAL`s (found in the VM: first runs 20 minutes late).
#[tokio::test(start_paused = true)]
async fn a_reload_to_a_shorter_interval_is_not_held_back_by_the_old_ramp() {
    let (mut scheduler, mut rx, _) = started();
    let hourly = |k: u32| {
        let probe: Arc<dyn Checker> = Probe::taking(Duration::ZERO);
        (k, probe, Timing::every(Duration::from_secs(3600)))
    };
    scheduler.schedule_all((0..3).map(hourly));
    rx.recv().await.unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    scheduler.retain(|_| false);
    let t0 = Instant::now();
    schedule_spread(&mut scheduler, 10..13);
    let runs = runs(&mut rx, 3, 1, t0).await;
    let last = runs.values().map(|at| at[0]).max().unwrap();
    assert!(last < 2 * INTERVAL, "a first run {last:?} after the reload");
}

#[tokio::test(start_paused = true)]
async fn by_default_checks_are_spread_evenly_over_the_interval() {
    let (mut scheduler, mut rx, t0) = started();
    const N: usize = 1000;
    schedule_spread(&mut scheduler, 0..N);
    // From the second run on, every check runs in its slot.
    let runs = runs(&mut rx, N, 3, t0).await;
    for k in [2, 4, 8, 16, 32, 64] {
        let most = most_in_a_slice(runs.values().map(|at| at[1]), k);
        assert!(
            most <= N.div_ceil(k as usize),
            "{most} starts in one 1/{k} of the interval"
        );
    }
    // And each keeps its slot: the third run is the second one interval later.
    assert!(runs.values().all(|at| at[2] == at[1] + INTERVAL));
}

#[tokio::test(start_paused = true)]
async fn the_checks_of_one_host_are_evenly_offset() {
    let (mut scheduler, mut rx, t0) = started();
    // 20 hosts with 50 ports each, scheduled host by host as the daemon does.
    const HOSTS: u16 = 20;
    const PORTS: u16 = 50;
    let hosts = (0..HOSTS).flat_map(|host| (0..PORTS).map(move |port| (host, port)));
    schedule_spread(&mut scheduler, hosts);
    let runs = runs(&mut rx, usize::from(HOSTS * PORTS), 2, t0).await;
    for host in 0..HOSTS {
        let mine: Vec<Duration> = runs
            .iter()
            .filter(|(k, _)| k.0 == host)
            .map(|(_, at)| at[1])
            .collect();
        for k in [2, 4, 8] {
            let most = most_in_a_slice(mine.iter().copied(), k);
            assert!(
                most <= usize::from(PORTS).div_ceil(k as usize),
                "host {host}: {most} starts in one 1/{k}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn lockstep_only_when_asked() {
    let (mut scheduler, mut rx, t0) = started();
    schedule_spread(&mut scheduler, (0..100).map(|i| ("spread", i)));
    for i in 0..100 {
        scheduler.schedule(
            ("lockstep", i),
            Probe::taking(Duration::ZERO),
            Timing::lockstep(INTERVAL),
        );
    }
    let first = runs(&mut rx, 200, 1, t0).await;
    let instants = |kind: &str| -> HashSet<Duration> {
        let of_kind = first.iter().filter(|(k, _)| k.0 == kind);
        of_kind.map(|(_, at)| at[0]).collect()
    };
    assert_eq!(
        instants("lockstep"),
        HashSet::from([Duration::ZERO]),
        "lockstep checks start together"
    );
    assert_eq!(
        instants("spread").len(),
        100,
        "two spread checks started at the same instant"
    );
}

/// A check that takes `slow` while the backend is overloaded (before `until`), then no time.
#[derive(Debug)]
struct Overloaded {
    slow: Duration,
    until: Instant,
}

impl Checker for Overloaded {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            if Instant::now() < self.until {
                tokio::time::sleep(self.slow).await;
                return Outcome::down("timeout", self.slow);
            }
            Outcome::up("-", Duration::ZERO)
        })
    }
}

/// The most starts within any `window` of the sorted `starts`.
fn most_within(starts: &[Instant], window: Duration) -> usize {
    (0..starts.len())
        .map(|i| {
            starts[i..]
                .iter()
                .take_while(|s| **s - starts[i] < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn after_an_overload_starts_do_not_come_in_bursts() {
    let (mut scheduler, mut rx, t0) = started();
    // Every check times out (1.5 s on a 1 s interval) for the first 5 s.
    let until = t0 + 5 * SEC;
    scheduler.schedule_all((0..100).map(|i| {
        let checker: Arc<dyn Checker> = Arc::new(Overloaded {
            slow: Duration::from_millis(1500),
            until,
        });
        (i, checker, Timing::every(SEC))
    }));
    let mut after = Vec::new();
    while after.len() < 300 {
        let r = rx.recv().await.unwrap();
        if r.started_at >= until {
            assert!(r.outcome.is_up());
            after.push(r.started_at);
        }
    }
    after.sort();
    // 100 checks a second evenly spread: one every 10 ms, never a herd.
    assert!(
        most_within(&after, Duration::from_millis(10)) <= 2,
        "starts came in a burst after the overload"
    );
}

#[tokio::test(start_paused = true)]
async fn a_director_that_falls_behind_catches_up_paced() {
    let (mut scheduler, mut rx, t0) = started();
    schedule_spread(&mut scheduler, 0..100);
    runs(&mut rx, 100, 2, t0).await;
    // The director stalls for half an interval: the checks due meanwhile wake all at once.
    let stall = INTERVAL + INTERVAL / 2;
    tokio::time::advance(stall).await;
    let mut starts = Vec::new();
    let mut late = Duration::ZERO;
    for _ in 0..200 {
        let r = rx.recv().await.unwrap();
        late = late.max(r.lateness());
        starts.push(r.started_at);
    }
    starts.sort();
    // They start late: the pacer's 50 ms of tolerance (10 checks at 5.12 ms) at once (the
    // 11th 1.2 ms later), then one after another at twice the nominal rate, not as one
    // herd (about 70 are due), and the backlog drains within half an interval.
    assert!(
        late > Duration::ZERO && late < stall + INTERVAL / 2,
        "lateness {late:?}"
    );
    let at_once = most_within(&starts, Duration::from_millis(5));
    assert!(
        at_once <= 11,
        "{at_once} starts within 5 ms after the stall"
    );
    let herd = most_within(&starts, Duration::from_millis(100));
    assert!(
        herd <= 11 + 20,
        "{herd} starts within 100 ms after the stall"
    );
}
