//! The soak (issue 14): the real `ldirectord` binary in the foreground with the userspace
//! engine, for 30 minutes by default (`--minutes N`), on 5,000 reals over 10 virtual
//! services plus one of external checks, in a private network namespace (`unshare --net`,
//! needs root; the example re-executes itself there).
//!
//! Why the binary and the userspace engine: it is the daemon operators run, with its
//! signal handling, control socket, metrics server and child processes; the userspace
//! engine needs no IPVS, so the soak runs on any Linux host, and its table is what the
//! daemon reports in `status --json` (`table_weight`).
//!
//! What it does to the daemon, all at once:
//! - HTTP negotiate checks of every real (`checkinterval`, 10 s by default), answered by one
//!   backend in this process that listens on the wildcard address (every 127/8 address of
//!   the namespace) and answers 500 for the reals it has taken down: a tenth of the reals
//!   flap, each flipped at random (a tenth of them every second);
//! - a reload every 10 s (config rewritten, then SIGHUP) cycling through variants that add
//!   100 reals, remove 100, reweight 700, and the base; a burst of 5 SIGHUPs every minute;
//! - external checks (20 reals, `checktimeout=3`), 5 of which sleep past their timeout;
//! - `status --json` over the control socket and `GET /metrics` every second.
//!
//! Every second it samples the daemon's RSS, open descriptors, threads and child
//! processes; at the end it prints their least-squares slope after the warm-up (the first
//! third, at most 5 minutes), the check lateness percentiles (`ldirectord_check_lateness_
//! seconds`, over the run after the warm-up), how long status and scrapes took, checks that
//! stopped reporting (none may go 60 s without a new `checked_at`), and, after the flapping
//! stops and the base variant is loaded, whether the table equals the expected one.
//! Exits non-zero when the daemon died or panicked, a check got stuck, or the table differs.
//!
//! ```text
//! cargo build --bin ldirectord && cargo run --example soak -- --minutes 10
//! ```
//! Options: `--minutes N` (30), `--reals N` (5000), `--interval S` (10), `--bin PATH`
//! (`target/debug/ldirectord`; `LDIRECTORD` also works); `--no-reloads` (no reloads, no
//! SIGHUP bursts) and `--no-reads` (status and metrics read only to measure) tell their
//! cost from the rest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ldirectord::status::{Snapshot, protocol};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng;
use rand::seq::IteratorRandom;

const BACKEND_PORT: u16 = 8080;
const METRICS: &str = "127.0.0.1:9595";
const VIRTUALS: usize = 10;
const EXTERNAL_REALS: u8 = 20;
/// External reals 1..=5 sleep past their timeout.
const EXTERNAL_HUNG: u8 = 5;
/// A check that has not reported for this long is stuck.
const STUCK_AFTER: Duration = Duration::from_secs(60);

struct Args {
    minutes: f64,
    reals: usize,
    interval: u64,
    bin: PathBuf,
    /// `--no-reloads`: no reloads, no SIGHUP bursts (to tell their cost from the rest).
    reloads: bool,
    /// `--no-reads`: no status or metrics reads during the run.
    reads: bool,
}

fn args() -> Args {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Args {
        minutes: 30.0,
        reals: 5000,
        interval: 10,
        bin: std::env::var_os("LDIRECTORD")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/debug/ldirectord")),
        reloads: true,
        reads: true,
    };
    let all: Vec<String> = std::env::args().skip(1).collect();
    let mut it = all.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--no-reloads" => {
                out.reloads = false;
                continue;
            }
            "--no-reads" => {
                out.reads = false;
                continue;
            }
            _ => {}
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--minutes" => out.minutes = value.parse().expect("--minutes N"),
            "--reals" => out.reals = value.parse().expect("--reals N"),
            "--interval" => out.interval = value.parse().expect("--interval S"),
            "--bin" => out.bin = value.into(),
            other => panic!("unknown option {other}"),
        }
    }
    out
}

/// Real `k`'s address: 127.2.x.y, 250 a /24.
fn real_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 2, (k / 250) as u8, (k % 250 + 1) as u8)
}

/// The config variants: which reals, at which weight. Real `k` is in virtual `k % 10`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    Base,
    Add,
    Remove,
    Reweight,
}

