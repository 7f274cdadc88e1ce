//! Check-load benchmark: many real servers checked every second by the real scheduler and
//! the real checkers from the registry, against loopback backends in a separate process.
//!
//! Scenarios (each in its own director process, so figures do not mix):
//! - `http`: 10,000 reals, HTTP negotiate (`request="/"`, `receive="OK"`), every 1 s;
//! - `tcp`: 50,000 reals, TCP connect, every 1 s;
//! - `hung`: 10,000 healthy HTTP reals plus 1,000 that accept and never answer
//!   (negotiatetimeout 2 s): the healthy ones' on-time share must not suffer;
//! - `recovery`: 10,000 healthy HTTP reals (`LDRS_BENCH_HTTP_REALS`) every 1 s; after
//!   `LDRS_BENCH_SECS` the backend is stopped (SIGSTOP) until every real has been reported
//!   down, stays stopped 6 s more, and resumes: the figure is how long after the resume the
//!   table would be complete again (every real's last result up), the issue-17 target
//!   being two intervals plus the timeout (4 s). Not in the default list;
//! - `floor-http`, `floor-tcp`: the same exchange done by one
//!   thread with blocking sockets as fast as it can, for at most 10 s. Its CPU per exchange
//!   is roughly what the kernel alone costs per check on this machine, the floor under any
//!   checker's figure.
//!
//! Reals are spread over 127.0.0.0/8 (`127.B.x.y`). The benchmark re-executes itself inside
//! a private network namespace (`unshare --net`, needs root), where the backend listens on
//! the wildcard address for all of them and nothing outside can connect.
//!
//! Every check runs with the timing an operator gets from a configuration without
//! `checkjitter=` or `checkspread=` ([`Timing::configured`] on the default globals: each
//! check in an evenly spread slot of its own), every 1 s; `LDRS_BENCH_CHECKJITTER=P` and
//! `LDRS_BENCH_CHECKSPREAD=P|lockstep` set those directives instead (the table's title says
//! which timing ran).
//!
//! Figures per scenario: checks/s, flaps (healthy reals that were reported down at least
//! once during the run: with failurecount 1, each left the table), director CPU per check (user+sys of the director process
//! from /proc/self/stat over the run, divided by the checks it ran), peak RSS (VmHWM), the
//! share of checks started within 50 ms of their schedule, the backend's CPU per check, and
//! the share of the machine's CPU the hypervisor stole during the run (/proc/stat): on a
//! shared host, steal takes capacity away and on-time figures drop with it.
//!
//! ```text
//! cargo bench -p ldirectord-checks --bench check_load            # 60 s per scenario
//! LDRS_BENCH_SECS=10 LDRS_BENCH_SCENARIOS=http,hung cargo bench -p ldirectord-checks --bench check_load
//! LDRS_BENCH_TCP_REALS=20000 LDRS_BENCH_SCENARIOS=tcp,floor-tcp cargo bench -p ldirectord-checks --bench check_load
//! ```
//!
//! Other knobs: `LDRS_BENCH_HTTP_REALS`, `LDRS_BENCH_HUNG_REALS`, `LDRS_BENCH_WORKERS`
//! (runtime worker threads; default one per core, as the daemon).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldirectord_checks::scheduler::{Scheduler, Timing};
use ldirectord_checks::{CheckSpec, Checker};
use ldirectord_parsers::config::{CheckSpread, Globals};
use ldirectord_parsers::config::{CheckType, Receive, Service};

#[path = "../examples/bench_backend.rs"]
mod backend;

const HTTP_PORT: u16 = 8080;
const HUNG_PORT: u16 = 8081;
const TCP_PORT: u16 = 9090;
const ON_TIME: Duration = Duration::from_millis(50);
const ROLE: &str = "LDRS_BENCH_ROLE";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("backend") => {
            let args: Vec<String> = std::env::var("LDRS_BENCH_BACKEND_ARGS")
                .unwrap()
                .split(' ')
                .map(str::to_owned)
                .collect();
            backend::serve(backend::parse_args(&args).unwrap())
        }
        Ok("director") => director(&std::env::var("LDRS_BENCH_SCENARIO").unwrap()),
        Ok("coordinator") => coordinator(),
        _ => enter_namespace(),
    }
}

/// Re-run this binary in a fresh network namespace.
fn enter_namespace() {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(&exe)
        .env(ROLE, "coordinator")
        .status()
        .expect("the benchmark needs unshare(1) (util-linux)");
    if !status.success() {
        eprintln!(
            "check_load: the run in a private network namespace failed ({status}); it needs root \
             (CAP_SYS_ADMIN) for `unshare --net`"
        );
        std::process::exit(1);
    }
}

