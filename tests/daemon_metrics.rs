//! `metrics=ADDR:PORT` through the real binary (ipvsadm stand-in engine, real HTTP backends
//! on loopback): a scrape that Debian's `promtool check metrics` accepts, the counters an
//! operator reads, reloads counted, a bind failure at start (an error) and on reload (the
//! old listener stays), and a real Prometheus server (Debian's `prometheus`, on loopback
//! with a temporary config and storage) that sees a real go down through PromQL.

#[path = "fixtures/daemon/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{Backend, Mode, World, free_port, wait_until};

const VIRTUAL: &str = "tcp:127.0.0.100:80";

/// `GET path` over a fresh connection: (status line, body).
fn get(addr: SocketAddr, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

fn scrape(addr: SocketAddr) -> String {
    get(addr, "/metrics").map(|(_, b)| b).unwrap_or_default()
}

/// The value of the sample line that starts with `series` (name and labels as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn real_up(real: &str) -> String {
    format!("ldirectord_real_up{{virtual=\"{VIRTUAL}\",real=\"{real}\"}}")
}

fn config_body(port: u16, reals: &[&Backend]) -> String {
    let mut body = format!(
        "checkinterval=1\nchecktimeout=2\nmetrics=127.0.0.1:{port}\nvirtual=127.0.0.100:80\n\tservice=http\n\trequest=\"/health\"\n\treceive=\"OK\"\n\tscheduler=wrr\n"
    );
    for (i, b) in reals.iter().enumerate() {
        body.push_str(&format!("\treal={} masq {}\n", b.addr, i + 2));
    }
    body
}

fn hup(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
}

/// A daemon for `reals` serving metrics on a free loopback port: (that address, the
/// config file, the daemon's pid).
fn daemon_with_metrics(w: &World, name: &str, reals: &[&Backend]) -> (SocketAddr, PathBuf, i32) {
    let port = free_port();
    let cfg = w.config(name, &config_body(port, reals));
    let pid = w.start(cfg.to_str().unwrap());
    (([127, 0, 0, 1], port).into(), cfg, pid)
}

#[test]
fn a_scrape_passes_promtool_and_counts_what_happened() {
    let w = World::new();
    let good = Backend::start("127.0.0.1", Mode::Healthy);
    let bad = Backend::start("127.0.0.1", Mode::Failing);
    let (addr, cfg, pid) = daemon_with_metrics(&w, "m.cf", &[&good, &bad]);
    let port = addr.port();
    let (g, b) = (good.addr.to_string(), bad.addr.to_string());
    // Also the failing real's first result, and the engine's report of the add: an
    // unchecked real is 0 too, and operations are counted when the engine's task reports.
    wait_until(30, "good real up, failing real down in the scrape", || {
        let t = scrape(addr);
        sample(&t, &real_up(&g)) == Some(1.0)
            && sample(&t, &real_up(&b)) == Some(0.0)
            && sample(&t, "ldirectord_check_results_total{result=\"protocol\"}") >= Some(1.0)
            && sample(&t, "ldirectord_engine_operations_total{op=\"add_real\"}") == Some(1.0)
    });
    let text = scrape(addr);
    let weight = |r: &str| {
        sample(
            &text,
            &format!("ldirectord_real_weight{{virtual=\"{VIRTUAL}\",real=\"{r}\"}}"),
        )
    };
    assert_eq!((weight(&g), weight(&b)), (Some(2.0), Some(0.0)), "{text}");
    assert!(sample(&text, "ldirectord_check_results_total{result=\"ok\"}") >= Some(1.0));
    // A 500 is the protocol's answer, not a network failure.
    assert!(
        sample(&text, "ldirectord_check_results_total{result=\"protocol\"}") >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "ldirectord_check_duration_seconds_count{checktype=\"negotiate\"}"
        ) >= Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ldirectord_engine_operations_total{op=\"add_service\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "ldirectord_engine_operations_total{op=\"add_real\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains(&format!(
        "ldirectord_build_info{{version=\"{}\",engine=\"ipvsadm\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(
        sample(&text, "ldirectord_last_reload_success_timestamp_seconds") > Some(1.7e9),
        "{text}"
    );

    // Debian's promtool: the format and the naming conventions.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus, .ci/apt-packages.txt)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Anything but GET /metrics is refused; a request head without an end is cut off.
    assert_eq!(get(addr, "/").unwrap().0, "HTTP/1.1 404 Not Found");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&vec![b'a'; 20_000]).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");

    // The failing real recovers: one transition up, counted.
    bad.set(Mode::Healthy);
    wait_until(30, "the recovered real up in the scrape", || {
        sample(&scrape(addr), &real_up(&b)) == Some(1.0)
    });
    let text = scrape(addr);
    assert_eq!(
        sample(
            &text,
            &format!(
                "ldirectord_real_transitions_total{{virtual=\"{VIRTUAL}\",real=\"{b}\",to=\"up\"}}"
            )
        ),
        Some(1.0),
        "{text}"
    );

    // A reload refused for a syntax error, then a good one.
    std::fs::write(&cfg, "metrics=nowhere\n").unwrap();
    hup(pid);
    wait_until(30, "refused reload counted", || {
        sample(&scrape(addr), "ldirectord_reloads_total{result=\"error\"}") == Some(1.0)
    });
    let cfg2 = w.config("m.cf", &config_body(port, &[&good]));
    assert_eq!(cfg, cfg2);
    hup(pid);
    wait_until(30, "good reload counted, removed real gone", || {
        let t = scrape(addr);
        sample(&t, "ldirectord_reloads_total{result=\"ok\"}") == Some(1.0)
            && sample(&t, &real_up(&b)).is_none()
    });
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "stop"]).status.code(),
        Some(0)
    );
    assert!(TcpStream::connect(addr).is_err(), "listener closed on stop");
}