impl Variant {
    const CYCLE: [Variant; 4] = [
        Variant::Add,
        Variant::Remove,
        Variant::Reweight,
        Variant::Base,
    ];

    fn reals(self, n: usize) -> Vec<(usize, u32)> {
        let range = match self {
            Variant::Add => 0..n + 100,
            Variant::Remove => 100..n,
            _ => 0..n,
        };
        range
            .map(|k| {
                let w = if self == Variant::Reweight && k % 7 == 0 {
                    2 + (k % 4) as u32
                } else {
                    1
                };
                (k, w)
            })
            .collect()
    }
}

fn config(dir: &Path, variant: Variant, n: usize, interval: u64) -> String {
    let mut out = format!(
        "logfile=\"{}\"\ncheckinterval={interval}\nchecktimeout=3\nnegotiatetimeout=3\n\
         failurecount=1\nquiescent=no\nmetrics={METRICS}\n\n",
        dir.join("ld.log").display()
    );
    let reals = variant.reals(n);
    for v in 0..VIRTUALS {
        out.push_str(&format!("virtual=127.1.0.{}:8000\n", v + 1));
        for (k, w) in reals.iter().filter(|(k, _)| k % VIRTUALS == v) {
            out.push_str(&format!("\treal={}:{BACKEND_PORT} masq {w}\n", real_ip(*k)));
        }
        out.push_str(
            "\tservice=http\n\trequest=\"/\"\n\treceive=\"OK\"\n\tchecktype=negotiate\n\
             \tscheduler=wrr\n\n",
        );
    }
    out.push_str("virtual=127.1.0.100:8000\n");
    for r in 1..=EXTERNAL_REALS {
        out.push_str(&format!("\treal=127.3.0.{r}:{BACKEND_PORT} masq\n"));
    }
    out.push_str(&format!(
        "\tchecktype=external\n\tcheckcommand=\"{}\"\n\tscheduler=wrr\n",
        dir.join("external-check").display()
    ));
    out
}

/// The backend: 200 `OK`, or 500 for an address taken down.
fn serve(down: Arc<RwLock<HashSet<Ipv4Addr>>>) {
    // One thread (this one) is plenty for a few hundred checks a second.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the backend's runtime");
    runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", BACKEND_PORT))
            .await
            .expect("backend port");
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let down = down.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let ip = match conn.local_addr() {
                    Ok(SocketAddr::V4(a)) => *a.ip(),
                    _ => return,
                };
                let reply: &[u8] = if down.read().unwrap().contains(&ip) {
                    b"HTTP/1.1 500 Down\r\nContent-Length: 4\r\nConnection: close\r\n\r\nDOWN"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
                };
                let _ = conn.write_all(reply).await;
            });
        }
    });
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    t: f64,
    rss_kib: f64,
    fds: f64,
    threads: f64,
    children: f64,
}

fn sample(pid: u32, t: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as f64;
    // Each thread lists the children it forked.
    let children: usize = std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .map(|c| c.split_whitespace().count())
        .sum();
    let children = children as f64;
    Some(Sample {
        t,
        rss_kib: field("VmRSS:")?,
        fds,
        threads: field("Threads:")?,
        children,
    })
}

/// Least-squares slope of `y` over `t` (seconds), per hour.
fn slope_per_hour(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if var == 0.0 { 0.0 } else { cov / var * 3600.0 }
}

fn get_metrics() -> Option<String> {
    let mut s = TcpStream::connect(METRICS).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_owned())
}

/// The lateness histogram's cumulative buckets, `le -> count`.
fn lateness_buckets(metrics: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("ldirectord_check_lateness_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, count) = l.split_once("\"} ")?;
            Some((le.to_owned(), count.parse().ok()?))
        })
        .collect()
}