fn coordinator() {
    let ip = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("ip(8) from iproute2");
    assert!(
        ip.success(),
        "could not bring lo up in the benchmark's namespace"
    );
    let secs: u64 = env_or("LDRS_BENCH_SECS", 60);
    let scenarios = std::env::var("LDRS_BENCH_SCENARIOS")
        .unwrap_or_else(|_| "http,tcp,hung,floor-http,floor-tcp".into());

    let exe = std::env::current_exe().unwrap();
    let mut backend = Command::new(&exe)
        .env(ROLE, "backend")
        .env(
            "LDRS_BENCH_BACKEND_ARGS",
            format!("--http {HTTP_PORT} --tcp {TCP_PORT} --hung {HUNG_PORT}"),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(backend.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "backend did not start");

    let mut rows = Vec::new();
    let mut recoveries = Vec::new();
    for scenario in scenarios.split(',').filter(|s| !s.is_empty()) {
        eprintln!("check_load: scenario {scenario}, {secs} s ...");
        let backend_cpu0 = process_cpu(&backend.id().to_string());
        let out = Command::new(&exe)
            .env(ROLE, "director")
            .env("LDRS_BENCH_BACKEND_PID", backend.id().to_string())
            .env("LDRS_BENCH_SCENARIO", scenario)
            .env("LDRS_BENCH_SECS", secs.to_string())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        if !out.status.success() {
            let _ = backend.kill();
            panic!("director for {scenario} failed");
        }
        let backend_cpu = process_cpu(&backend.id().to_string()) - backend_cpu0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(r) = line.strip_prefix("RECOVERY\t") {
                let f: Vec<&str> = r.split('\t').collect();
                recoveries.push(format!(
                    "recovery: {} reals every 1 s, backend stopped until all were down, 6 s more, then resumed: \
                     table complete {} s after the resume (target 4 s), {} checks meanwhile, latest start {} ms late",
                    f[0], f[1], f[2], f[3]
                ));
            }
        }
        let scenario_rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("ROW\t"))
            .map(str::to_owned)
            .collect();
        let checks: u64 = scenario_rows
            .iter()
            .filter_map(|r| r.split('\t').nth(2)?.parse::<u64>().ok())
            .sum();
        for row in scenario_rows {
            let per_check = backend_cpu.as_secs_f64() / checks.max(1) as f64 * 1e6;
            rows.push(format!("{row}\t{per_check:.1} µs"));
        }
    }
    let _ = backend.kill();
    let _ = backend.wait();

    println!(
        "\ncheck_load: {secs} s per scenario, checkinterval 1 s, timeouts 2 s, {} cores, timing: {}",
        cores(),
        timing_name()
    );
    println!(
        "{:<28} {:>7} {:>9} {:>9} {:>6} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7} {:>11}",
        "scenario / group",
        "reals",
        "checks",
        "checks/s",
        "flaps",
        "CPU/check",
        "RSS peak",
        "on time",
        "p99 late",
        "max late",
        "up",
        "steal",
        "backend/chk"
    );
    for row in rows {
        let f: Vec<&str> = row.split('\t').collect();
        println!(
            "{:<28} {:>7} {:>9} {:>9} {:>6} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7} {:>11}",
            f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12]
        );
    }
    for line in &recoveries {
        println!("{line}");
    }
    println!(
        "flaps: healthy reals reported down at least once (each would have left the table). \
         CPU/check: the director's user+sys CPU per check; backend/chk: the backend process's. \
         steal: the share of the machine's CPU time the hypervisor took during the run."
    );
}

/// `checkjitter=` and `checkspread=` as `LDRS_BENCH_CHECKJITTER` and
/// `LDRS_BENCH_CHECKSPREAD` give them (a percentage, or `lockstep`); unset: the defaults.
fn timing_directives() -> (u32, CheckSpread) {
    let globals = Globals::default();
    let jitter = env_or("LDRS_BENCH_CHECKJITTER", globals.checkjitter);
    let spread = match std::env::var("LDRS_BENCH_CHECKSPREAD").as_deref() {
        Ok("lockstep") => CheckSpread::Lockstep,
        Ok(p) => CheckSpread::Percent(p.parse().expect("LDRS_BENCH_CHECKSPREAD: a percentage")),
        Err(_) => globals.checkspread,
    };
    (jitter, spread)
}

