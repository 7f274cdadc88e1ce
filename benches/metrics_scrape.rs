//! What `metrics=` costs, with 10,000 real servers (100 virtual services x 100 reals).
//!
//! 1. `scrape`: the per-real snapshot refresh (`Metrics::refresh`, what the loop does after
//!    the core acted) and one scrape's encoding (`Metrics::encode`): median of 21 runs
//!    each, and the scrape's size in bytes.
//! 2. `on time`: the daemon's loop in miniature on a multi-threaded runtime (one worker per
//!    core, as the daemon): the real scheduler runs 10,000 checks every second (a checker
//!    that only yields, so the figures are the daemon's own overhead; 1% of the reals
//!    flap every 5 s, so the snapshot keeps being refreshed), each result goes through
//!    `Director::on_check` and the metrics hooks, and `/metrics` is served on loopback.
//!    Two phases: nobody scrapes, then a client GETs `/metrics` every second. Figures per
//!    phase: checks run, the share started within 50 ms of their schedule, p99 lateness,
//!    and the scrapes' median time and size.
//!
//! ```text
//! cargo bench --bench metrics_scrape                       # 20 s per phase
//! LDRS_BENCH_SECS=60 cargo bench --bench metrics_scrape
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ldirectord::daemon::metrics::Metrics;
use ldirectord::director::{Action, CheckResult, Director};
use ldirectord::engine::Table;
use ldirectord_checks::scheduler::{self, Scheduler, Timing};
use ldirectord_checks::{BoxFuture, CheckSpec, Checker, Outcome};
use ldirectord_parsers::config::Config;
use tokio::sync::mpsc;

#[allow(dead_code)]
mod support;

const VIRTUALS: usize = 100;
const REALS: usize = 100;
const ON_TIME: Duration = Duration::from_millis(50);

fn config() -> Config {
    let mut text = String::from("checkinterval=1\n");
    for v in 0..VIRTUALS {
        text.push_str(&format!("virtual=10.0.{v}.1:80\n\tchecktype=connect\n"));
        for r in 0..REALS {
            text.push_str(&format!("\treal=172.16.{v}.{}:80 masq 1\n", r + 1));
        }
    }
    support::parse(&text)
}

/// Up, except 1% of the reals, which are down every other 5 s.
#[derive(Debug)]
struct Synthetic {
    flaps: bool,
    origin: Instant,
}

impl Checker for Synthetic {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            if self.flaps && (self.origin.elapsed().as_secs() / 5) % 2 == 1 {
                Outcome::down("flapping", Duration::ZERO)
            } else {
                Outcome::up("ok", Duration::ZERO)
            }
        })
    }
}

/// A director with every real checked up once, and the metrics of it.
fn director_all_up() -> Director {
    let (mut director, _) = Director::start(config(), &Table::default());
    for plan in director.checks() {
        director.on_check(&plan.spec, CheckResult::Up("ok"), Duration::ZERO);
    }
    director.running();
    director
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn scrape_figures() {
    let director = director_all_up();
    let reals: usize = director.status().iter().map(|v| v.reals.len()).sum();
    let status = director.status();
    assert!(
        status
            .iter()
            .flat_map(|v| &v.reals)
            .all(|r| r.table_weight == Some(1)),
        "all in the table"
    );
    let metrics = Metrics::new("netlink");
    let mut refresh = Vec::new();
    let mut encode = Vec::new();
    let mut bytes = 0;
    for _ in 0..21 {
        let t = Instant::now();
        metrics.refresh(&director);
        refresh.push(t.elapsed());
        let t = Instant::now();
        let text = metrics.encode();
        encode.push(t.elapsed());
        bytes = text.len();
        assert!(text.contains("ldirectord_real_up{"));
    }
    println!(
        "scrape: {reals} reals: snapshot refresh {:.2} ms, encode {:.2} ms, {bytes} bytes ({:.0} bytes per real)",
        median(refresh).as_secs_f64() * 1e3,
        median(encode).as_secs_f64() * 1e3,
        bytes as f64 / reals as f64
    );
}

/// One GET /metrics: (time to the last byte, bytes).
fn get(addr: SocketAddr) -> Option<(Duration, usize)> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).ok()?;
    Some((t.elapsed(), body.len()))
}

