//! Shared fixtures of the core checks' integration tests: spec builders, a real nginx on
//! loopback, misbehaving in-test servers (hung, resetting, garbage), and a private network
//! namespace for unreachable targets. Everything listens on 127.0.0.1/::1 or lives in a
//! namespace the test creates.
#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;
#[allow(unused_imports)] // each test binary uses its own subset
pub use common::{
    FWD_MARK, FWD_REAL, FWD_VIP, block_on, forwarded, free_port, in_forwarding_netns, require,
    self_signed_cert,
};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldirectord_checks::CheckSpec;
use ldirectord_parsers::config::{CheckType, Family, Receive, Service, VirtualAddress};

/// A spec with ldirectord's defaults for `checktype`/`service` against `ip:port`.
pub fn spec(checktype: CheckType, service: Service, ip: &str, port: u16) -> CheckSpec {
    CheckSpec::new(checktype, service, ip.parse().unwrap(), port)
}

/// An HTTP-family spec for `path` on `ip:port`, with the URL built as §3.6 does.
pub fn http_spec(service: Service, ip: &str, port: u16, path: &str) -> CheckSpec {
    spec(CheckType::Negotiate, service, ip, port)
        .with_request(format!("/{}", path.trim_start_matches('/')))
}

pub fn receive(pattern: &str) -> Option<Receive> {
    Some(Receive::new(pattern).unwrap())
}

pub fn fwmark(mark: u32) -> VirtualAddress {
    VirtualAddress::Fwmark {
        mark,
        family: Family::Inet,
    }
}

/// A port on 127.0.0.1 where nothing listens (bound and released).
pub fn closed_port() -> u16 {
    free_port("127.0.0.1")
}

/// Wait (generously bounded) until `addr` accepts connections.
pub fn wait_listening(addr: SocketAddr, what: &str) {
    wait_server(addr, what, || None);
}