/// How the benchmark's checks are timed, for the table's title.
fn timing_name() -> String {
    let (jitter, spread) = timing_directives();
    let (d, d_spread) = (
        Globals::default().checkjitter,
        Globals::default().checkspread,
    );
    if (jitter, spread) == (d, d_spread) {
        "an operator's default (spread slots; no checkjitter, no checkspread)".to_owned()
    } else {
        format!("checkjitter={jitter} checkspread={spread}")
    }
}

/// The timing of a check every second, as the daemon would run it.
fn operator_timing() -> Timing {
    let (jitter, spread) = timing_directives();
    Timing::configured(Duration::from_secs(1), jitter, spread)
}

/// One group of reals in a scenario.
struct Group {
    name: &'static str,
    specs: Vec<CheckSpec>,
    /// Whether its backend answers: a down result is then a flap.
    healthy: bool,
}

fn director(scenario: &str) {
    let secs: u64 = env_or("LDRS_BENCH_SECS", 60);
    // Sizes can be lowered to find where a smaller machine keeps up.
    let http: usize = env_or("LDRS_BENCH_HTTP_REALS", 10_000);
    let tcp: usize = env_or("LDRS_BENCH_TCP_REALS", 50_000);
    let hung: usize = env_or("LDRS_BENCH_HUNG_REALS", 1_000);
    let groups = match scenario {
        "http" => vec![Group {
            name: "http",
            specs: http_specs(1, http, HTTP_PORT),
            healthy: true,
        }],
        "tcp" => vec![Group {
            name: "tcp connect",
            specs: tcp_specs(2, tcp),
            healthy: true,
        }],
        "hung" => vec![
            Group {
                name: "http beside hung",
                specs: http_specs(3, http, HTTP_PORT),
                healthy: true,
            },
            Group {
                name: "  the hung ones",
                specs: http_specs(4, hung, HUNG_PORT),
                healthy: false,
            },
        ],
        "recovery" => vec![Group {
            name: "http recovery",
            specs: http_specs(5, http, HTTP_PORT),
            healthy: true,
        }],
        "floor-http" | "floor-tcp" => return floor(scenario, secs.min(10)),
        other => panic!("unknown scenario {other}"),
    };
    // The daemon's runtime: multi-threaded, one worker per core unless told otherwise.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = std::env::var("LDRS_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
    {
        builder.worker_threads(workers);
    }
    let runtime = builder.enable_all().build().unwrap();
    // The collecting loop runs on a worker, as the daemon's main loop does: a result then
    // wakes a task, not a parked thread.
    let groups = Arc::new(groups);
    let task = {
        let groups = Arc::clone(&groups);
        let recovery = scenario == "recovery";
        runtime.spawn(async move { run(&groups, Duration::from_secs(secs), recovery).await })
    };
    let stats = runtime.block_on(task).unwrap();
    let total_checks: u64 = stats.iter().map(|s| s.checks).sum();
    let cpu = stats[0].cpu;
    let rss = vm_hwm_kib();
    for (group, s) in groups.iter().zip(&stats) {
        let per_check = cpu.as_secs_f64() / total_checks.max(1) as f64;
        println!(
            "ROW\t{}\t{}\t{}\t{:.0}\t{}\t{:.1} µs\t{:.1} MiB\t{:.3}%\t{} ms\t{} ms\t{:.1}%\t{:.1}%",
            group.name,
            group.specs.len(),
            s.checks,
            s.checks as f64 / secs as f64,
            if group.healthy {
                s.flapped.len().to_string()
            } else {
                "-".to_owned()
            },
            per_check * 1e6,
            rss as f64 / 1024.0,
            100.0 * s.on_time as f64 / s.checks.max(1) as f64,
            s.percentile_ms(0.99),
            s.max_late_ms,
            100.0 * s.up as f64 / s.checks.max(1) as f64,
            s.steal * 100.0,
        );
    }
}

