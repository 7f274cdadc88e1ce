//! An engine that waits for IPVS to appear: the `ip_vs` module is installed but not
//! loaded when the daemon starts (an operator's `rmmod`, a boot where ldirectord comes up
//! before the module is loaded).
//!
//! [`Deferred`] holds a way to connect instead of an engine. Every call first tries to
//! connect (one socket and one family lookup: cheap) and answers
//! [`EngineError::Unavailable`] while that fails; once it succeeds it is the real engine
//! for good. The daemon needs nothing else: it treats those errors like any engine error
//! (logged, a resync with backoff), checks keep running, and the first dump that succeeds
//! lets the director converge on what its checks found meanwhile.
//!
//! Stock ldirectord never waits: each `ipvsadm` it runs loads `ip_vs` itself. The netlink
//! engine loads no module (see `NetlinkOptions::modprobe`), so it waits instead, but only
//! when waiting can end: [`ip_vs_installed_but_not_loaded`] tells whether the running
//! kernel has an `ip_vs` module to load and has not loaded it.

use std::path::Path;

use super::{BoxFuture, Engine, EngineError, Op, SyncDaemon, SyncRole, Table};

/// Connects the engine; called again after every failure.
pub type Connect =
    Box<dyn FnMut() -> BoxFuture<'static, Result<Box<dyn Engine>, EngineError>> + Send>;

/// An engine that is connected on first use that succeeds.
pub struct Deferred {
    name: &'static str,
    connect: Connect,
    engine: Option<Box<dyn Engine>>,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("name", &self.name)
            .field("connected", &self.engine.is_some())
            .finish_non_exhaustive()
    }
}

impl Deferred {
    /// `name` is the engine's (for logs, the same before and after it connects).
    pub fn new(name: &'static str, connect: Connect) -> Self {
        Deferred {
            name,
            connect,
            engine: None,
        }
    }

    /// Whether the real engine is connected.
    pub fn is_connected(&self) -> bool {
        self.engine.is_some()
    }

    async fn engine(&mut self) -> Result<&mut Box<dyn Engine>, EngineError> {
        if self.engine.is_none() {
            let engine = (self.connect)().await?;
            tracing::info!(
                "IPVS is available now: the {} engine is connected",
                self.name
            );
            self.engine = Some(engine);
        }
        Ok(self.engine.as_mut().expect("connected above"))
    }
}

impl Engine for Deferred {
    fn name(&self) -> &'static str {
        self.name
    }

    fn dump(&mut self) -> BoxFuture<'_, Result<Table, EngineError>> {
        Box::pin(async move { self.engine().await?.dump().await })
    }

    fn apply<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move { self.engine().await?.apply(op).await })
    }

    fn sync_daemons(&mut self) -> BoxFuture<'_, Result<Vec<SyncDaemon>, EngineError>> {
        Box::pin(async move { self.engine().await?.sync_daemons().await })
    }

    fn start_sync_daemon<'a>(
        &'a mut self,
        daemon: &'a SyncDaemon,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move { self.engine().await?.start_sync_daemon(daemon).await })
    }

    fn stop_sync_daemon(&mut self, role: SyncRole) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async move { self.engine().await?.stop_sync_daemon(role).await })
    }
}

/// Whether waiting for IPVS can end: `ip_vs` is not loaded (`/sys/module/ip_vs` is absent;
/// when it is there, IPVS failed for another reason, such as a missing CAP_NET_ADMIN) and
/// the running kernel has an `ip_vs` module to load (`modules.dep` of
/// `/lib/modules/RELEASE` lists one). False on a kernel built without IPVS (as this
/// project's development machines are) and when the module tree is missing, so the daemon
/// fails at start there instead of waiting for ever.
pub fn ip_vs_installed_but_not_loaded() -> bool {
    !Path::new("/sys/module/ip_vs").exists() && ipvs_module_installed()
}

fn ipvs_module_installed() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let dir = Path::new("/lib/modules").join(release.trim());
    modules_dep_lists_ip_vs(&dir.join("modules.dep"))
}

fn modules_dep_lists_ip_vs(modules_dep: &Path) -> bool {
    std::fs::read_to_string(modules_dep).is_ok_and(|text| {
        text.lines().any(|line| {
            let module = line.split(':').next().unwrap_or_default();
            let file = module.rsplit('/').next().unwrap_or_default();
            file == "ip_vs.ko" || file.starts_with("ip_vs.ko.")
        })
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::engine::netlink::{FakeKernel, NetlinkEngine, NetlinkOptions};
    use crate::engine::{DestSpec, Forward, IpProto, ServiceKey, ServiceSpec};

    /// A kernel whose IPVS appears at the third connection attempt.
    fn appears_at_third_attempt(kernel: FakeKernel) -> (Connect, Arc<AtomicUsize>) {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&attempts);
        let connect: Connect = Box::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let transport = if n >= 3 {
                kernel.clone()
            } else {
                FakeKernel::without_ipvs()
            };
            Box::pin(async move {
                let engine =
                    NetlinkEngine::with_transport(transport, NetlinkOptions::default()).await?;
                Ok(Box::new(engine) as Box<dyn Engine>)
            })
        });
        (connect, attempts)
    }

    #[tokio::test]
    async fn unavailable_until_ipvs_appears_then_the_real_engine() {
        let kernel = FakeKernel::new();
        let (connect, attempts) = appears_at_third_attempt(kernel.clone());
        let mut engine = Deferred::new("netlink", connect);
        let key = ServiceKey::Inet {
            proto: IpProto::Tcp,
            ip: "10.10.10.100".parse().unwrap(),
            port: 80,
        };
        let add = Op::AddService(ServiceSpec::new(key, "wrr"));
        match engine.dump().await {
            Err(EngineError::Unavailable(m)) => assert!(m.contains("modprobe ip_vs"), "{m}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(matches!(
            engine.apply(&add).await,
            Err(EngineError::Unavailable(_))
        ));
        assert!(!engine.is_connected());
        assert_eq!(engine.name(), "netlink");
        // Third attempt: connected; the op reaches the kernel, and the engine stays.
        engine.apply(&add).await.unwrap();
        let real = DestSpec::new("10.0.0.1".parse().unwrap(), 80, Forward::Masq, 1);
        engine.apply(&Op::AddDest(key, real)).await.unwrap();
        let table = engine.dump().await.unwrap();
        assert_eq!(table.services.len(), 1);
        assert_eq!(table.services[0].dests.len(), 1);
        assert!(engine.is_connected());
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert_eq!(kernel.counts(), (1, 1));
    }

    #[test]
    fn the_module_is_found_in_modules_dep_whatever_its_compression() {
        let dir = tempfile::tempdir().unwrap();
        let dep = dir.path().join("modules.dep");
        assert!(!modules_dep_lists_ip_vs(&dep), "no file, no module");
        std::fs::write(
            &dep,
            "kernel/net/netfilter/ipvs/ip_vs_rr.ko: kernel/net/netfilter/ipvs/ip_vs.ko\n",
        )
        .unwrap();
        assert!(!modules_dep_lists_ip_vs(&dep), "only a dependency named");
        for name in ["ip_vs.ko", "ip_vs.ko.xz", "ip_vs.ko.zst"] {
            std::fs::write(
                &dep,
                format!("kernel/net/netfilter/ipvs/{name}: kernel/net/netfilter/nf_conntrack.ko\n"),
            )
            .unwrap();
            assert!(modules_dep_lists_ip_vs(&dep), "{name}");
        }
    }
}
