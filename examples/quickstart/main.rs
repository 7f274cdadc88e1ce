//! The one-command tour of ldirectord-rs: `cargo run --release --example quickstart`.
//!
//! Needs only the Rust toolchain: no root, no IPVS, no ipvsadm. It starts
//!
//! - three demo HTTP backends on loopback: two real servers (127.0.0.1:8081 and :8082)
//!   and a fallback "sorry" server (:8083), each answering `GET /` with its own name and
//!   `GET /health` with `OK`;
//! - the real `ldirectord` binary in the foreground (`-d`) with `--engine userspace` and
//!   the bundled `examples/quickstart/ldirectord.cf` (virtual 127.0.0.1:8080, wrr 2:1,
//!   HTTP checks every 2 s, quiescent=no, the fallback), its run directory in a temporary
//!   directory;
//! - a request every 250 ms to http://127.0.0.1:8080/, counting who answered;
//!
//! and every 2 s prints the real servers as the director sees them (its own view, asked
//! over its control socket as `ldirectord status --json` does: state, weight in the
//! table, last check) next to what the backends see. Type `1`, `2` or `3` and Enter to
//! stop or start a backend and watch the director take it out and put it back; `d1`/`r1`
//! (`d2`/`r2`) to drain a real server to weight 0 and make it ready again; `q` or Ctrl-C
//! stops everything and removes the temporary files.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use ldirectord::status::protocol::{self, Command as Request};
use ldirectord::status::{RealView, Snapshot};

const VIRTUAL: &str = "127.0.0.1:8080";
const BACKENDS: [(&str, &str); 3] = [
    ("backend-1", "127.0.0.1:8081"),
    ("backend-2", "127.0.0.1:8082"),
    ("fallback", "127.0.0.1:8083"),
];
const VIEW_EVERY: Duration = Duration::from_secs(2);
const REQUEST_EVERY: Duration = Duration::from_millis(250);

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("quickstart: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/ldirectord.cf");
    // The director listens on the virtual address itself; say so now if it cannot.
    drop(
        std::net::TcpListener::bind(VIRTUAL)
            .map_err(|e| format!("{VIRTUAL} is not free ({e}); stop whatever listens there"))?,
    );
    let mut backends = Vec::new();
    for (name, addr) in BACKENDS {
        let mut backend = Backend::new(name, addr.parse()?);
        backend.start().await?;
        backends.push(backend);
    }
    let binary = ldirectord_binary().await?;
    let run_dir = tempfile::tempdir()?;
    std::fs::create_dir_all(run_dir.path().join("ha.d"))?;
    let mut director = Command::new(&binary)
        .arg("--run-dir")
        .arg(run_dir.path())
        .args(["--engine", "userspace", "-d"])
        .arg(&config)
        .arg("start")
        // Keep instance lookups away from a system /etc/ha.d.
        .env("LDIRECTORD_HA_DIR", run_dir.path().join("ha.d"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: Ctrl-C reaches only us, and we stop it in order.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    // The instance is named after the file, so its socket is RUNDIR/ldirectord.ldirectord.cf.sock.
    let socket = ldirectord::instance::control_socket(run_dir.path(), "ldirectord.cf");
    let recent = Arc::new(Mutex::new(VecDeque::new()));
    let log_lines = director.stderr.take().ok_or("no stderr pipe")?;
    tokio::spawn(follow_log(log_lines, Arc::clone(&recent)));
    let traffic = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));
    tokio::spawn(request_loop(Arc::clone(&traffic)));

    intro(&binary, &config, run_dir.path());
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    let mut view = tokio::time::interval(VIEW_EVERY);
    view.tick().await;
    let outcome = loop {
        tokio::select! {
            _ = view.tick() => print_view(&backends, &socket, &recent, &traffic).await,
            line = commands.next_line() => match line {
                Ok(Some(line)) => match line.trim() {
                    "q" | "quit" | "exit" => break Ok(()),
                    "" => print_view(&backends, &socket, &recent, &traffic).await,
                    key if key.starts_with(['d', 'r']) => steer(&socket, key).await,
                    key => toggle(&mut backends, key).await,
                },
                // stdin closed (e.g. run with </dev/null): keep running until Ctrl-C.
                Ok(None) | Err(_) => {
                    tokio::signal::ctrl_c().await?;
                    break Ok(());
                }
            },
            _ = tokio::signal::ctrl_c() => break Ok(()),
            status = director.wait() => {
                let log = Vec::from(recent.lock().unwrap().clone()).join("\n  ");
                break Err(format!("ldirectord exited ({}); its last lines:\n  {log}", status?).into());
            }
        }
    };
    stop_director(&mut director).await;
    for backend in &mut backends {
        backend.stop().await;
    }
    println!(
        "\nStopped the director and the backends; removed {}.",
        run_dir.path().display()
    );
    outcome
}