/// [`wait_listening`], failing at once with `exited()`'s account when the server is gone.
fn wait_server(addr: SocketAddr, what: &str, mut exited: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Some(account) = exited() {
            panic!("{what} exited before listening on {addr}: {account}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- nginx ---------------------------------------------------------------------------

/// A real nginx on 127.0.0.1 (and ::1) serving the test locations over HTTP and HTTPS,
/// with a self-signed certificate for `www.example.com`. Killed on drop.
pub struct Nginx {
    pub dir: tempfile::TempDir,
    pub http: u16,
    pub https: u16,
    child: Child,
}

const LOCATIONS: &str = r#"
        default_type text/plain;
        location = /ok { return 200 "OK\n"; }
        location = /error { return 200 "ERROR\n"; }
        location = /500 { return 500 "OK\n"; }
        location = /redirect { return 302 /ok; }
        location = /redirect-abs { return 301 http://127.0.0.1:HTTP_PORT/ok; }
        location = /loop { return 302 /loop; }
        location = /host { return 200 "host=$host\n"; }
        location = /sni { return 200 "sni=[$ssl_server_name]\n"; }
        location = /proxied { return 200 "via proxy host=$host request=$request\n"; }
        location = /big { return 200 "BEGIN $request_id$request_id$request_id END\n"; }
        # sub_filter drops Content-Length, so HTTP/1.1 answers come chunked.
        location = /chunked {
            sub_filter_types text/plain;
            sub_filter never matched;
            return 200 "CHUNKED OK\n";
        }
"#;

impl Nginx {
    pub fn start() -> Nginx {
        Nginx::start_on("127.0.0.1")
    }

    /// nginx listening on `ipv4` (`0.0.0.0`: every address, in a namespace of the test's).
    pub fn start_on(ipv4: &str) -> Nginx {
        let nginx = require("nginx", "nginx-light");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        self_signed_cert(dir.path(), "www.example.com");
        let http = free_port("127.0.0.1");
        let https = free_port("127.0.0.1");
        let locations = LOCATIONS.replace("HTTP_PORT", &http.to_string());
        let conf = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {ipv4}:{http};
        listen [::1]:{http};
        server_name _;
        {locations}
    }}
    server {{
        listen {ipv4}:{https} ssl;
        server_name _;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        {locations}
    }}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx)
            .args([
                "-p",
                &d,
                "-c",
                &format!("{d}/nginx.conf"),
                "-e",
                &format!("{d}/error.log"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut n = Nginx {
            dir,
            http,
            https,
            child,
        };
        for (port, what) in [(http, "nginx"), (https, "nginx (https)")] {
            wait_server(SocketAddr::from(([127, 0, 0, 1], port)), what, || {
                let status = n.child.try_wait().unwrap()?;
                let log = std::fs::read_to_string(n.dir.path().join("error.log"));
                Some(format!("{status}; error.log: {}", log.unwrap_or_default()))
            });
        }
        n
    }

    /// The access log so far (one line per request, nginx's `combined` format).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// The access log once `done` says it is complete, or after 5 s. nginx logs a request
    /// after sending the answer, and a check that has read the whole answer closes without
    /// waiting for nginx, so the line can land a moment after the check returns.
    pub fn access_log_when(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.access_log();
            if done(&log) || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freeze nginx (SIGSTOP): connections are still accepted by the kernel, nothing is
    /// answered. Thawed on drop.
    pub fn freeze(&self) {
        signal(self.child.id(), "STOP");
    }

    pub fn thaw(&self) {
        signal(self.child.id(), "CONT");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

// --- misbehaving servers ---------------------------------------------------------------

/// A TCP server on 127.0.0.1 that handles each connection on its own thread with
/// `serve`; the listener lives as long as the process (tests are short).
pub fn tcp_server(serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let serve = serve.clone();
            std::thread::spawn(move || serve(conn));
        }
    });
    port
}

/// Accepts and never answers (holds every connection for a minute).
pub fn hung_server() -> u16 {
    tcp_server(|conn| {
        std::thread::sleep(Duration::from_secs(60));
        drop(conn);
    })
}

/// Accepts, then resets the connection at once.
pub fn resetting_server() -> u16 {
    tcp_server(|conn| {
        let _ = socket_linger_zero(&conn);
        drop(conn);
    })
}

fn socket_linger_zero(conn: &TcpStream) -> std::io::Result<()> {
    // std has no SO_LINGER setter; reading what the client sent and closing while unread
    // data remains makes Linux send a reset too.
    conn.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = [0u8; 1];
    let _ = (&*conn).read(&mut buf);
    Ok(())
}

/// Answers every connection with pseudo-random bytes (some with newlines), then closes.
pub fn garbage_server() -> u16 {
    tcp_server(|mut conn| {
        let mut x: u32 = 0x9e37_79b9;
        let mut buf = vec![0u8; 8192];
        for _ in 0..16 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = (x >> 24) as u8;
            }
            if conn.write_all(&buf).is_err() {
                return;
            }
        }
    })
}

/// Sends `greeting` on every connection, then keeps it open a moment.
pub fn banner_server(greeting: &'static [u8]) -> u16 {
    tcp_server(move |mut conn| {
        let _ = conn.write_all(greeting);
        std::thread::sleep(Duration::from_millis(500));
    })
}

// --- a private network namespace ----------------------------------------------------------

/// Run `f` on a thread inside a new network namespace (gone when the thread ends), after
/// `setup` commands (each an `ip` argument list) ran there. Sockets `f` opens live in
/// that namespace only; nothing leaves the machine.
pub fn in_netns<T: Send + 'static>(setup: &[&[&str]], f: impl FnOnce() -> T + Send + 'static) -> T {
    let setup: Vec<Vec<String>> = setup
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let ip = require("ip", "iproute2");
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): run the tests as root");
        for args in &setup {
            // Children forked from this thread start in its namespace.
            let st = Command::new(&ip).args(args).status().unwrap();
            assert!(st.success(), "ip {args:?} failed");
        }
        f()
    })
    .join()
    .unwrap()
}

/// A namespace with `lo` up and a veth pair whose one end has 10.255.0.1/24 and
/// 2001:db8:ff::1/64: 10.255.0.2 and 2001:db8:ff::2 are routed but nobody answers ARP or
/// neighbour discovery, so nothing ever replies. 10.254.0.0/24 has an `unreachable` route.
pub const BLACKHOLE_NS: &[&[&str]] = &[
    &["link", "set", "lo", "up"],
    &["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
    &["addr", "add", "10.255.0.1/24", "dev", "v0"],
    &[
        "-6",
        "addr",
        "add",
        "2001:db8:ff::1/64",
        "dev",
        "v0",
        "nodad",
    ],
    &["link", "set", "v0", "up"],
    &["link", "set", "v1", "up"],
    &["route", "add", "unreachable", "10.254.0.0/24"],
];

/// The `local remote` address pairs of the sockets connected to or from 127.0.0.1:`port`
/// whose state (hex, as in /proc/net/tcp: 06 = TIME_WAIT) passes `state`.
pub fn sockets_of(port: u16, state: impl Fn(&str) -> bool) -> Vec<String> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let endpoint = format!("0100007F:{port:04X}");
    tcp.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Fields 1 and 2: local and remote address, 3: state; 0A = LISTEN.
            (f.len() > 3 && (f[1] == endpoint || f[2] == endpoint) && f[3] != "0A" && state(f[3]))
                .then(|| format!("{} {}", f[1], f[2]))
        })
        .collect()
}
