//! What the core and the protocol test supports share: finding a server binary (never
//! skipping when it is missing) and a self-signed certificate for the TLS servers.
//! Included by both as `common`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The path of `binary` (absolute, or a name looked up in the sbin/bin directories). Fails
/// the test with the Debian package to install when it is missing: nothing is skipped.
pub fn require(binary: &str, package: &str) -> PathBuf {
    let found = if binary.starts_with('/') {
        Some(PathBuf::from(binary)).filter(|p| p.exists())
    } else {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(binary))
            .find(|p| p.exists())
    };
    found.unwrap_or_else(|| {
        panic!(
            "{binary} not found: install the Debian package `{package}` (apt-get install -y {package})"
        )
    })
}

#[path = "../../../tests/fixtures/ports.rs"]
mod ports;

/// A port that was free a moment ago on `ip`, outside the ephemeral range (see `ports`).
pub fn free_port(ip: &str) -> u16 {
    ports::free_port_on(ip.parse().unwrap())
}

/// A self-signed certificate and key for `name` (CN and DNS subjectAltName) in `dir`, as
/// `cert.pem` and `key.pem`; valid for two days.
pub fn self_signed_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let openssl = require("openssl", "openssl");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-subj")
        .arg(format!("/CN={name}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}

/// The statements a test MariaDB runs at start: a `monitor` user (password `m0nitor`)
/// allowed from anywhere to read `ldcheck`, whose `health` table has one row and `empty`
/// none.
const MARIADB_INIT: &str = "
CREATE DATABASE IF NOT EXISTS ldcheck;
CREATE TABLE IF NOT EXISTS ldcheck.health (state VARCHAR(10));
CREATE TABLE IF NOT EXISTS ldcheck.empty (state VARCHAR(10));
DELETE FROM ldcheck.health;
INSERT INTO ldcheck.health VALUES ('ok');
CREATE USER IF NOT EXISTS 'monitor'@'%' IDENTIFIED BY 'm0nitor';
GRANT SELECT ON ldcheck.* TO 'monitor'@'%';
";

/// A MariaDB (Debian `mariadb-server`) ready to start: a datadir made by
/// mariadb-install-db in `dir`, grant tables on (logins are really checked), the
/// [`MARIADB_INIT`] statements, TCP on `bind`:`port`, errors to stderr.
pub fn mariadb_command(dir: &Path, bind: &str, port: u16) -> Command {
    let server = require("/usr/sbin/mariadbd", "mariadb-server");
    let install = require("/usr/bin/mariadb-install-db", "mariadb-server");
    let data = dir.join("data");
    // Its own temp dir: at start mariadbd deletes the `#sql*` files it finds in its
    // tmpdir, so two servers sharing /tmp (another test, another job) break each other's
    // system-table set-up (`Unknown table 'mysql.tmp_user_sys'`).
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = Command::new(install)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--tmpdir={}", tmp.display()))
        .args([
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb-install-db failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("init.sql"), MARIADB_INIT).unwrap();
    let mut cmd = Command::new(server);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--tmpdir={}", tmp.display()))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--init-file={}", dir.join("init.sql").display()))
        .arg(format!("--port={port}"))
        .arg(format!("--bind-address={bind}"))
        .args(["--user=root", "--skip-name-resolve", "--skip-log-bin"])
        .args(["--innodb-buffer-pool-size=16M", "--log-error="]);
    cmd
}

// --- the forwarding path, without IPVS -----------------------------------------------

/// The real server's address in [`in_forwarding_netns`].
pub const FWD_REAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, 2));
/// The VIP in [`in_forwarding_netns`].
pub const FWD_VIP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 2, 0, 1));
/// The only mark [`in_forwarding_netns`] lets through to the VIP.
pub const FWD_MARK: u32 = 0x6c64_0001;

/// Run `fut` to completion on a fresh current-thread runtime of the calling thread, so in
/// a namespace of the thread's own ([`in_forwarding_netns`], core_support's `in_netns`)
/// every socket it opens is in the namespace.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

/// `spec` (of the real at [`FWD_REAL`]) sent through the forwarding path with `mark`.
pub fn forwarded(spec: &ldirectord_checks::CheckSpec, mark: u32) -> ldirectord_checks::CheckSpec {
    spec.clone()
        .through(ldirectord_checks::CheckRoute { vip: FWD_VIP, mark })
}

/// Run `f` on a thread of its own in a fresh network namespace that stands in for the
/// forwarding path of `checkpath=forwarding` without IPVS: `lo` holds the real's address
/// ([`FWD_REAL`]) and the VIP ([`FWD_VIP`]), and an nftables rule lets a packet to the VIP
/// in only when it carries [`FWD_MARK`] and the real's address as its source, which is
/// what a check socket of the director's helper service carries; anything else to the VIP
/// is rejected (TCP with a reset; the input hook, because a reset made at the output hook
/// for a local connection never reaches its socket, and the resets themselves pass). So a forwarded check passes only when the mark and the
/// source reach its socket. Servers `f` starts listen in the namespace (children inherit
/// the thread's); it goes away with the thread and them. Needs root (`unshare`, `nft`).
pub fn in_forwarding_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let ip = require("ip", "iproute2");
    let nft = require("nft", "nftables");
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET): run the tests as root");
            for args in [
                vec!["link", "set", "lo", "up"],
                vec!["addr", "add", "10.1.0.2/32", "dev", "lo"],
                vec!["addr", "add", "10.2.0.1/32", "dev", "lo"],
            ] {
                let st = Command::new(&ip).args(&args).status().unwrap();
                assert!(st.success(), "ip {args:?} failed");
            }
            let rules = format!(
                "table ip ldrs_forwarding {{\n\
                   chain checked {{\n\
                     type filter hook input priority 0;\n\
                     ip daddr {FWD_VIP} meta mark {FWD_MARK:#x} ip saddr {FWD_REAL} accept\n\
                     ip daddr {FWD_VIP} tcp flags & rst == rst accept\n\
                     ip daddr {FWD_VIP} meta l4proto tcp reject with tcp reset\n\
                     ip daddr {FWD_VIP} reject\n\
                   }}\n\
                 }}\n"
            );
            let rules_file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(rules_file.path(), rules).unwrap();
            let out = Command::new(&nft)
                .arg("-f")
                .arg(rules_file.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "nft: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            f()
        })
        .join()
        .unwrap()
    })
}
