//! What the userspace engine costs: HTTP requests per second and latency through a virtual
//! service of the userspace engine versus straight to the backend, in the same run, on
//! loopback. Two shapes: keep-alive (many requests per connection: the relay's copy cost)
//! and a new connection per request (adds accept, scheduling and the second connect).
//!
//! Bounded work, not a time budget: each trial sends a fixed number of requests from
//! `CONCURRENCY` clients; trials alternate direct/userspace so machine noise hits both, and
//! medians of the trials are reported with the ratios. Sizes: `LDRS_BENCH_KEEPALIVE` and
//! `LDRS_BENCH_NEWCONN` (requests per trial), `LDRS_BENCH_TRIALS`.
//!
//! `cargo bench -p ldirectord-rs --bench userspace_forward`

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ldirectord::engine::userspace::UserspaceEngine;
use ldirectord::engine::{DestSpec, Engine, IpProto, Op, ServiceKey, ServiceSpec};
use ldirectord_parsers::config::Forward;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const CONCURRENCY: usize = 8;
const BODY: &str = "hello from the backend\n";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A keep-alive HTTP/1.1 backend with a fixed small response.
async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            conn.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let (read, mut write) = conn.into_split();
                let mut lines = BufReader::new(read).lines();
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}",
                    BODY.len()
                );
                while let Ok(Some(_request)) = lines.next_line().await {
                    let mut close = false;
                    while let Ok(Some(h)) = lines.next_line().await {
                        if h.is_empty() {
                            break;
                        }
                        close |= h.eq_ignore_ascii_case("connection: close");
                    }
                    if write.write_all(response.as_bytes()).await.is_err() || close {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Read one response with a known Content-Length (the benchmark's own backend).
async fn read_response(stream: &mut BufReader<TcpStream>) -> std::io::Result<()> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    KeepAlive,
    NewConnection,
}

/// One trial: `requests` spread over the clients; returns (requests/s, latencies).
async fn trial(target: SocketAddr, shape: Shape, requests: usize) -> (f64, Vec<Duration>) {
    let per_client = requests / CONCURRENCY;
    let start = Instant::now();
    let clients: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                let mut kept: Option<BufReader<TcpStream>> = None;
                for _ in 0..per_client {
                    let t = Instant::now();
                    let mut stream = match kept.take() {
                        Some(s) => s,
                        None => {
                            let s = TcpStream::connect(target).await.unwrap();
                            s.set_nodelay(true).unwrap();
                            BufReader::new(s)
                        }
                    };
                    let request: &[u8] = match shape {
                        Shape::KeepAlive => b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n",
                        Shape::NewConnection => {
                            b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
                        }
                    };
                    stream.get_mut().write_all(request).await.unwrap();
                    read_response(&mut stream).await.unwrap();
                    latencies.push(t.elapsed());
                    if shape == Shape::KeepAlive {
                        kept = Some(stream);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(requests);
    for c in clients {
        all.extend(c.await.unwrap());
    }
    let rps = all.len() as f64 / start.elapsed().as_secs_f64();
    (rps, all)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// Median over trials of (rps, p50 µs, p99 µs).
struct Figures {
    rps: f64,
    p50: f64,
    p99: f64,
}

fn summarize(trials: &[(f64, Vec<Duration>)]) -> Figures {
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for (_, lat) in trials {
        let mut lat = lat.clone();
        lat.sort();
        p50.push(percentile(&lat, 0.50).as_secs_f64() * 1e6);
        p99.push(percentile(&lat, 0.99).as_secs_f64() * 1e6);
    }
    Figures {
        rps: median(trials.iter().map(|t| t.0).collect()),
        p50: median(p50),
        p99: median(p99),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let trials = env_or("LDRS_BENCH_TRIALS", 5);
    let keepalive = env_or("LDRS_BENCH_KEEPALIVE", 20_000);
    let newconn = env_or("LDRS_BENCH_NEWCONN", 2_000);

    let direct = backend().await;
    let vip_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = ServiceKey::Inet {
        proto: IpProto::Tcp,
        ip: Ipv4Addr::LOCALHOST.into(),
        port: vip_port,
    };
    let mut engine = UserspaceEngine::new();
    let spec = ServiceSpec::new(key, "wlc");
    engine.apply(&Op::AddService(spec)).await.unwrap();
    let dest = DestSpec {
        ip: direct.ip(),
        port: direct.port(),
        forward: Forward::Masq,
        weight: 1,
        upper: 0,
        lower: 0,
    };
    engine.apply(&Op::AddDest(key, dest)).await.unwrap();
    let vip = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), vip_port);

    println!(
        "userspace_forward: {CONCURRENCY} clients, {trials} trials per variant, \
         alternating direct/userspace; medians over trials"
    );
    for (shape, name, requests) in [
        (Shape::KeepAlive, "keep-alive", keepalive),
        (Shape::NewConnection, "new connection per request", newconn),
    ] {
        // Warm-up (connection setup paths, allocator) outside the figures.
        trial(direct, shape, requests / 10).await;
        trial(vip, shape, requests / 10).await;
        let (mut d, mut u) = (Vec::new(), Vec::new());
        for _ in 0..trials {
            d.push(trial(direct, shape, requests).await);
            u.push(trial(vip, shape, requests).await);
        }
        let (d, u) = (summarize(&d), summarize(&u));
        println!("\n{name}: {requests} requests per trial");
        println!(
            "  {:<10} {:>12} {:>10} {:>10}",
            "", "requests/s", "p50 µs", "p99 µs"
        );
        for (label, f) in [("direct", &d), ("userspace", &u)] {
            println!(
                "  {:<10} {:>12.0} {:>10.1} {:>10.1}",
                label, f.rps, f.p50, f.p99
            );
        }
        println!(
            "  userspace/direct: throughput ×{:.2}, p50 ×{:.2} (+{:.1} µs), p99 ×{:.2} \
             (+{:.1} µs)",
            u.rps / d.rps,
            u.p50 / d.p50,
            u.p50 - d.p50,
            u.p99 / d.p99,
            u.p99 - d.p99
        );
    }
    let table = engine.dump().await.unwrap();
    let dest = &table.services[0].dests[0];
    println!(
        "\nafter the run the table shows {} active / {} inactive connections",
        dest.active_conns, dest.inactive_conns
    );
}
