//! The data path: one listener task per virtual service, one task per client connection.
//!
//! A [`Virtual`] is shared between the engine (which edits it when ops arrive), its
//! listener and its connections. The engine holds the lock only to edit; the listener only
//! to choose a real; nothing awaits while holding it.
//!
//! Connection counters follow IPVS's meaning: a connection is *active* while both
//! directions are open and *inactive* once one side has closed and the other is draining
//! (the kernel's FIN_WAIT/TIME_WAIT states). Each real has a close signal: dropping its
//! sender (when the real or its virtual is deleted) ends every connection to it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::scheduler::{Candidate, Scheduler};
use crate::engine::{DestSpec, Netmask, ServiceSpec};

/// Prune expired persistence templates once the map has grown past this many entries.
const TEMPLATE_PRUNE_AT: usize = 4096;

/// A virtual service's shared state.
#[derive(Debug)]
pub struct Virtual {
    /// The virtual port, used for reals configured without a port (`RIP:0`).
    pub port: u16,
    state: Mutex<VirtualState>,
}

#[derive(Debug)]
struct VirtualState {
    spec: ServiceSpec,
    scheduler: Scheduler,
    reals: Vec<Real>,
    /// Persistence templates by masked client address.
    templates: HashMap<IpAddr, Template>,
    prune_at: usize,
}

/// A real server in the table.
#[derive(Debug)]
pub struct Real {
    pub spec: DestSpec,
    pub counters: Arc<Counters>,
    /// Never sent on: dropping it tells every connection to this real to close.
    _close: watch::Sender<()>,
    closed: watch::Receiver<()>,
}

/// Connection counters of one real, shared with its connections.
#[derive(Debug, Default)]
pub struct Counters {
    pub active: AtomicU32,
    pub inactive: AtomicU32,
    /// Set when the connection count reached the upper threshold; cleared below the lower
    /// one (IPVS `IP_VS_DEST_F_OVERLOAD`). Guarded by the virtual's lock.
    overloaded: std::sync::atomic::AtomicBool,
}

impl Counters {
    fn total(&self) -> u32 {
        self.active.load(Ordering::Relaxed) + self.inactive.load(Ordering::Relaxed)
    }
}

/// Which real a client group sticks to, and until when.
#[derive(Debug)]
struct Template {
    real: (IpAddr, u16),
    /// Connections started under this template that are still open; the template does not
    /// expire while any is.
    open: u32,
    expires: Instant,
}

/// Locks a mutex, recovering the data if a connection task panicked while holding it: the
/// state is only ever left consistent between statements, so it stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Real {
    pub fn new(spec: DestSpec) -> Real {
        let (close, closed) = watch::channel(());
        Real {
            spec,
            counters: Arc::default(),
            _close: close,
            closed,
        }
    }

    fn candidate(&self) -> Candidate {
        Candidate {
            weight: self.spec.weight,
            active: self.counters.active.load(Ordering::Relaxed),
            inactive: self.counters.inactive.load(Ordering::Relaxed),
            overloaded: self.counters.overloaded.load(Ordering::Relaxed),
        }
    }
}

impl Virtual {
    pub fn new(spec: ServiceSpec, scheduler: Scheduler, port: u16) -> Virtual {
        Virtual {
            port,
            state: Mutex::new(VirtualState {
                spec,
                scheduler,
                reals: Vec::new(),
                templates: HashMap::new(),
                prune_at: TEMPLATE_PRUNE_AT,
            }),
        }
    }

    /// Run `f` on the reals under the lock; the scheduler restarts its cycles afterwards.
    pub fn edit_reals<R>(&self, f: impl FnOnce(&mut Vec<Real>) -> R) -> R {
        let mut state = lock(&self.state);
        let out = f(&mut state.reals);
        state.scheduler.reals_changed();
        for real in &state.reals {
            // A raised upper threshold (or none) releases an overloaded real at once.
            let c = &real.counters;
            if real.spec.upper == 0 || c.total() < real.spec.upper {
                c.overloaded.store(false, Ordering::Relaxed);
            }
        }
        out
    }

