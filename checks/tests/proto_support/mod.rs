//! Shared helpers of the protocol-check tests: free loopback ports, real daemons started
//! from temp-dir configs and stopped by a Drop guard, hostile stand-ins (a server that
//! accepts and never answers), self-signed certificates, and check specs.
//!
//! Every address used is on 127.0.0.0/8. A missing server binary fails the test with the
//! Debian package to install; nothing is skipped.
#![allow(dead_code)] // each test binary uses its own subset

#[path = "../common/mod.rs"]
mod common;
#[allow(unused_imports)] // each test binary uses its own subset
pub use common::{
    FWD_MARK, FWD_REAL, FWD_VIP, block_on, forwarded, in_forwarding_netns, mariadb_command,
    require, self_signed_cert,
};

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ldirectord_checks::{CheckSpec, Checker, Outcome};
use ldirectord_parsers::config::{CheckType, Receive, Service};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long a daemon may take to start listening. Generous: CI machines are slow, and
/// this is a start-up wait, not an assertion about speed.
const STARTUP: Duration = Duration::from_secs(60);

/// A port on 127.0.0.1 that was free a moment ago for TCP and UDP alike (DNS serves
/// both), outside the ephemeral range: see `common::free_port`.
pub fn free_port() -> u16 {
    common::free_port("127.0.0.1")
}

/// A TCP server that accepts connections and never sends a byte (a hung daemon, e.g.
/// SIGSTOPped after the kernel completed the handshake). Lives as long as the value.
pub struct HungTcp {
    pub port: u16,
    _listener: TcpListener,
}

pub fn hung_tcp() -> HungTcp {
    // The kernel completes handshakes into the backlog; nobody ever accepts or writes.
    let listener = TcpListener::bind((LOCALHOST, 0)).unwrap();
    HungTcp {
        port: listener.local_addr().unwrap().port(),
        _listener: listener,
    }
}

/// A UDP socket that receives and never answers.
pub struct HungUdp {
    pub port: u16,
    _socket: UdpSocket,
}

pub fn hung_udp() -> HungUdp {
    let socket = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    HungUdp {
        port: socket.local_addr().unwrap().port(),
        _socket: socket,
    }
}

/// A running daemon, killed and reaped on drop; its temp dir goes with it.
pub struct Daemon {
    pub name: &'static str,
    child: Child,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Spawn `cmd` with stdout and stderr going to `<dir>/<name>.out`.
    pub fn spawn(name: &'static str, dir: tempfile::TempDir, mut cmd: Command) -> Daemon {
        let log = dir.path().join(format!("{name}.out"));
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            name,
            child,
            log,
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Wait until `ready` holds, failing with the daemon's output if it exits first.
    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        loop {
            if ready() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.output()
                );
            }
            if start.elapsed() > STARTUP {
                panic!(
                    "{} not ready ({what}) after {STARTUP:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the daemon accepts TCP connections on `port`.
    pub fn wait_tcp(&mut self, port: u16) {
        let addr = SocketAddr::new(LOCALHOST, port);
        self.wait_until(&format!("listening on {addr}"), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Share one expensive server between the tests of a binary while any of them runs; the
/// last user's drop stops it (no server outlives the test process).
pub fn shared<T>(slot: &Mutex<Weak<T>>, start: impl FnOnce() -> T) -> Arc<T> {
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(running) = guard.upgrade() {
        return running;
    }
    let started = Arc::new(start());
    *guard = Arc::downgrade(&started);
    started
}

/// A negotiate check of `service` on 127.0.0.1:`port`, with a 5 s negotiate/check
/// timeout and request `/` (what the parser gives by default).
pub fn spec(service: Service, port: u16) -> CheckSpec {
    CheckSpec::new(CheckType::Negotiate, service, LOCALHOST, port)
}

/// The spec with a short timeout for the hung-server cases.
pub fn short(mut spec: CheckSpec) -> CheckSpec {
    spec.checktimeout = Duration::from_secs(1);
    spec.negotiatetimeout = Duration::from_secs(1);
    spec
}

pub fn receive(pattern: &str) -> Option<Receive> {
    Some(Receive::new(pattern).unwrap())
}

/// Build through the registry (the seam the daemon uses) and run once.
pub async fn run(spec: &CheckSpec) -> Outcome {
    let checker: Arc<dyn Checker> = ldirectord_checks::build(spec)
        .unwrap_or_else(|e| panic!("build failed: {e}"))
        .expect("a negotiate check builds a checker");
    checker.check().await
}

#[track_caller]
pub fn assert_up(outcome: &Outcome) {
    assert!(outcome.is_up(), "expected up, got down: {}", outcome.reason);
}

#[track_caller]
pub fn assert_down(outcome: &Outcome, reason_contains: &str) {
    assert!(
        !outcome.is_up(),
        "expected down, got up: {}",
        outcome.reason
    );
    assert!(
        outcome.reason.contains(reason_contains),
        "reason {:?} does not contain {reason_contains:?}",
        outcome.reason
    );
}

/// A hung server must be given up on with the check's own timeout reason.
#[track_caller]
pub fn assert_timed_out(outcome: &Outcome) {
    assert_down(outcome, "timed out after 1s");
}