#[test]
fn a_port_in_use_fails_start_and_keeps_the_old_listener_on_reload() {
    let w = World::new();
    let good = Backend::start("127.0.0.1", Mode::Healthy);
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let cfg = w.config("b.cf", &config_body(busy_port, &[&good]));
    let out = w.ld(&[cfg.to_str().unwrap(), "start"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot serve metrics on 127.0.0.1:{busy_port}: ")),
        "{err}"
    );
    assert!(w.pid("b.cf").is_none(), "no daemon left behind");
    assert!(w.table().is_empty(), "nothing programmed: {:?}", w.table());

    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    w.config("b.cf", &config_body(port, &[&good]));
    let pid = w.start(cfg.to_str().unwrap());
    wait_until(30, "served", || !scrape(addr).is_empty());
    w.config("b.cf", &config_body(busy_port, &[&good]));
    hup(pid);
    wait_until(30, "bind failure on reload logged", || {
        w.log()
            .contains(&format!("cannot serve metrics on 127.0.0.1:{busy_port}: "))
            && w.log()
                .contains(&format!("; still serving on 127.0.0.1:{port}"))
    });
    assert!(
        sample(&scrape(addr), "ldirectord_reloads_total{result=\"ok\"}") == Some(1.0),
        "the rest of the reload applied, old listener kept"
    );
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "stop"]).status.code(),
        Some(0)
    );
}

/// A Prometheus server on loopback, killed and reaped on drop.
struct Prometheus {
    child: Child,
    api: SocketAddr,
}

impl Prometheus {
    fn start(w: &World, target: SocketAddr) -> Prometheus {
        let config = w.path("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ldirectord\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let api: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = std::fs::File::create(w.path("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", w.path("tsdb").display()))
            .arg(format!("--web.listen-address={api}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package prometheus, .ci/apt-packages.txt)");
        Prometheus { child, api }
    }

    /// An instant or range PromQL query through the HTTP API: the `result` array.
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let q: String = promql
            .bytes()
            .map(|c| match c {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (c as char).to_string(),
                _ => format!("%{c:02X}"),
            })
            .collect();
        let Some((status, body)) = get(self.api, &format!("/api/v1/query?query={q}")) else {
            return Vec::new();
        };
        if !status.contains("200") {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn prometheus_sees_a_real_go_down_within_a_scrape() {
    let w = World::new();
    let one = Backend::start("127.0.0.1", Mode::Healthy);
    let two = Backend::start("127.0.0.1", Mode::Healthy);
    let (target, cfg, _) = daemon_with_metrics(&w, "p.cf", &[&one, &two]);
    let prom = Prometheus::start(&w, target);
    let a = one.addr.to_string();
    let series = format!("ldirectord_real_up{{real=\"{a}\"}}");
    let value = |r: &serde_json::Value| r["value"][1].as_str().map(str::to_owned);
    wait_until(60, "Prometheus scrapes the real as up", || {
        prom.query(&series).first().and_then(value).as_deref() == Some("1")
    });

    // Stop the real backend: its check fails and the director takes it out.
    one.kill();
    let deleted = format!("Deleted real server: {a} (127.0.0.100:80)");
    wait_until(30, "the daemon took the real out", || {
        w.log().contains(&deleted)
    });
    let taken_out = unix_now();
    wait_until(30, "Prometheus sees it down", || {
        prom.query(&series).first().and_then(value).as_deref() == Some("0")
    });
    // Every scrape that started later than 2 s after the real was taken out saw it down:
    // the exporter's snapshot lags the core by at most its 1 s tick (usually not at all),
    // plus a second of slack for a loaded machine; so the first or second scrape after.
    let range = prom.query(&format!("{series}[2m]"));
    let samples = range[0]["values"].as_array().unwrap();
    let stale: Vec<_> = samples
        .iter()
        .filter(|s| s[0].as_f64().unwrap() > taken_out + 2.0 && s[1] != "0")
        .collect();
    assert!(
        stale.is_empty(),
        "scrapes still up after the real went down: {stale:?}"
    );
    if let Some(first) = samples.iter().find(|s| s[1] == "0") {
        let after = first[0].as_f64().unwrap() - taken_out;
        println!(
            "first scrape with the real down: {after:+.2} s after the take-out was seen in the log"
        );
    }
    assert!(
        samples
            .iter()
            .any(|s| s[0].as_f64().unwrap() <= taken_out && s[1] == "1"),
        "up before: {samples:?}"
    );
    assert_eq!(
        w.ld(&[cfg.to_str().unwrap(), "stop"]).status.code(),
        Some(0)
    );
}