    /// Read the reals under the lock.
    pub fn with_reals<R>(&self, f: impl FnOnce(&[Real]) -> R) -> R {
        f(&lock(&self.state).reals)
    }

    /// Replace the service's settings (`-E`). Established connections are untouched;
    /// persistence templates go if persistence was turned off or regrouped.
    pub fn edit(&self, spec: ServiceSpec, scheduler: Scheduler) {
        let mut state = lock(&self.state);
        if spec.persistent.is_none() || spec.netmask != state.spec.netmask {
            state.templates.clear();
        }
        if spec.scheduler != state.spec.scheduler || spec.sched_flags != state.spec.sched_flags {
            state.scheduler = scheduler;
        }
        state.spec = spec;
    }

    /// Deleting the virtual: drop every real (closing their connections).
    pub fn close_all(&self) {
        let mut state = lock(&self.state);
        state.reals.clear();
        state.templates.clear();
    }

    /// Choose a real for a new connection from `client` and count it there.
    fn schedule(self: &Arc<Self>, client: SocketAddr) -> Option<Lease> {
        let now = Instant::now();
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let group = state.spec.persistent.map(|timeout| {
            (
                group_of(client.ip(), state.spec.netmask),
                Duration::from_secs(u64::from(timeout)),
            )
        });
        // A template is honoured while its real is in the table with a weight: a quiesced
        // real gets no new connections even from persistent clients (the kernel does this
        // with net.ipv4.vs.expire_quiescent_template=1, which ldirectord setups want).
        let sticky = group.as_ref().and_then(|(key, _)| {
            let t = state.templates.get(key)?;
            if t.open == 0 && t.expires <= now {
                return None;
            }
            state
                .reals
                .iter()
                .position(|r| (r.spec.ip, r.spec.port) == t.real && r.spec.weight > 0)
        });
        let index = match sticky {
            Some(i) => i,
            None => {
                let candidates: Vec<Candidate> = state.reals.iter().map(Real::candidate).collect();
                state
                    .scheduler
                    .pick(&candidates, client.ip(), client.port())?
            }
        };
        let real = &state.reals[index];
        let counters = Arc::clone(&real.counters);
        counters.active.fetch_add(1, Ordering::Relaxed);
        if real.spec.upper > 0 && counters.total() >= real.spec.upper {
            counters.overloaded.store(true, Ordering::Relaxed);
        }
        let target = SocketAddr::new(
            real.spec.ip,
            if real.spec.port == 0 {
                self.port
            } else {
                real.spec.port
            },
        );
        let closed = real.closed.clone();
        let template = group.map(|(key, timeout)| {
            let id = (real.spec.ip, real.spec.port);
            if state.templates.len() >= state.prune_at {
                state.templates.retain(|_, t| t.open > 0 || t.expires > now);
                state.prune_at = (state.templates.len() * 2).max(TEMPLATE_PRUNE_AT);
            }
            let t = state.templates.entry(key).or_insert(Template {
                real: id,
                open: 0,
                expires: now,
            });
            if t.real != id {
                *t = Template {
                    real: id,
                    open: 0,
                    expires: now,
                };
            }
            t.open += 1;
            t.expires = now + timeout;
            (key, timeout)
        });
        Some(Lease {
            virt: Arc::clone(self),
            counters,
            upper: real.spec.upper,
            lower: real.spec.lower,
            draining: false,
            template,
            target,
            closed,
        })
    }

    /// A connection ended: its template's timeout starts again from now.
    fn release_template(&self, key: IpAddr, timeout: Duration) {
        let mut state = lock(&self.state);
        if let Some(t) = state.templates.get_mut(&key) {
            t.open = t.open.saturating_sub(1);
            t.expires = Instant::now() + timeout;
        }
    }

    /// Re-check the overload flag once a connection ends (kernel `ip_vs_unbind_dest`):
    /// clear it below the lower threshold, or below 3/4 of the upper one if none is set.
    fn release_overload(&self, counters: &Counters, upper: u32, lower: u32) {
        let _guard = lock(&self.state);
        let total = u64::from(counters.total());
        let clear = if lower > 0 {
            total < u64::from(lower)
        } else if upper > 0 {
            total * 4 < u64::from(upper) * 3
        } else {
            true
        };
        if clear {
            counters.overloaded.store(false, Ordering::Relaxed);
        }
    }
}

