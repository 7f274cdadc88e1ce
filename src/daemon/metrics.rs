//! Prometheus metrics (extension `metrics=ADDR:PORT`, off by default): what the daemon
//! counts, and the small HTTP server that serves it as `/metrics` in the Prometheus text
//! format (0.0.4).
//!
//! The main loop calls one-line hooks ([`Metrics::check`], [`Metrics::engine_op`],
//! [`Metrics::reload`], [`Metrics::observe`]); a scrape never touches the director. The
//! per-real series (up, weight, transitions) come from a snapshot the loop refreshes after
//! the core acted, at most every [`REFRESH_EVERY`] (and on the next 1 s tick if it was
//! skipped), so a flood of results at start-up does not rebuild it 10,000 times. The
//! encoding is prometheus-client's (the reference Rust client); the server is a bounded
//! HTTP/1.1 responder of our own (no HTTP framework is in the tree, and
//! one GET needs none of a server framework): one request per connection, the head read
//! with a size and time limit, a fixed number of connections at a time.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ldirectord_checks::{CheckSpec, Outcome, Verdict};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::director::{Director, Health};
use crate::engine::Op;

/// Shortest time between two refreshes of the per-real snapshot.
pub const REFRESH_EVERY: Duration = Duration::from_millis(200);

/// Longest request head read (a scrape's is a few hundred bytes).
const MAX_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request, and to take the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at a time; more wait in the listen queue.
const MAX_CLIENTS: usize = 8;

type Labels1 = [(&'static str, &'static str); 1];

/// Everything the daemon counts, and the server of `metrics=` when configured.
#[derive(Debug)]
pub struct Metrics {
    shared: Arc<Shared>,
    server: Option<Server>,
    /// The core acted since the last snapshot.
    dirty: bool,
    refreshed_at: Option<Instant>,
}

#[derive(Debug)]
struct Shared {
    registry: Registry,
    reals: Arc<Reals>,
    check_duration: Family<Labels1, Histogram, fn() -> Histogram>,
    check_lateness: Histogram,
    check_results: Family<Labels1, Counter>,
    engine_ops: Family<Labels1, Counter>,
    engine_errors: Family<Labels1, Counter>,
    reloads: Family<Labels1, Counter>,
    last_reload: Gauge<f64, AtomicU64>,
}

