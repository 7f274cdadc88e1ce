//! Dynamic real servers under the daemon itself: the `realsource=` directives (see
//! [`crate::realsource::generate`]) work with `ldirectord CONFIG start`, heartbeat v1 and
//! Pacemaker alike.
//!
//! Each virtual service with sources is selected once at start (and when a reload brings
//! new or changed sources), then again every `checkinterval` of that virtual, off the
//! check path: a refresh runs on a blocking thread, each command it runs is bounded by
//! [`crate::realsource::query::COMMAND_TIMEOUT`] and the whole refresh by
//! [`REFRESH_TIMEOUT`]; its result comes back to the main loop as a message. The loop
//! hands the director a new configuration (the file's, plus the selected servers) only
//! when a set changed, so the director's reload applies only that difference; an
//! unchanged set costs nothing. A source that fails (or a command that prints nothing)
//! keeps its last good set, with one warning per failure streak and a line when it
//! works again.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use ldirectord_parsers::config::{Config, Family, RealSources};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::realsource::{self, Member, SourceError, SystemQuery, generate};

/// The longest one refresh of one virtual's sources may take (each command of it is
/// bounded by `COMMAND_TIMEOUT` too); past it, the refresh counts as failed.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// A finished refresh, sent back to the main loop.
#[derive(Debug)]
pub struct Refreshed {
    id: String,
    spec: RealSources,
    result: Result<Vec<Member>, SourceError>,
}

#[derive(Debug)]
struct Source {
    spec: RealSources,
    family: Family,
    interval: Duration,
    /// The last set a refresh returned; `None` until one succeeded.
    last_good: Option<Vec<Member>>,
    /// In a failure streak (warned once).
    failing: bool,
    in_flight: bool,
    next: Instant,
}

/// The sources of the running configuration and their last good sets, by virtual id.
pub struct Dynamic {
    sources: HashMap<String, Source>,
    nodes: BTreeMap<String, IpAddr>,
    tx: mpsc::Sender<Refreshed>,
}

/// Select `spec`'s servers on a blocking thread, bounded by [`REFRESH_TIMEOUT`].
async fn evaluate(
    spec: RealSources,
    nodes: BTreeMap<String, IpAddr>,
    family: Family,
) -> Result<Vec<Member>, SourceError> {
    let task = tokio::task::spawn_blocking(move || {
        realsource::select(&spec, &nodes, family, &SystemQuery::default())
    });
    match tokio::time::timeout(REFRESH_TIMEOUT, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(SourceError::RefreshFailed(e)),
        Err(_) => Err(SourceError::RefreshTimeout(REFRESH_TIMEOUT)),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn listing(members: &[Member]) -> String {
    if members.is_empty() {
        return "none".to_owned();
    }
    members
        .iter()
        .map(|m| {
            if m.host == m.address.to_string() {
                format!("{} (weight {})", m.address, m.weight)
            } else {
                format!("{}={} (weight {})", m.host, m.address, m.weight)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Dynamic {
    pub fn new() -> (Dynamic, mpsc::Receiver<Refreshed>) {
        let (tx, rx) = mpsc::channel(64);
        (
            Dynamic {
                sources: HashMap::new(),
                nodes: BTreeMap::new(),
                tx,
            },
            rx,
        )
    }

    /// Whether the configuration has any sources.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Take the sources of `config` (at start and on every reload). Sources that are new
    /// or changed are selected now (bounded); unchanged ones keep their set and schedule.
    pub async fn configure(&mut self, config: &Config) {
        self.nodes = config.globals.node_addresses.clone();
        let mut old = std::mem::take(&mut self.sources);
        let mut fresh = Vec::new();
        let now = Instant::now();
        for v in &config.virtuals {
            let Some(spec) = &v.real_sources else {
                continue;
            };
            let id = v.id();
            let interval = Duration::from_secs(u64::from(v.checkinterval.max(1)));
            let source = match old.remove(&id) {
                Some(mut s) if s.spec == *spec && s.family == v.family => {
                    s.interval = interval;
                    s
                }
                previous => {
                    fresh.push(id.clone());
                    // Changed sources start from the virtual's last good set: if they
                    // fail right away, that set stays.
                    let last_good = previous
                        .filter(|p| p.family == v.family)
                        .and_then(|p| p.last_good);
                    Source {
                        spec: spec.clone(),
                        family: v.family,
                        interval,
                        last_good,
                        failing: false,
                        in_flight: false,
                        next: now + interval,
                    }
                }
            };
            self.sources.insert(id, source);
        }
        let jobs = fresh.into_iter().map(|id| {
            let s = &self.sources[&id];
            let job = evaluate(s.spec.clone(), self.nodes.clone(), s.family);
            async move { (id, job.await) }
        });
        for (id, result) in futures::future::join_all(jobs).await {
            self.record(&id, result);
        }
    }

    /// Start the refreshes that are due; each reports through the channel.
    pub fn start_due(&mut self) {
        let now = Instant::now();
        for (id, s) in &mut self.sources {
            if s.in_flight || now < s.next {
                continue;
            }
            s.in_flight = true;
            let (id, spec, nodes, family, tx) = (
                id.clone(),
                s.spec.clone(),
                self.nodes.clone(),
                s.family,
                self.tx.clone(),
            );
            tokio::spawn(async move {
                let result = evaluate(spec.clone(), nodes, family).await;
                let _ = tx.send(Refreshed { id, spec, result }).await;
            });
        }
    }

    /// A refresh finished: returns whether a set changed (the director needs the new
    /// configuration). A result for sources a reload replaced is dropped.
    pub fn on_refreshed(&mut self, r: Refreshed) -> bool {
        match self.sources.get_mut(&r.id) {
            Some(s) if s.spec == r.spec => {
                s.in_flight = false;
                s.next = Instant::now() + s.interval;
            }
            _ => return false,
        }
        self.record(&r.id, r.result)
    }

    fn record(&mut self, id: &str, result: Result<Vec<Member>, SourceError>) -> bool {
        let Some(s) = self.sources.get_mut(id) else {
            return false;
        };
        match result {
            Ok(members) => {
                if s.failing {
                    s.failing = false;
                    tracing::info!(
                        "Real servers of {id}: the source works again ({} real server{})",
                        members.len(),
                        plural(members.len())
                    );
                }
                if s.last_good.as_ref() == Some(&members) {
                    return false;
                }
                tracing::info!(
                    "Real servers of {id} from its sources: {}",
                    listing(&members)
                );
                s.last_good = Some(members);
                true
            }
            Err(why) => {
                if !s.failing {
                    s.failing = true;
                    let kept = s.last_good.as_ref().map_or(0, Vec::len);
                    tracing::warn!(
                        "Warning: real servers of {id}: {why}; keeping the last good set \
                         ({kept} real server{})",
                        plural(kept)
                    );
                }
                false
            }
        }
    }

    /// The configuration the director runs on: `base` plus the last good sets.
    pub fn derive(&self, base: &Config) -> Config {
        if self.sources.is_empty() {
            return base.clone();
        }
        let members: HashMap<String, Vec<Member>> = self
            .sources
            .iter()
            .filter_map(|(id, s)| s.last_good.clone().map(|m| (id.clone(), m)))
            .collect();
        generate::with_members(base, &members)
    }
}