/// The persistence group of a client: its address under the service's netmask (IPv4
/// dotted mask, IPv6 prefix length); the whole address without one.
fn group_of(ip: IpAddr, mask: Option<Netmask>) -> IpAddr {
    match (ip, mask) {
        (IpAddr::V4(v4), Some(Netmask::V4(m))) => IpAddr::V4((u32::from(v4) & u32::from(m)).into()),
        (IpAddr::V6(v6), Some(Netmask::V6(len))) if len < 128 => {
            let bits = u128::from(v6) & !(u128::MAX >> len.min(128));
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        (ip, _) => ip,
    }
}

/// One scheduled connection: counted on its real until dropped.
struct Lease {
    virt: Arc<Virtual>,
    counters: Arc<Counters>,
    upper: u32,
    lower: u32,
    /// One direction has closed: counted as inactive.
    draining: bool,
    template: Option<(IpAddr, Duration)>,
    target: SocketAddr,
    closed: watch::Receiver<()>,
}

impl Lease {
    fn drain(&mut self) {
        if !self.draining {
            self.draining = true;
            self.counters.inactive.fetch_add(1, Ordering::Relaxed);
            self.counters.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let counter = if self.draining {
            &self.counters.inactive
        } else {
            &self.counters.active
        };
        counter.fetch_sub(1, Ordering::Relaxed);
        if self.counters.overloaded.load(Ordering::Relaxed) {
            self.virt
                .release_overload(&self.counters, self.upper, self.lower);
        }
        if let Some((key, timeout)) = self.template {
            self.virt.release_template(key, timeout);
        }
    }
}

/// Accept connections on `listener` for `virt` until the task is aborted.
pub async fn serve(listener: TcpListener, virt: Arc<Virtual>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(
                    "userspace engine: accept on {} failed: {e}",
                    listener
                        .local_addr()
                        .map_or_else(|_| "?".into(), |a| a.to_string())
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match virt.schedule(peer) {
            Some(lease) => {
                tokio::spawn(forward(client, lease));
            }
            // No real can take it: close at once, as IPVS drops the SYN.
            None => tracing::debug!("userspace engine: no real server for {peer}"),
        }
    }
}

/// Relay one connection between the client and its real until both sides have closed,
/// either fails, or the real is deleted.
async fn forward(client: TcpStream, mut lease: Lease) {
    let mut closed = lease.closed.clone();
    let server = tokio::select! {
        s = TcpStream::connect(lease.target) => s,
        _ = closed.changed() => return,
    };
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("userspace engine: cannot connect to {}: {e}", lease.target);
            return;
        }
    };
    // Small writes (requests, handshakes) must not wait for Nagle.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut up = pin!(pump(&mut client_read, &mut server_write));
    let mut down = pin!(pump(&mut server_read, &mut client_write));
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let finished = tokio::select! {
            r = &mut up, if !up_done => { up_done = true; r }
            r = &mut down, if !down_done => { down_done = true; r }
            _ = closed.changed() => return,
        };
        if finished.is_err() {
            // A reset or error on either side ends both: half a connection is of no use.
            return;
        }
        lease.drain();
    }
}

/// Copy one direction to its end, then pass the end (FIN) on.
async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
) -> io::Result<()> {
    tokio::io::copy(from, to).await?;
    to.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn persistence_groups_follow_the_netmask() {
        let ip: IpAddr = "192.168.7.9".parse().unwrap();
        let mask = Some(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(group_of(ip, mask), "192.168.7.0".parse::<IpAddr>().unwrap());
        assert_eq!(group_of(ip, None), ip);
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            group_of(v6, Some(Netmask::V6(64))),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(group_of(v6, Some(Netmask::V6(128))), v6);
        assert_eq!(
            group_of(v6, Some(Netmask::V6(0))),
            "::".parse::<IpAddr>().unwrap()
        );
    }
}