/// The `ldirectord` binary of this build: rebuilt by cargo in the same profile when we run
/// under `cargo run` (a no-op when it is up to date), else found next to this example.
async fn ldirectord_binary() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe()?;
    // target/<profile>/examples/quickstart → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?
        .to_path_buf();
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = Command::new(cargo);
        // With `--example quickstart`, cargo resolves features as for the `cargo run` that
        // started us (examples bring the dev-dependencies), so the crates it just built are
        // reused: without it, a fresh clone builds them a second time (3 min here).
        build
            .args([
                "build",
                "--quiet",
                "--bin",
                "ldirectord",
                "--example",
                "quickstart",
            ])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        println!("Building the ldirectord binary (cargo build --bin ldirectord) …");
        let status = build.status().await?;
        if !status.success() {
            return Err(format!("building ldirectord failed ({status})").into());
        }
    }
    let binary = profile_dir.join("ldirectord");
    if !binary.exists() {
        return Err(format!(
            "{} does not exist: run `cargo run --release --example quickstart` from the \
             repository, or `cargo build --release` first",
            binary.display()
        )
        .into());
    }
    Ok(binary)
}

fn intro(binary: &Path, config: &Path, run_dir: &Path) {
    println!(
        "\nldirectord-rs quickstart\n\
         ========================\n\
         Director : {} --engine userspace -d {} start\n\
         Run dir  : {}\n\
         Virtual  : http://{VIRTUAL}/  (try: curl http://{VIRTUAL}/)\n\
         Backends : backend-1 {}, backend-2 {} (weights 2:1), fallback {}\n\n\
         What to try:\n\
         \x20 2 + Enter  stop backend-2: within one check (2 s) the director deletes it and\n\
         \x20            all traffic goes to backend-1\n\
         \x20 2 + Enter  again to start it: the next check adds it back\n\
         \x20 1, 2       stop both: the fallback answers; start one: it hands back\n\
         \x20 d1 + Enter drain backend-1 (ldirectord drain): weight 0, new requests go to\n\
         \x20            backend-2 while its checks go on; r1 makes it ready again\n\
         \x20 q or Ctrl-C  stop everything\n",
        binary.display(),
        config.display(),
        run_dir.display(),
        BACKENDS[0].1,
        BACKENDS[1].1,
        BACKENDS[2].1,
    );
}

// === The director's view, from its control socket ===

/// The director's last log lines, newest last (shown under the table, and when it exits).
type RecentLog = Mutex<VecDeque<String>>;

const RECENT_LINES: usize = 4;

async fn follow_log(stderr: tokio::process::ChildStderr, recent: Arc<RecentLog>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut recent = recent.lock().unwrap();
        recent.push_back(line);
        if recent.len() > RECENT_LINES {
            recent.pop_front();
        }
    }
}

/// Ask the daemon over its control socket (the client blocks, so on a blocking thread).
async fn ask(socket: &Path, request: Request) -> Result<protocol::Response, String> {
    let socket = socket.to_path_buf();
    tokio::task::spawn_blocking(move || protocol::request(&socket, request))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn snapshot(socket: &Path) -> Result<Snapshot, String> {
    let response = ask(socket, Request::Status).await?;
    match response.status {
        Some(s) => Ok(*s),
        None => Err(response.error.unwrap_or_else(|| "no status".into())),
    }
}

/// `d1`/`d2`: drain that backend; `r1`/`r2`: make it ready again.
async fn steer(socket: &Path, key: &str) {
    let (verb, n) = key.split_at(1);
    let Some((_, addr)) = n
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| BACKENDS.get(i))
        .filter(|(name, _)| *name != "fallback")
    else {
        println!("  (d1, d2 drain a real server; r1, r2 make it ready)");
        return;
    };
    let real = addr.to_string();
    let request = if verb == "d" {
        Request::Drain {
            real,
            r#virtual: None,
        }
    } else {
        Request::Ready {
            real,
            r#virtual: None,
        }
    };
    match ask(socket, request).await {
        Ok(r) if r.ok => println!("  {}", r.changed.join("; ")),
        Ok(r) => println!("  {}", r.error.unwrap_or_default()),
        Err(e) => println!("  {e}"),
    }
}

// === Traffic through the virtual address ===

/// A request on a new connection every [`REQUEST_EVERY`]; counts answers by backend name.
async fn request_loop(traffic: Arc<Mutex<BTreeMap<String, u32>>>) {
    let mut every = tokio::time::interval(REQUEST_EVERY);
    loop {
        every.tick().await;
        let answer = tokio::time::timeout(Duration::from_secs(1), get(VIRTUAL))
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        let who = match answer {
            Ok(body) => body
                .split_whitespace()
                .nth(2)
                .unwrap_or("?")
                .trim_end_matches(',')
                .to_owned(),
            Err(_) => "no answer".to_owned(),
        };
        *traffic.lock().unwrap().entry(who).or_default() += 1;
    }
}

/// `GET /` on a new connection; the response body.
async fn get(addr: &str) -> Result<String, Error> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (_, body) = response.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    Ok(body.to_owned())
}