/// The running `/metrics` server.
#[derive(Debug)]
struct Server {
    /// As configured.
    addr: SocketAddr,
    /// As bound (differs for port 0).
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A counter family with one label, registered.
fn counters(registry: &mut Registry, name: &str, help: &str) -> Family<Labels1, Counter> {
    let family = Family::<Labels1, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

fn check_histogram() -> Histogram {
    // 1 ms to about 33 s: a refused connect to a check that runs into its timeout.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    /// The registry with every metric at zero, and no server.
    pub fn new(engine: &str) -> Metrics {
        let mut registry = Registry::default();
        let reals = Arc::new(Reals::default());
        registry.register_collector(Box::new(reals.clone()));
        let check_duration: Family<Labels1, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(check_histogram);
        registry.register(
            "ldirectord_check_duration_seconds",
            "Wall time of one check run, by check type",
            check_duration.clone(),
        );
        let check_lateness = check_histogram();
        registry.register(
            "ldirectord_check_lateness_seconds",
            "How long after its due time a check run started",
            check_lateness.clone(),
        );
        let check_results = counters(
            &mut registry,
            "ldirectord_check_results",
            "Check runs by result: ok, maintenance, or the class of the failure (timeout, connect, tls, protocol, mismatch, auth, command, other)",
        );
        let engine_ops = counters(
            &mut registry,
            "ldirectord_engine_operations",
            "IPVS operations applied through the engine, by kind",
        );
        let engine_errors = counters(
            &mut registry,
            "ldirectord_engine_errors",
            "IPVS operations (and table dumps) the engine failed, by kind",
        );
        let reloads = counters(
            &mut registry,
            "ldirectord_reloads",
            "Configuration reloads by result (ok, error: the old configuration stays)",
        );
        let last_reload = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "ldirectord_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (start-up or reload), Unix time",
            last_reload.clone(),
        );
        registry.register(
            "ldirectord_build",
            "The daemon's version and engine",
            Info::new([
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
                ("engine", engine.to_owned()),
            ]),
        );
        let shared = Shared {
            registry,
            reals,
            check_duration,
            check_lateness,
            check_results,
            engine_ops,
            engine_errors,
            reloads,
            last_reload,
        };
        shared.last_reload.set(unix_now());
        Metrics {
            shared: Arc::new(shared),
            server: None,
            dirty: true,
            refreshed_at: None,
        }
    }

    /// Serve `/metrics` on `addr` (`None`: stop serving). An address already served keeps
    /// its listener; on a bind error the old server (if any) stays and the error is returned.
    pub async fn serve(&mut self, addr: Option<SocketAddr>) -> io::Result<()> {
        if self.server.as_ref().map(|s| s.addr) == addr {
            return Ok(());
        }
        let Some(addr) = addr else {
            self.server = None;
            return Ok(());
        };
        // The old listener may hold this very port on another address; free it first only
        // if the new one cannot be bound beside it.
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && self.server.is_some() => {
                let old = self.server.take();
                match TcpListener::bind(addr).await {
                    Ok(l) => l,
                    Err(e) => {
                        self.server = old;
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        let local = listener.local_addr()?;
        let shared = self.shared.clone();
        let task = tokio::spawn(accept_loop(listener, shared));
        self.server = Some(Server { addr, local, task });
        self.dirty = true;
        Ok(())
    }

    /// Where `/metrics` is served, if it is.
    pub fn address(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    /// The address the listener is bound to (the port the system picked for port 0).
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.local)
    }

    /// One check run finished.
    pub fn check(&self, spec: &CheckSpec, outcome: &Outcome) {
        let result = match (outcome.verdict, outcome.class()) {
            (Verdict::Up, _) => "ok",
            (Verdict::Maintenance, _) => "maintenance",
            (Verdict::Down, Some(class)) => class.as_str(),
            (Verdict::Down, None) => "other",
        };
        self.shared
            .check_results
            .get_or_create(&[("result", result)])
            .inc();
        self.shared
            .check_duration
            .get_or_create(&[("checktype", spec.checktype.name())])
            .observe(outcome.latency.as_secs_f64());
    }

    /// A check run started `late` after it was due.
    pub fn check_lateness(&self, late: Duration) {
        self.shared.check_lateness.observe(late.as_secs_f64());
    }

    /// The engine applied `op` (`ok`) or failed it.
    pub fn engine_op(&self, op: &Op, ok: bool) {
        self.engine_event(op_kind(op), ok);
    }

    /// A table dump succeeded or failed.
    pub fn engine_dump(&self, ok: bool) {
        self.engine_event("dump", ok);
    }

    fn engine_event(&self, kind: &'static str, ok: bool) {
        let labels = [("op", kind)];
        self.shared.engine_ops.get_or_create(&labels).inc();
        if !ok {
            self.shared.engine_errors.get_or_create(&labels).inc();
        }
    }

    /// A reload finished: `ok`, or refused with the old configuration kept.
    pub fn reload(&mut self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.shared
            .reloads
            .get_or_create(&[("result", result)])
            .inc();
        if ok {
            self.shared.last_reload.set(unix_now());
            self.dirty = true;
        }
    }

    /// After the core acted (`acted`), or on the tick: refresh the per-real snapshot when it
    /// may be stale, at most every [`REFRESH_EVERY`]. Nothing to do while not serving.
    pub fn observe(&mut self, director: &Director, acted: bool) {
        self.dirty |= acted;
        if !self.dirty || self.server.is_none() {
            return;
        }
        let now = Instant::now();
        if self
            .refreshed_at
            .is_some_and(|at| now.duration_since(at) < REFRESH_EVERY)
        {
            return;
        }
        self.refresh(director);
        self.refreshed_at = Some(now);
        self.dirty = false;
    }

    /// Rebuild the per-real snapshot from the director now.
    pub fn refresh(&self, director: &Director) {
        self.shared.reals.refresh(director);
    }

    /// The text a scrape gets (for tests and the benchmark).
    pub fn encode(&self) -> String {
        self.shared.encode()
    }
}

impl Shared {
    fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; the collectors only fail on a writer error.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

fn op_kind(op: &Op) -> &'static str {
    match op {
        Op::AddService(_) => "add_service",
        Op::EditService(_) => "edit_service",
        Op::DelService(_) => "del_service",
        Op::AddDest(..) => "add_real",
        Op::EditDest(..) => "edit_real",
        Op::QuiesceDest(..) => "quiesce_real",
        Op::ReaddQuiescedDest(..) => "readd_quiesced_real",
        Op::DelDest { .. } => "del_real",
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The per-real series, from the last snapshot.
#[derive(Debug, Default)]
struct Reals(Mutex<Snapshot>);

#[derive(Debug, Default)]
struct Snapshot {
    rows: Vec<RealRow>,
}

#[derive(Debug)]
struct RealRow {
    virtual_id: String,
    real: String,
    up: bool,
    /// In the kernel's table; 0 when the real is not in it.
    weight: u32,
    /// Times it went `[down, up]` since it was configured (kept across reloads).
    transitions: [u64; 2],
}

impl Reals {
    fn refresh(&self, director: &Director) {
        let status = director.status();
        let mut snap = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::take(&mut snap.rows);
        let was: HashMap<(&str, &str), &RealRow> = old
            .iter()
            .map(|r| ((r.virtual_id.as_str(), r.real.as_str()), r))
            .collect();
        let reals = status
            .into_iter()
            .flat_map(|v| v.reals.into_iter().map(move |r| (v.virtual_id.clone(), r)));
        snap.rows = reals
            .map(|(virtual_id, s)| {
                let up = s.health == Health::Up;
                let mut transitions = [0; 2];
                if let Some(before) = was.get(&(virtual_id.as_str(), s.real.as_str())) {
                    transitions = before.transitions;
                    if before.up != up {
                        transitions[usize::from(up)] += 1;
                    }
                }
                RealRow {
                    up,
                    weight: s.table_weight.unwrap_or(0),
                    transitions,
                    virtual_id,
                    real: s.real,
                }
            })
            .collect();
    }
}

impl Collector for Reals {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let series: [(&str, &str, MetricType, &[&str], Value); 3] = [
            (
                "ldirectord_real_up",
                "Whether the real server is up (1) or down (0) by its checks, per virtual service",
                MetricType::Gauge,
                &[""],
                |r, _| u64::from(r.up),
            ),
            (
                "ldirectord_real_weight",
                "The real server's weight in the IPVS table (0: quiesced or not in the table)",
                MetricType::Gauge,
                &[""],
                |r, _| u64::from(r.weight),
            ),
            (
                "ldirectord_real_transitions",
                "Times the real server went up or down (to=up|down) since it was configured",
                MetricType::Counter,
                &["down", "up"],
                |r, i| r.transitions[i],
            ),
        ];
        for (name, help, kind, to, value) in series {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for r in &snap.rows {
                for (i, to) in to.iter().enumerate() {
                    let base = [
                        ("virtual", r.virtual_id.as_str()),
                        ("real", r.real.as_str()),
                    ];
                    let v = value(r, i);
                    // `to` only for the transitions: one series per direction.
                    if to.is_empty() {
                        let m = family.encode_family(&base)?;
                        ConstGauge::new(v as i64).encode(m)?;
                    } else {
                        let l = [base[0], base[1], ("to", *to)];
                        ConstCounter::new(v).encode(family.encode_family(&l)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A per-real value: the row, and the index into the series' `to` labels.
type Value = fn(&RealRow, usize) -> u64;

/// Accept scrapers until the server is dropped (its task aborted).
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::debug!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, serve_one(stream, &shared)).await;
            drop(permit);
        });
    }
}

/// One request, one answer, then close.
async fn serve_one(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "", b"").await;
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next(), words.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => {
            let body = shared.encode();
            respond(
                &mut stream,
                "200 OK",
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                body.as_bytes(),
            )
            .await
        }
        (Some(b"GET"), _) => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                b"see /metrics\n",
            )
            .await
        }
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", b"").await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::CheckResult;
    use crate::engine::Table;
    use ldirectord_parsers::config::{ParseOptions, parse_with};

    fn director() -> Director {
        let text = "checkinterval=1\nvirtual=10.0.0.1:80\n\tchecktype=connect\n\treal=10.0.0.2:80 masq 3\n\treal=10.0.0.3:80 masq 1\n";
        let opts = ParseOptions {
            check_files: false,
            hostname: Some("t".into()),
            ..ParseOptions::default()
        };
        let config = parse_with(text, std::path::Path::new("t.cf"), &opts)
            .unwrap()
            .config;
        Director::start(config, &Table::default()).0
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn per_real_series_follow_the_director() {
        let mut d = director();
        let checks = d.checks();
        let m = Metrics::new("netlink");
        for c in &checks {
            d.on_check(&c.spec, CheckResult::Up("ok"), Duration::ZERO);
        }
        m.refresh(&d);
        let text = m.encode();
        let series =
            |name: &str, real: &str| format!("{name}{{virtual=\"tcp:10.0.0.1:80\",real=\"{real}\"");
        assert_eq!(
            line(&text, &series("ldirectord_real_up", "10.0.0.2:80")),
            Some("ldirectord_real_up{virtual=\"tcp:10.0.0.1:80\",real=\"10.0.0.2:80\"} 1")
        );
        assert!(
            line(&text, &series("ldirectord_real_weight", "10.0.0.2:80"))
                .unwrap()
                .ends_with("} 3")
        );
        // First sight is no transition; a check that takes it down is one.
        let down = |t: &str| {
            line(
                t,
                &format!(
                    "{},to=\"down\"}}",
                    series("ldirectord_real_transitions_total", "10.0.0.2:80")
                ),
            )
            .map(str::to_owned)
        };
        assert!(down(&text).unwrap().ends_with(" 0"), "{text}");
        let first = checks
            .iter()
            .find(|c| c.spec.ip.to_string() == "10.0.0.2")
            .unwrap();
        d.on_check(
            &first.spec,
            CheckResult::Down("refused"),
            Duration::from_secs(1),
        );
        m.refresh(&d);
        let text = m.encode();
        assert!(down(&text).unwrap().ends_with(" 1"), "{text}");
        assert!(
            line(&text, &series("ldirectord_real_up", "10.0.0.2:80"))
                .unwrap()
                .ends_with("} 0")
        );
        assert!(
            line(&text, &series("ldirectord_real_weight", "10.0.0.2:80"))
                .unwrap()
                .ends_with("} 0")
        );
        assert!(text.contains("# TYPE ldirectord_real_transitions_total counter\n"));
    }

    #[test]
    fn snapshot_refreshes_only_while_served_and_at_most_every_200_ms() {
        let d = director();
        let mut m = Metrics::new("netlink");
        m.observe(&d, true);
        assert!(
            line(&m.encode(), "ldirectord_real_up{").is_none(),
            "not served: no snapshot"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            m.serve(Some(([127, 0, 0, 1], 0).into())).await.unwrap();
            m.observe(&d, true);
            assert!(line(&m.encode(), "ldirectord_real_up{").is_some());
            // Acted again at once: marked, not rebuilt until REFRESH_EVERY has passed.
            m.observe(&d, true);
            assert!(m.dirty);
            m.refreshed_at = Some(Instant::now() - REFRESH_EVERY);
            m.observe(&d, false);
            assert!(!m.dirty);
            m.serve(None).await.unwrap();
            assert!(m.address().is_none());
        });
    }

    #[test]
    fn results_and_operations_by_their_labels() {
        let d = director();
        let spec = &d.checks()[0].spec;
        let m = Metrics::new("ipvsadm");
        m.check(spec, &Outcome::up("ok", Duration::from_millis(3)));
        m.check(
            spec,
            &Outcome::failed(
                ldirectord_checks::Failure::connect("refused"),
                Duration::ZERO,
            ),
        );
        m.check(spec, &Outcome::maintenance("in maintenance"));
        m.engine_dump(false);
        let text = m.encode();
        for l in [
            "ldirectord_check_results_total{result=\"ok\"} 1",
            "ldirectord_check_results_total{result=\"connect\"} 1",
            "ldirectord_check_results_total{result=\"maintenance\"} 1",
            "ldirectord_check_duration_seconds_count{checktype=\"connect\"} 3",
            "ldirectord_engine_operations_total{op=\"dump\"} 1",
            "ldirectord_engine_errors_total{op=\"dump\"} 1",
        ] {
            assert!(text.lines().any(|x| x == l), "{l} in\n{text}");
        }
    }
}