struct Phase {
    checks: u64,
    on_time: u64,
    lateness: Vec<Duration>,
}

async fn run_phase(
    secs: u64,
    scrape: Option<SocketAddr>,
    loop_state: &mut Loop,
) -> (Phase, Vec<(Duration, usize)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = scrape.map(|addr| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                if let Some(s) = get(addr) {
                    got.push(s);
                }
                std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
            }
            got
        })
    });
    let mut phase = Phase {
        checks: 0,
        on_time: 0,
        lateness: Vec::new(),
    };
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while let Ok(Some(result)) = tokio::time::timeout_at(end, loop_state.results.recv()).await {
        let late = result.lateness();
        phase.checks += 1;
        phase.on_time += u64::from(late <= ON_TIME);
        phase.lateness.push(late);
        loop_state.on_result(result);
    }
    stop.store(true, Ordering::SeqCst);
    let scrapes = scraper.map(|t| t.join().unwrap()).unwrap_or_default();
    (phase, scrapes)
}

/// The main loop's share of the work per result, as `daemon::run` does it.
struct Loop {
    director: Director,
    metrics: Metrics,
    results: mpsc::Receiver<scheduler::CheckResult<Arc<CheckSpec>>>,
}

impl Loop {
    fn on_result(&mut self, result: scheduler::CheckResult<Arc<CheckSpec>>) {
        self.metrics.check(&result.key, &result.outcome);
        let check = CheckResult::from(&result.outcome);
        let actions = self.director.on_check(&result.key, check, Duration::ZERO);
        let acted = !actions.is_empty();
        for action in actions {
            if let Action::Apply(op) = action {
                self.metrics.engine_op(&op, true);
            }
        }
        self.metrics.observe(&self.director, acted);
    }
}

fn report(name: &str, phase: &Phase, scrapes: &[(Duration, usize)]) {
    let mut late = phase.lateness.clone();
    late.sort();
    let p99 = late.get(late.len() * 99 / 100).copied().unwrap_or_default();
    let mut line = format!(
        "on time, {name}: {} checks, {:.2}% started within 50 ms, p99 lateness {:.1} ms",
        phase.checks,
        100.0 * phase.on_time as f64 / phase.checks.max(1) as f64,
        p99.as_secs_f64() * 1e3
    );
    if !scrapes.is_empty() {
        let times: Vec<Duration> = scrapes.iter().map(|s| s.0).collect();
        line.push_str(&format!(
            "; {} scrapes, median {:.1} ms, {} bytes",
            scrapes.len(),
            median(times).as_secs_f64() * 1e3,
            scrapes[0].1
        ));
    }
    println!("{line}");
}

fn on_time_figures(secs: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let director = director_all_up();
        let mut metrics = Metrics::new("netlink");
        metrics
            .serve(Some(([127, 0, 0, 1], 0).into()))
            .await
            .expect("bind loopback");
        let addr = bound_address(&metrics);
        let (tx, results) = mpsc::channel(1024);
        let mut scheduler = Scheduler::new(tx);
        let origin = Instant::now();
        for (i, plan) in director.checks().into_iter().enumerate() {
            let checker = Arc::new(Synthetic {
                flaps: i % 100 == 0,
                origin,
            });
            scheduler.schedule(plan.spec, checker, Timing::every(plan.interval));
        }
        let mut state = Loop {
            director,
            metrics,
            results,
        };
        // One interval to spread the first runs (jitter = interval).
        let _ = run_phase(2, None, &mut state).await;
        let (quiet, _) = run_phase(secs, None, &mut state).await;
        report("not scraped", &quiet, &[]);
        let (scraped, scrapes) = run_phase(secs, Some(addr), &mut state).await;
        report("scraped every 1 s", &scraped, &scrapes);
        drop(scheduler);
    });
}

/// `serve` was given port 0: find the port from the listener the OS picked.
fn bound_address(metrics: &Metrics) -> SocketAddr {
    metrics.local_address().expect("serving")
}

fn main() {
    let secs = std::env::var("LDRS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!(
        "metrics_scrape: {} cores, {VIRTUALS} virtuals x {REALS} reals",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    scrape_figures();
    on_time_figures(secs);
}
