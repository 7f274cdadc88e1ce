//! Shared pieces of the engine tests (`engine_ipvsadm`, `engine_netlink`): services and
//! reals written as text addresses with the vocabulary's plain defaults, and the recording
//! `ipvsadm` stand-in (`tests/fixtures/ipvsadm-standin.py`).
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ldirectord::engine::ipvsadm::IpvsadmEngine;
use ldirectord::engine::{
    DestSpec, Engine, EngineError, Forward, IpProto, Op, ServiceKey, ServiceSpec,
};

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub fn key(proto: IpProto, addr: &str, port: u16) -> ServiceKey {
    ServiceKey::inet(proto, ip(addr), port)
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    key(IpProto::Tcp, addr, port)
}

pub fn udp(addr: &str, port: u16) -> ServiceKey {
    key(IpProto::Udp, addr, port)
}

/// A service with `scheduler` and nothing else set.
pub fn service(key: ServiceKey, scheduler: &str) -> ServiceSpec {
    ServiceSpec::new(key, scheduler)
}

/// A real without thresholds.
pub fn dest(addr: &str, port: u16, forward: Forward, weight: u32) -> DestSpec {
    DestSpec::new(ip(addr), port, forward, weight)
}

/// The message of an `Unavailable` error; panics on any other outcome.
pub fn unavailable<T: std::fmt::Debug>(result: Result<T, EngineError>) -> String {
    match result {
        Err(EngineError::Unavailable(message)) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Applies every op in order; panics naming the engine, the op and the error.
pub async fn apply_all(engine: &mut dyn Engine, ops: &[Op]) {
    for op in ops {
        if let Err(e) = engine.apply(op).await {
            panic!("{} {op:?}: {e}", engine.name());
        }
    }
}

/// A temporary directory with an `ipvsadm` wrapper that runs the stand-in there.
pub struct StandIn {
    dir: tempfile::TempDir,
}

impl StandIn {
    pub fn new() -> StandIn {
        Self::with_env("")
    }

    pub fn with_env(extra: &str) -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ipvsadm-standin.py");
        let script = format!(
            "#!/bin/sh\nIPVSADM_STANDIN_DIR='{}' {extra} exec python3 '{}' \"$@\"\n",
            dir.path().display(),
            fixture.display()
        );
        let wrapper = dir.path().join("ipvsadm");
        std::fs::write(&wrapper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        StandIn { dir }
    }

    pub fn program(&self) -> PathBuf {
        self.dir.path().join("ipvsadm")
    }

    pub fn engine(&self) -> IpvsadmEngine {
        IpvsadmEngine::new(self.program())
    }

    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(self.program())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}