async fn print_view(
    backends: &[Backend],
    socket: &Path,
    recent: &RecentLog,
    traffic: &Mutex<BTreeMap<String, u32>>,
) {
    let view = snapshot(socket).await;
    let now = jiff::Zoned::now().strftime("%H:%M:%S");
    println!("── {now} ── virtual {VIRTUAL} (wrr) ─────────────────────────────────");
    println!(
        "  {:<16} {:<10} {:<9} {:<22} {:>5} {:>7}  last check",
        "real server", "name", "backend", "director's table", "open", "served"
    );
    let virt = view.as_ref().ok().and_then(|s| s.virtuals.first());
    for b in backends {
        let addr = b.addr.to_string();
        let real: Option<&RealView> = virt.and_then(|v| v.reals.iter().find(|r| r.server == addr));
        let in_table = match (real, virt.and_then(|v| v.fallback.as_ref())) {
            (Some(r), _) => match r.table_weight {
                Some(w) => format!("{}, weight {w}", r.state.as_str()),
                None => format!("{} (not in table)", r.state.as_str()),
            },
            (None, Some(fb)) if fb.server == addr => fb.state.clone(),
            _ => "?".to_owned(),
        };
        let check = real
            .and_then(|r| r.check.as_ref())
            .map(|c| format!("{} {:.1} ms", c.verdict, c.latency_ms))
            .unwrap_or_default();
        println!(
            "  {:<16} {:<10} {:<9} {:<22} {:>5} {:>7}  {check}",
            addr,
            b.name,
            if b.running() { "running" } else { "STOPPED" },
            in_table,
            b.stats.open.load(Ordering::Relaxed),
            b.stats.served.load(Ordering::Relaxed),
        );
    }
    if let Err(e) = &view {
        println!("  (no answer from the director yet: {e})");
    }
    let mut traffic = traffic.lock().unwrap();
    let summary: Vec<String> = traffic
        .iter()
        .map(|(who, n)| format!("{who} ×{n}"))
        .collect();
    traffic.clear();
    println!("  answers in the last 2 s: {}", summary.join(", "));
    if let Some(last) = recent.lock().unwrap().back() {
        println!("  director: {last}");
    }
    println!("  [1/2/3 + Enter: stop/start that backend · d1/r1, d2/r2: drain/ready · q: quit]");
}

// === Demo backends ===

#[derive(Debug, Default)]
struct Stats {
    open: AtomicU32,
    served: AtomicU64,
}

/// A tiny HTTP/1.1 server: `GET /health` → `OK`, anything else → its name.
struct Backend {
    name: &'static str,
    addr: SocketAddr,
    stats: Arc<Stats>,
    /// While running: the accept task and the sender whose drop closes its connections.
    running: Option<(JoinHandle<()>, watch::Sender<()>)>,
}

impl Backend {
    fn new(name: &'static str, addr: SocketAddr) -> Backend {
        Backend {
            name,
            addr,
            stats: Arc::default(),
            running: None,
        }
    }

    fn running(&self) -> bool {
        self.running.is_some()
    }

    async fn start(&mut self) -> Result<(), Error> {
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|e| format!("cannot listen on {} for {}: {e}", self.addr, self.name))?;
        let (stop, stopped) = watch::channel(());
        let (name, addr, stats) = (self.name, self.addr, Arc::clone(&self.stats));
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let stats = Arc::clone(&stats);
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    stats.open.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = serve(conn, name, addr, &stats) => {}
                        _ = stopped.changed() => {}
                    }
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        self.running = Some((task, stop));
        Ok(())
    }

    /// Close the listener (new connections are refused) and every open connection.
    async fn stop(&mut self) {
        if let Some((task, stop)) = self.running.take() {
            task.abort();
            let _ = task.await;
            drop(stop);
        }
    }
}

async fn toggle(backends: &mut [Backend], key: &str) {
    let Some(backend) = key
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| backends.get_mut(i))
    else {
        println!("  (type 1, 2 or 3 and Enter to stop/start a backend, q to quit)");
        return;
    };
    if backend.running() {
        backend.stop().await;
        println!(
            "  stopped {} ({}): watch the director delete it at its next check",
            backend.name, backend.addr
        );
    } else {
        match backend.start().await {
            Ok(()) => println!(
                "  started {} ({}): the next check adds it back",
                backend.name, backend.addr
            ),
            Err(e) => println!("  {e}"),
        }
    }
}

async fn serve(conn: TcpStream, name: &str, addr: SocketAddr, stats: &Stats) {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(request)) = lines.next_line().await {
        let mut close = false;
        // The headers: only `Connection: close` matters here.
        while let Ok(Some(header)) = lines.next_line().await {
            if header.is_empty() {
                break;
            }
            close |= header.eq_ignore_ascii_case("connection: close");
        }
        let body = if request.split_whitespace().nth(1) == Some("/health") {
            "OK\n".to_owned()
        } else {
            stats.served.fetch_add(1, Ordering::Relaxed);
            format!("Hello from {name}, {addr}\n")
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if write.write_all(response.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

/// TERM the director and give it a moment to close its listener, then make sure.
async fn stop_director(director: &mut Child) {
    if let Some(pid) = director.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(Duration::from_secs(5), director.wait())
        .await
        .is_err()
    {
        let _ = director.kill().await;
    }
}
