//! The real `ldirectord` binary in the foreground with `--engine userspace`: HTTP backends
//! on loopback, HTTP checks, traffic through the virtual address. No root, no IPVS.
//!
//! Waits are bounded so a regression fails instead of hanging; no assertion depends on
//! how fast anything happens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

#[path = "fixtures/daemon/support.rs"]
mod support;
use support::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_ldirectord");

/// How a backend behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// `/health` answers 200 `OK`; every other path answers with the backend's name.
    Healthy = 0,
    /// `/health` answers 500, other paths still answer: the check fails, established
    /// connections still work (what quiescent is for).
    FailingCheck = 1,
}

/// An HTTP/1.1 keep-alive server in threads; `stop` closes its listener and connections.
struct Backend {
    addr: SocketAddr,
    name: &'static str,
    mode: Arc<AtomicU8>,
    stopped: Arc<AtomicBool>,
}

impl Backend {
    fn start(name: &'static str) -> Backend {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap())
    }

    fn start_on(name: &'static str, addr: SocketAddr) -> Backend {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let mode = Arc::new(AtomicU8::new(Mode::Healthy as u8));
        let stopped = Arc::new(AtomicBool::new(false));
        let (m, s) = (mode.clone(), stopped.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (m, s) = (m.clone(), s.clone());
                        std::thread::spawn(move || serve(conn, name, &m, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Backend {
            addr,
            name,
            mode,
            stopped,
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Stop listening (connections are refused) and end open connections.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Listen again on the same address.
    fn restart(&mut self) {
        // The old accept thread notices `stopped` within a few ms and drops the listener.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(l) = TcpListener::bind(self.addr) {
                drop(l);
                break;
            }
            assert!(Instant::now() < deadline, "cannot rebind {}", self.addr);
            std::thread::sleep(Duration::from_millis(10));
        }
        *self = Backend::start_on(self.name, self.addr);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(conn: TcpStream, name: &str, mode: &AtomicU8, stopped: &AtomicBool) {
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut request_line = String::new();
        let n = loop {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            match reader.read_line(&mut request_line) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return,
            }
        };
        if n == 0 {
            return;
        }
        // Skip the headers.
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return,
            }
        }
        let health = request_line.split_whitespace().nth(1) == Some("/health");
        let (status, body) = match (health, mode.load(Ordering::SeqCst)) {
            (true, 0) => ("200 OK", "OK".to_owned()),
            (true, _) => ("500 Internal Server Error", "failing".to_owned()),
            (false, _) => ("200 OK", name.to_owned()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A keep-alive client connection through the virtual address.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(vip: SocketAddr) -> Option<Client> {
        let stream = TcpStream::connect(vip).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Some(Client {
            reader: BufReader::new(stream),
        })
    }

    /// `GET /`; the body (the backend's name), or `None` if the connection failed.
    fn get(&mut self) -> Option<String> {
        self.reader
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            .ok()?;
        let mut length = None;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length?];
        self.reader.read_exact(&mut body).ok()?;
        String::from_utf8(body).ok()
    }
}

/// One request on a new connection.
fn get_once(vip: SocketAddr) -> Option<String> {
    Client::connect(vip)?.get()
}

/// `n` requests on new connections; the names that answered (`-` for a failure).
fn spread(vip: SocketAddr, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| get_once(vip).unwrap_or_else(|| "-".to_owned()))
        .collect()
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

/// The daemon in the foreground; killed (TERM, then KILL) when dropped.
struct Director {
    /// In a mutex so waits can read the log while polling the child.
    child: std::sync::Mutex<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Director {
    fn start(config_body: &str) -> Director {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ha.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let config = dir.path().join("userspace.cf");
        std::fs::write(&config, config_body).unwrap();
        let log = dir.path().join("stderr.log");
        let child = Command::new(BIN)
            .arg("--run-dir")
            .arg(dir.path().join("run"))
            .args(["--engine", "userspace", "-d"])
            .arg(&config)
            .arg("start")
            .env("LDIRECTORD_HA_DIR", dir.path().join("ha.d"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Director {
            child: std::sync::Mutex::new(child),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until `cond` holds; panic with the daemon's log after `secs` seconds.
    fn wait_until(&self, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                panic!(
                    "the daemon exited ({status}) while waiting for {what}:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {secs} s waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn config(
    vip: SocketAddr,
    reals: &[(&Backend, u32)],
    fallback: &Backend,
    quiescent: bool,
) -> String {
    let mut text = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent={}\n\nvirtual={vip}\n",
        if quiescent { "yes" } else { "no" }
    );
    for (b, weight) in reals {
        text.push_str(&format!("\treal={} masq {weight}\n", b.addr));
    }
    text.push_str(&format!(
        "\tfallback={} masq\n\tservice=http\n\trequest=\"health\"\n\treceive=\"OK\"\n\
         \tscheduler=wrr\n\tprotocol=tcp\n\tchecktype=negotiate\n",
        fallback.addr
    ));
    text
}

#[test]
fn traffic_follows_health_weights_and_the_fallback() {
    let mut a = Backend::start("a");
    let mut b = Backend::start("b");
    let fallback = Backend::start("fallback");
    let vip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let d = Director::start(&config(vip, &[(&a, 3), (&b, 1)], &fallback, false));

    d.wait_until(20, "both reals serving", || {
        let got = spread(vip, 8);
        count(&got, "a") > 0 && count(&got, "b") > 0
    });
    // wrr 3:1 with the table settled: 40 connections are ten whole cycles.
    let got = spread(vip, 40);
    assert_eq!((count(&got, "a"), count(&got, "b")), (30, 10), "{got:?}");

    // b dies: the check fails, the director deletes it, new connections avoid it.
    b.stop();
    let deleted = format!("Deleted real server: {}", b.addr);
    d.wait_until(20, "b deleted", || d.log().contains(&deleted));
    assert!(spread(vip, 8).iter().all(|n| n == "a"));

    // b comes back and gets its share again.
    b.restart();
    d.wait_until(20, "b back", || count(&spread(vip, 8), "b") > 0);

    // Both die: the fallback serves.
    a.stop();
    b.stop();
    d.wait_until(20, "the fallback serving", || {
        spread(vip, 4).iter().all(|n| n == "fallback")
    });
    assert!(
        d.log()
            .contains(&format!("Added fallback server: {}", fallback.addr))
    );

    // a returns: the fallback hands back.
    a.restart();
    d.wait_until(20, "a serving again", || {
        spread(vip, 4).iter().all(|n| n == "a")
    });
    assert!(
        d.log()
            .contains(&format!("Deleted fallback server: {}", fallback.addr))
    );
}

#[test]
fn quiescent_real_keeps_established_connections() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let fallback = Backend::start("fallback");
    let vip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let d = Director::start(&config(vip, &[(&a, 1), (&b, 1)], &fallback, true));
    d.wait_until(20, "both reals serving", || {
        let got = spread(vip, 4);
        count(&got, "a") > 0 && count(&got, "b") > 0
    });
    let mut established = Client::connect(vip).unwrap();
    let first = established.get().unwrap();
    let (failing, other) = if first == "a" { (&a, "b") } else { (&b, "a") };
    failing.set(Mode::FailingCheck);
    let quiesced = format!("Quiescent real server: {}", failing.addr);
    d.wait_until(20, "quiesced", || d.log().contains(&quiesced));
    // New connections avoid the quiesced real …
    assert!(spread(vip, 8).iter().all(|n| n == other));
    // … while the established one keeps being served by it.
    for _ in 0..3 {
        assert_eq!(established.get().as_deref(), Some(first.as_str()));
    }
    // Healthy again: it takes new connections.
    failing.set(Mode::Healthy);
    d.wait_until(20, "restored", || count(&spread(vip, 4), &first) > 0);
}
