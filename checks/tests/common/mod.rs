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

/// A port that was free a moment ago on `ip`.
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip.parse::<std::net::IpAddr>().unwrap(), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