/// Quantiles (upper bucket bounds) of the difference of two cumulative histograms.
fn quantiles(first: &BTreeMap<String, f64>, last: &BTreeMap<String, f64>) -> (f64, String) {
    let mut buckets: Vec<(f64, f64)> = last
        .iter()
        .map(|(le, c)| {
            let bound = le.parse().unwrap_or(f64::INFINITY);
            (bound, c - first.get(le).copied().unwrap_or(0.0))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let all = buckets.last().map_or(0.0, |b| b.1);
    let q = |q: f64| {
        buckets
            .iter()
            .find(|b| b.1 >= q * all)
            .map_or(f64::INFINITY, |b| b.0)
    };
    let over_1s = all - buckets.iter().find(|b| b.0 >= 1.0).map_or(all, |b| b.1);
    (
        all,
        format!(
            "p50 <= {} s, p90 <= {} s, p99 <= {} s, p99.9 <= {} s, {} runs more than ~1 s late",
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            over_1s
        ),
    )
}

/// The snapshot `status --json` prints, asked over the control socket (the CLI would
/// first look for a pid file, which a foreground daemon does not write).
fn status(socket: &Path) -> Option<Snapshot> {
    let response = protocol::request(socket, protocol::Command::Status).ok()?;
    response.status.map(|s| *s)
}

/// What the reader thread saw.
#[derive(Default)]
struct Reads {
    status_ms: Vec<f64>,
    scrape_ms: Vec<f64>,
    status_failed: usize,
    scrape_failed: usize,
    stuck: HashSet<(String, String)>,
    lateness_at_warmup: Option<BTreeMap<String, f64>>,
    last_metrics: String,
}

/// Status and metrics, each once a second (a tick is skipped while the last read is
/// still going), in a thread of their own so that a slow answer does not slow the flaps
/// and reloads down.
fn read_every_second(
    socket: &Path,
    started: Instant,
    warmup: Duration,
    stop: &AtomicBool,
    all: bool,
) -> Reads {
    let mut reads = Reads::default();
    let mut last_checked: HashMap<(String, String), (String, Instant)> = HashMap::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let warm = started.elapsed() >= warmup;
        if !all && (reads.lateness_at_warmup.is_some() || !warm) {
            // Only the metrics at the end of the warm-up (and at the end).
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let asked = Instant::now();
        match status(socket).filter(|_| all) {
            Some(snapshot) => {
                reads.status_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
                let now = Instant::now();
                for v in &snapshot.virtuals {
                    for r in &v.reals {
                        let Some(check) = &r.check else { continue };
                        let key = (v.id.clone(), r.server.clone());
                        let entry = last_checked
                            .entry(key.clone())
                            .or_insert((check.checked_at.clone(), now));
                        if entry.0 != check.checked_at {
                            *entry = (check.checked_at.clone(), now);
                        } else if now - entry.1 > STUCK_AFTER
                            && started.elapsed() > warmup
                            && reads.stuck.insert(key.clone())
                        {
                            println!("stuck: {} {} since {}", key.0, key.1, entry.0);
                        }
                    }
                }
            }
            None if all => reads.status_failed += 1,
            None => {}
        }
        let asked = Instant::now();
        match get_metrics() {
            Some(m) => {
                reads.scrape_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
                if reads.lateness_at_warmup.is_none() && started.elapsed() >= warmup {
                    reads.lateness_at_warmup = Some(lateness_buckets(&m));
                }
                reads.last_metrics = m;
            }
            None => reads.scrape_failed += 1,
        }
        next += Duration::from_secs(1);
        let now = Instant::now();
        while next < now {
            next += Duration::from_secs(1);
        }
        std::thread::sleep(next - now);
    }
    if let Some(m) = get_metrics() {
        reads.last_metrics = m;
    }
    reads
}

struct Soak {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Soak {
    fn socket(&self) -> PathBuf {
        ldirectord::instance::control_socket(&self.dir.path().join("run"), "soak.cf")
    }

    fn write_config(&self, variant: Variant, args: &Args) {
        let path = self.dir.path().join("soak.cf");
        let tmp = self.dir.path().join("soak.cf.new");
        std::fs::write(
            &tmp,
            config(self.dir.path(), variant, args.reals, args.interval),
        )
        .unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    fn hup(&self) {
        let _ = kill(Pid::from_raw(self.daemon.id() as i32), Signal::SIGHUP);
    }
}

impl Drop for Soak {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.daemon.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.daemon.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Expected `table_weight` per (virtual, real) once the flapping has stopped: every
/// HTTP real of the variant at its weight, the external reals that answer at 1.
fn expected(variant: Variant, n: usize) -> HashMap<(String, String), Option<u32>> {
    let mut out = HashMap::new();
    for (k, w) in variant.reals(n) {
        let virt = format!("tcp:127.1.0.{}:8000", k % VIRTUALS + 1);
        out.insert((virt, format!("{}:{BACKEND_PORT}", real_ip(k))), Some(w));
    }
    for r in 1..=EXTERNAL_REALS {
        let weight = (r > EXTERNAL_HUNG).then_some(1);
        out.insert(
            (
                "tcp:127.1.0.100:8000".into(),
                format!("127.3.0.{r}:{BACKEND_PORT}"),
            ),
            weight,
        );
    }
    out
}

fn differences(snapshot: &Snapshot, want: &HashMap<(String, String), Option<u32>>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for v in &snapshot.virtuals {
        for r in &v.reals {
            let key = (v.id.clone(), r.server.clone());
            match want.get(&key) {
                Some(w) if *w == r.table_weight => {}
                Some(w) => out.push(format!(
                    "{} {}: table weight {:?}, expected {w:?} ({})",
                    v.id,
                    r.server,
                    r.table_weight,
                    r.state.as_str()
                )),
                None => out.push(format!("{} {}: not expected", v.id, r.server)),
            }
            seen.insert(key);
        }
    }
    for key in want.keys().filter(|k| !seen.contains(*k)) {
        out.push(format!("{} {}: missing", key.0, key.1));
    }
    out.sort();
    out
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    if std::env::var_os("LDRS_SOAK_NETNS").is_none() {
        let me = std::env::current_exe().unwrap();
        let status = Command::new("unshare")
            .arg("--net")
            .arg(me)
            .args(std::env::args().skip(1))
            .env("LDRS_SOAK_NETNS", "1")
            .status()
            .expect("unshare --net (the soak needs root)");
        std::process::exit(status.code().unwrap_or(1));
    }
    let args = args();
    let ok = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    assert!(ok.is_ok_and(|s| s.success()), "ip link set lo up");
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let warmup = (total / 3).min(Duration::from_secs(300));

    let down: Arc<RwLock<HashSet<Ipv4Addr>>> = Arc::default();
    {
        let down = down.clone();
        std::thread::spawn(move || serve(down));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("run")).unwrap();
    let script = dir.path().join("external-check");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$3\" in\n127.3.0.[1-{EXTERNAL_HUNG}]) exec sleep 30 ;;\nesac\nexit 0\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    std::fs::write(
        dir.path().join("soak.cf"),
        config(dir.path(), Variant::Base, args.reals, args.interval),
    )
    .unwrap();
    let daemon = Command::new(&args.bin)
        .arg("-d")
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .args(["--engine", "userspace"])
        .arg(dir.path().join("soak.cf"))
        .arg("start")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start the daemon");
    let pid = daemon.id();
    let soak = Soak { dir, daemon };
    println!(
        "soak: {} reals + {EXTERNAL_REALS} external, interval {} s, {:.1} min, warm-up {} s, \
         daemon pid {pid} ({})",
        args.reals,
        args.interval,
        args.minutes,
        warmup.as_secs(),
        args.bin.display()
    );

    let flappers: Vec<Ipv4Addr> = (0..args.reals)
        .filter(|k| k % 10 == 3)
        .map(real_ip)
        .collect();
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut samples = Vec::new();
    let stop = AtomicBool::new(false);
    let socket = soak.socket();
    let mut variant = 0usize;
    let mut reloads = 0usize;
    let mut hups = 0usize;
    let mut second = 0u64;
    let mut died = false;
    let reads = std::thread::scope(|scope| {
        let reader = scope.spawn(|| read_every_second(&socket, started, warmup, &stop, args.reads));
        while started.elapsed() < total {
            second += 1;
            let tick = started + Duration::from_secs(second);
            // Flap a tenth of the flappers.
            {
                let mut set = down.write().unwrap();
                for ip in flappers
                    .iter()
                    .choose_multiple(&mut rng, flappers.len() / 10)
                {
                    if !set.remove(ip) {
                        set.insert(*ip);
                    }
                }
            }
            if args.reloads && second.is_multiple_of(10) {
                let next = Variant::CYCLE[variant % Variant::CYCLE.len()];
                variant += 1;
                soak.write_config(next, &args);
                soak.hup();
                reloads += 1;
                hups += 1;
            }
            if args.reloads && second % 60 == 35 {
                for _ in 0..5 {
                    soak.hup();
                    hups += 1;
                    std::thread::sleep(Duration::from_millis(rng.random_range(1..10)));
                }
            }
            match sample(pid, started.elapsed().as_secs_f64()) {
                Some(s) => {
                    if second.is_multiple_of(30) {
                        println!(
                            "t={:>5.0}s rss={:.1} MiB fds={} threads={} children={} reloads={reloads} hups={hups}",
                            s.t,
                            s.rss_kib / 1024.0,
                            s.fds,
                            s.threads,
                            s.children
                        );
                    }
                    samples.push(s);
                }
                None => {
                    died = true;
                    println!(
                        "the daemon is gone at t={:.0}s",
                        started.elapsed().as_secs_f64()
                    );
                    break;
                }
            }
            if let Some(wait) = tick.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap()
    });
    let Reads {
        mut status_ms,
        mut scrape_ms,
        status_failed,
        scrape_failed,
        stuck,
        lateness_at_warmup,
        last_metrics,
    } = reads;

    // The end: no flapping, the base variant, then the table must match.
    let mut mismatches = Vec::new();
    if !died {
        down.write().unwrap().clear();
        soak.write_config(Variant::Base, &args);
        soak.hup();
        let want = expected(Variant::Base, args.reals);
        let deadline = Instant::now() + Duration::from_secs(args.interval * 6 + 60);
        loop {
            mismatches = status(&socket)
                .map(|s| differences(&s, &want))
                .unwrap_or_else(|| vec!["no status".into()]);
            if mismatches.is_empty() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let log = std::fs::read_to_string(soak.dir.path().join("stderr")).unwrap_or_default();
    let panics = log.lines().filter(|l| l.contains("panicked")).count();

    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t >= warmup.as_secs_f64())
        .collect();
    let series =
        |f: fn(&Sample) -> f64| -> Vec<(f64, f64)> { after.iter().map(|s| (s.t, f(s))).collect() };
    let range = |f: fn(&Sample) -> f64| {
        let v: Vec<f64> = after.iter().map(|s| f(s)).collect();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    };
    println!(
        "\nsoak done: {:.1} min, {} samples ({} after the warm-up), {reloads} reloads, {hups} SIGHUPs",
        started.elapsed().as_secs_f64() / 60.0,
        samples.len(),
        after.len()
    );
    let (lo, hi) = range(|s| s.rss_kib / 1024.0);
    println!(
        "RSS: slope {:+.2} MiB/h after warm-up (range {lo:.1}-{hi:.1} MiB)",
        slope_per_hour(&series(|s| s.rss_kib / 1024.0))
    );
    let (lo, hi) = range(|s| s.fds);
    println!(
        "open fds: slope {:+.2}/h (range {lo}-{hi})",
        slope_per_hour(&series(|s| s.fds))
    );
    let (lo, hi) = range(|s| s.threads);
    println!(
        "threads: slope {:+.2}/h (range {lo}-{hi})",
        slope_per_hour(&series(|s| s.threads))
    );
    let (lo, hi) = range(|s| s.children);
    println!(
        "child processes: slope {:+.2}/h (range {lo}-{hi})",
        slope_per_hour(&series(|s| s.children))
    );
    if let Some(first) = &lateness_at_warmup {
        let (runs, text) = quantiles(first, &lateness_buckets(&last_metrics));
        println!("check lateness after warm-up ({runs} runs): {text}");
    }
    let (runs, text) = quantiles(&BTreeMap::new(), &lateness_buckets(&last_metrics));
    println!("check lateness whole run ({runs} runs): {text}");
    for (name, ms, failed) in [
        ("status --json", &mut status_ms, status_failed),
        ("GET /metrics", &mut scrape_ms, scrape_failed),
    ] {
        ms.sort_by(f64::total_cmp);
        println!(
            "{name}: {} answered, {failed} failed; p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            ms.len(),
            percentile(ms, 0.5),
            percentile(ms, 0.99),
            ms.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!("stuck checks: {}", stuck.len());
    println!("panics in the log: {panics}");
    println!(
        "table at the end: {} (of {} expected entries)",
        if mismatches.is_empty() {
            "as expected".to_owned()
        } else {
            format!("{} differences", mismatches.len())
        },
        expected(Variant::Base, args.reals).len()
    );
    for m in mismatches.iter().take(20) {
        println!("  {m}");
    }
    let failed = died || panics > 0 || !stuck.is_empty() || !mismatches.is_empty();
    drop(soak);
    std::process::exit(i32::from(failed));
}