/// The kernel's share, for scale: one thread doing the same exchange as the check as fast
/// as it can with plain blocking sockets (no runtime, no timers, no epoll), against the
/// same backend. Its CPU per exchange is about the least any checker on this machine can
/// spend, almost all of it the kernel's TCP work for both ends of the loopback connection.
fn floor(scenario: &str, secs: u64) {
    use std::io::{Read, Write};
    let http = scenario == "floor-http";
    let port = if http { HTTP_PORT } else { TCP_PORT };
    let request = b"GET / HTTP/1.1\r\nHost: 127.9.0.1\r\nUser-Agent: floor\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    let mut buf = [0u8; 4096];
    let cpu0 = cpu_time();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let ip = address(9, (n % 10_000) as usize);
        let mut s = std::net::TcpStream::connect((ip, port)).unwrap();
        if http {
            s.write_all(request).unwrap();
            let mut got = 0;
            while let Ok(k) = s.read(&mut buf[got..]) {
                if k == 0 {
                    break;
                }
                got += k;
            }
            assert!(buf[..got].ends_with(b"OK"));
        }
        // SO_LINGER 0, as the checks close.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        n += 1;
    }
    let cpu = cpu_time() - cpu0;
    let wall = start.elapsed().as_secs_f64();
    println!(
        "ROW\t{scenario} (1 thread, blocking)\t-\t{n}\t{:.0}\t-\t{:.1} µs\t-\t-\t-\t-\t-\t-",
        n as f64 / wall,
        cpu.as_secs_f64() / n as f64 * 1e6,
    );
}

#[derive(Default)]
struct Stats {
    checks: u64,
    on_time: u64,
    up: u64,
    /// The reals (by index) reported down at least once.
    flapped: std::collections::HashSet<usize>,
    /// Lateness histogram in whole milliseconds, the last bucket catching the rest.
    late_ms: Vec<u64>,
    max_late_ms: u64,
    /// Director CPU over the run (the same for every group).
    cpu: Duration,
    /// Share of the machine's CPU time stolen by the hypervisor over the run.
    steal: f64,
}

impl Stats {
    fn percentile_ms(&self, p: f64) -> u64 {
        let target = (self.checks as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (ms, n) in self.late_ms.iter().enumerate() {
            seen += n;
            if seen >= target {
                return ms as u64;
            }
        }
        self.late_ms.len() as u64
    }
}

/// How long the backend stays stopped after every real was reported down.
const STOPPED: Duration = Duration::from_secs(6);

/// The recovery phase: where it stands, and each real's last result.
struct Recovery {
    backend: String,
    last_up: Vec<bool>,
    down: usize,
    phase: RecoveryPhase,
}

#[derive(Clone, Copy)]
enum RecoveryPhase {
    /// The backend is stopped since this instant, and not every real is down yet.
    Stopping(tokio::time::Instant),
    /// Every real is down; the backend resumes at this instant.
    Stopped(tokio::time::Instant),
    /// The backend resumed at this instant.
    Resumed(tokio::time::Instant),
}

impl Recovery {
    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.backend])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {} failed", self.backend);
    }

    /// Take one result in; returns the time to recover once the table is complete again.
    fn observe(&mut self, real: usize, up: bool) -> Option<Duration> {
        if self.last_up[real] != up {
            self.last_up[real] = up;
            if up {
                self.down -= 1;
            } else {
                self.down += 1;
            }
        }
        let now = tokio::time::Instant::now();
        match self.phase {
            RecoveryPhase::Stopping(since) if self.down == self.last_up.len() => {
                eprintln!(
                    "check_load: every real down {:.1} s after the backend stopped",
                    (now - since).as_secs_f64()
                );
                self.phase = RecoveryPhase::Stopped(now + STOPPED);
            }
            RecoveryPhase::Stopped(at) if now >= at => {
                self.signal("-CONT");
                self.phase = RecoveryPhase::Resumed(now);
            }
            RecoveryPhase::Resumed(at) if self.down == 0 => return Some(now - at),
            _ => {}
        }
        None
    }
}

