//! What `checkpath=forwarding` costs the director per check of a healthy real: the same
//! TCP connect check of a loopback listener run directly and through
//! [`ldirectord_checks::route::Forwarding`] (a marked socket bound to the source towards the
//! real, found by a route lookup). There is no IPVS here, so the marked connection goes
//! to the listener like the direct one: the difference is the director's own work (the
//! extra socket calls), not the kernel's DR/IPIP delivery, which the VM scenario
//! `34-forwarding-path` measures end to end. `SO_MARK` needs CAP_NET_ADMIN: run as root
//! (`cargo bench -p ldirectord-checks --bench check_path`).
//!
//! The same for an https check of `openssl s_server -www` (a real TLS server; one
//! connection at a time, which is what a sequential bench needs): the TLS handshake and
//! the exchange on a marked socket against the same on a plain one.
//!
//! And for a mysql check of a real MariaDB (`SELECT 1` as a user with a password): the
//! driver's own connection against the same through the loopback relay of the forwarding
//! path (a marked upstream socket, the ownership lookup in `/proc`, the bytes copied).

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ldirectord_checks::{CheckRoute, CheckSpec, build};
use ldirectord_parsers::config::{CheckType, Service};

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)] // the certificate and MariaDB makers only
mod common;

const MARK: u32 = 0x6c64_0000;

fn paths(c: &mut Criterion) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let direct = CheckSpec::new(CheckType::Connect, Service::None, lo, port)
        .with_timeout(Duration::from_secs(2));
    let forwarding = direct.clone().through(CheckRoute {
        vip: lo,
        mark: MARK,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    compare(c, &rt, "connect check", &direct, &forwarding);

    let server = Server::s_server();
    let direct = CheckSpec::new(CheckType::Negotiate, Service::Https, lo, server.port)
        .with_request("/")
        .with_timeout(Duration::from_secs(5));
    let forwarding = direct.clone().through(CheckRoute {
        vip: lo,
        mark: MARK,
    });
    compare(c, &rt, "https check", &direct, &forwarding);

    let mariadb = Server::mariadb();
    let mut direct = CheckSpec::new(CheckType::Negotiate, Service::Mysql, lo, mariadb.port)
        .with_request("/SELECT 1")
        .with_timeout(Duration::from_secs(5));
    direct.login = "monitor".to_owned();
    direct.passwd = "m0nitor".to_owned();
    let forwarding = direct.clone().through(CheckRoute {
        vip: lo,
        mark: MARK,
    });
    compare(c, &rt, "mysql check", &direct, &forwarding);
}

/// One benchmark group: the check of `direct` against the same through the forwarding
/// code path.
fn compare(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    direct: &CheckSpec,
    forwarding: &CheckSpec,
) {
    let mut group = c.benchmark_group(group);
    for (name, spec) in [("direct", direct), ("forwarding", forwarding)] {
        let checker = build(spec).unwrap().unwrap();
        let first = rt.block_on(checker.check());
        assert!(
            first.is_up(),
            "{name}: {} (SO_MARK needs root)",
            first.reason
        );
        group.bench_function(name, |b| b.iter(|| rt.block_on(checker.check())));
    }
    group.finish();
}

/// A server on a loopback port, killed on drop.
struct Server {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
    /// `openssl s_server -www` with a fresh self-signed certificate.
    fn s_server() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = common::self_signed_cert(dir.path(), "bench");
        let port = common::free_port("127.0.0.1");
        let mut cmd = Command::new(common::require("openssl", "openssl"));
        cmd.args(["s_server", "-www", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key);
        Server::start(cmd, port, dir)
    }

    /// A MariaDB (`common::mariadb_command`).
    fn mariadb() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port("127.0.0.1");
        let cmd = common::mariadb_command(dir.path(), "127.0.0.1", port);
        Server::start(cmd, port, dir)
    }

    /// Run `cmd` and wait until `port` takes connections.
    fn start(mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Server {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{cmd:?} did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

criterion_group!(benches, paths);
criterion_main!(benches);