async fn run(groups: &[Group], duration: Duration, recovery: bool) -> Vec<Stats> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(65_536);
    let mut scheduler = Scheduler::new(tx);
    let mut group_of = Vec::new();
    // One batch, as the daemon schedules: the first runs ramp up at the whole population's
    // pace (one by one, each would be paced at the rate of those scheduled before it).
    let mut batch = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for spec in &group.specs {
            let checker: Arc<dyn Checker> = ldirectord_checks::build(spec)
                .expect("the registry builds the check")
                .expect("not checktype=off");
            batch.push((group_of.len(), checker, operator_timing()));
            group_of.push(g);
        }
    }
    scheduler.schedule_all(batch);
    let mut stats: Vec<Stats> = groups
        .iter()
        .map(|_| Stats {
            late_ms: vec![0; 1001],
            ..Stats::default()
        })
        .collect();
    let mut reasons = std::collections::HashMap::new();
    let cpu0 = cpu_time();
    let machine0 = MachineCpu::now();
    let end = tokio::time::Instant::now() + duration;
    let wall = Instant::now();
    loop {
        let result = tokio::select! {
            r = rx.recv() => r.expect("scheduler alive"),
            _ = tokio::time::sleep_until(end) => break,
        };
        let s = &mut stats[group_of[*result.key]];
        s.checks += 1;
        let late = result.lateness();
        if late <= ON_TIME {
            s.on_time += 1;
        }
        let ms = late.as_millis() as u64;
        s.late_ms[ms.min(1000) as usize] += 1;
        s.max_late_ms = s.max_late_ms.max(ms);
        if result.outcome.is_up() {
            s.up += 1;
        } else {
            s.flapped.insert(*result.key);
            if group_of[*result.key] == 0 {
                *reasons.entry(result.outcome.reason).or_insert(0u64) += 1;
            }
        }
    }
    let cpu = cpu_time() - cpu0;
    let steal = MachineCpu::now().steal_since(&machine0);
    eprintln!("check_load: ran {:.1} s", wall.elapsed().as_secs_f64());
    if recovery {
        recover(&mut rx, group_of.len()).await;
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (reason, n) in reasons.iter().take(3) {
        eprintln!("check_load:   {n} down in the first group: {reason}");
    }
    drop(scheduler);
    for s in &mut stats {
        s.cpu = cpu;
        s.steal = steal;
    }
    stats
}

/// Stop the backend, let every real go down, resume it, and print how long until every
/// real is up again (at most 60 s of waiting in all).
async fn recover(
    rx: &mut tokio::sync::mpsc::Receiver<ldirectord_checks::scheduler::CheckResult<usize>>,
    reals: usize,
) {
    let mut recovery = Recovery {
        backend: std::env::var("LDRS_BENCH_BACKEND_PID").expect("the backend's pid"),
        last_up: vec![true; reals],
        down: 0,
        phase: RecoveryPhase::Stopping(tokio::time::Instant::now()),
    };
    recovery.signal("-STOP");
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut checks, mut late) = (0u64, Duration::ZERO);
    loop {
        let result = tokio::select! {
            r = rx.recv() => r.expect("scheduler alive"),
            _ = tokio::time::sleep_until(give_up) => break,
        };
        if let RecoveryPhase::Resumed(_) = recovery.phase {
            checks += 1;
            late = late.max(result.lateness());
        }
        if let Some(took) = recovery.observe(*result.key, result.outcome.is_up()) {
            println!(
                "RECOVERY\t{reals}\t{:.2}\t{checks}\t{}",
                took.as_secs_f64(),
                late.as_millis()
            );
            return;
        }
    }
    recovery.signal("-CONT");
    println!(
        "RECOVERY\t{reals}\tnot within 60 s ({} down)\t{checks}\t{}",
        recovery.down,
        late.as_millis()
    );
}

/// `127.B.x.y` for real `i` of a block: 250 hosts per /24, never .0 or .255.
fn address(block: u8, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        block,
        (i / 250) as u8,
        (i % 250 + 1) as u8,
    ))
}

fn base_spec(ip: IpAddr, port: u16) -> CheckSpec {
    CheckSpec::new(CheckType::Connect, Service::None, ip, port).with_timeout(Duration::from_secs(2))
}

fn http_specs(block: u8, n: usize, port: u16) -> Vec<CheckSpec> {
    let receive = Receive::new("OK").unwrap();
    (0..n)
        .map(|i| {
            CheckSpec::new(CheckType::Negotiate, Service::Http, address(block, i), port)
                .with_timeout(Duration::from_secs(2))
                .with_receive(receive.clone())
        })
        .collect()
}

fn tcp_specs(block: u8, n: usize) -> Vec<CheckSpec> {
    (0..n)
        .map(|i| base_spec(address(block, i), TCP_PORT))
        .collect()
}

/// User + system CPU of this process so far.
fn cpu_time() -> Duration {
    process_cpu("self")
}

/// User + system CPU of process `pid` (a number or `self`) so far.
fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// The machine-wide CPU counters of /proc/stat, in ticks.
struct MachineCpu {
    total: u64,
    steal: u64,
}

impl MachineCpu {
    fn now() -> MachineCpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        // cpu  user nice system idle iowait irq softirq steal guest guest_nice
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|f| f.parse().unwrap())
            .collect();
        MachineCpu {
            total: fields.iter().sum(),
            steal: fields[7],
        }
    }

    fn steal_since(&self, before: &MachineCpu) -> f64 {
        (self.steal - before.steal) as f64 / (self.total - before.total).max(1) as f64
    }
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
