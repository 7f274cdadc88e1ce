//! The IPVS schedulers the userspace engine offers, as pure functions over a snapshot of a
//! virtual service's real servers. They follow the kernel's algorithms (`ip_vs_rr.c`,
//! `ip_vs_wrr.c`, `ip_vs_lc.c`, …) so a table behaves the same whichever engine holds it:
//! the same weights give the same proportions, ties go to the first real in table order,
//! a real with weight 0 or over its upper threshold gets no new connections.
//!
//! No I/O and no clock here; the forwarder takes a lock, builds the [`Candidate`] slice and
//! asks [`Scheduler::pick`] for an index.

use std::net::IpAddr;

use crate::engine::{SchedFlag, SchedFlags};

/// The schedulers this engine implements, in the words `ipvsadm -s` uses.
pub const SUPPORTED: &[&str] = &["rr", "wrr", "lc", "wlc", "sh", "sed", "nq"];

/// What a scheduler needs to know about one real server at the moment of choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    /// Over its upper connection threshold (IPVS `IP_VS_DEST_F_OVERLOAD`).
    pub overloaded: bool,
}

impl Candidate {
    /// IPVS's `is_unavailable`: quiesced (weight 0) or overloaded reals take no new work.
    fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// `ip_vs_dest_conn_overhead`: an active connection costs 256 inactive ones.
    fn overhead(&self) -> u64 {
        (u64::from(self.active) << 8) + u64::from(self.inactive)
    }
}

/// Source hashing options (`ipvsadm -b sh-fallback,sh-port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShFlags {
    /// When the hashed real is unavailable, try the following buckets instead of refusing.
    pub fallback: bool,
    /// Hash the client's port too, not only its address.
    pub port: bool,
}

/// One virtual service's scheduler with the little state the round-robin kinds keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduler {
    /// Round robin: the real after the last one chosen, skipping unavailable ones.
    Rr { last: Option<usize> },
    /// Weighted round robin (interleaved, like the kernel): position and current weight.
    Wrr {
        position: Option<usize>,
        current: i64,
    },
    /// Least connections.
    Lc,
    /// Weighted least connections (the IPVS and ldirectord default).
    Wlc,
    /// Source hashing over a 256-bucket table filled by weight.
    Sh(ShFlags),
    /// Shortest expected delay: (active + 1) / weight.
    Sed,
    /// Never queue: an idle real if there is one, else as `sed`.
    Nq,
}

/// Why a scheduler name cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "scheduler {name} is not supported by the userspace engine; supported: {}",
    SUPPORTED.join(", ")
)]
pub struct UnsupportedScheduler {
    pub name: String,
}

impl Scheduler {
    /// The scheduler for `ipvsadm -s NAME -b FLAGS`. Flags of other schedulers are
    /// ignored, as the kernel ignores them.
    pub fn new(name: &str, flags: &SchedFlags) -> Result<Scheduler, UnsupportedScheduler> {
        Ok(match name {
            "rr" => Scheduler::Rr { last: None },
            "wrr" => Scheduler::Wrr {
                position: None,
                current: 0,
            },
            "lc" => Scheduler::Lc,
            "wlc" => Scheduler::Wlc,
            "sh" => Scheduler::Sh(ShFlags {
                fallback: flags.contains(&SchedFlag::ShFallback),
                port: flags.contains(&SchedFlag::ShPort),
            }),
            "sed" => Scheduler::Sed,
            "nq" => Scheduler::Nq,
            other => {
                return Err(UnsupportedScheduler {
                    name: other.to_owned(),
                });
            }
        })
    }

    /// The real servers changed (added, removed, reweighted): restart the round-robin
    /// cycles, as the kernel does in its `upd_dest`/`del_dest` hooks.
    pub fn reals_changed(&mut self) {
        match self {
            Scheduler::Rr { last } => *last = None,
            Scheduler::Wrr { position, current } => {
                *position = None;
                *current = 0;
            }
            _ => {}
        }
    }

    /// Choose the real for a new connection from `client`, or `None` when no real can take
    /// it (the kernel then drops the connection attempt).
    pub fn pick(&mut self, reals: &[Candidate], client: IpAddr, client_port: u16) -> Option<usize> {
        match self {
            Scheduler::Rr { last } => {
                let n = reals.len();
                let start = last.map_or(0, |l| l + 1);
                let chosen = (0..n)
                    .map(|i| (start + i) % n)
                    .find(|&i| reals[i].available())?;
                *last = Some(chosen);
                Some(chosen)
            }
            Scheduler::Wrr { position, current } => wrr(reals, position, current),
            Scheduler::Lc => least(reals, |a, b| a.overhead() < b.overhead()),
            Scheduler::Wlc => least(reals, |a, b| {
                // a.overhead / a.weight < b.overhead / b.weight without division.
                u128::from(a.overhead()) * u128::from(b.weight)
                    < u128::from(b.overhead()) * u128::from(a.weight)
            }),
            Scheduler::Sed => least(reals, sed_less),
            Scheduler::Nq => reals
                .iter()
                .position(|r| r.available() && r.active == 0)
                .or_else(|| least(reals, sed_less)),
            Scheduler::Sh(flags) => sh(reals, *flags, client, client_port),
        }
    }
}

/// `sed`: (a.active + 1) / a.weight < (b.active + 1) / b.weight.
fn sed_less(a: &Candidate, b: &Candidate) -> bool {
    (u128::from(a.active) + 1) * u128::from(b.weight)
        < (u128::from(b.active) + 1) * u128::from(a.weight)
}

/// The first available real that no later one beats (`less(later, best)` must be strict,
/// so ties stay with the earlier real as in the kernel's loops).
fn least(reals: &[Candidate], less: impl Fn(&Candidate, &Candidate) -> bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, r) in reals.iter().enumerate() {
        if !r.available() {
            continue;
        }
        match best {
            Some(b) if !less(r, &reals[b]) => {}
            _ => best = Some(i),
        }
    }
    best
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The kernel's interleaved weighted round robin: walk the list; each time it wraps, lower
/// the current weight by the weights' gcd (back to the maximum below 1); take the first
/// available real whose weight reaches the current weight. Weights 3:1 give A A A B.
fn wrr(reals: &[Candidate], position: &mut Option<usize>, current: &mut i64) -> Option<usize> {
    let n = reals.len();
    let max = reals.iter().map(|r| u64::from(r.weight)).max().unwrap_or(0);
    if max == 0 {
        return None;
    }
    let step = reals
        .iter()
        .map(|r| u64::from(r.weight))
        .filter(|&w| w > 0)
        .fold(0, gcd);
    // Every (position, current weight) pair once is enough to find a real if there is one.
    let rounds = n as u64 * (max / step + 1);
    let (max, step) = (max as i64, step as i64);
    let mut i = position.map_or(n - 1, |p| p.min(n - 1));
    for _ in 0..rounds {
        i = (i + 1) % n;
        if i == 0 {
            *current -= step;
            if *current <= 0 {
                *current = max;
            }
        }
        if reals[i].available() && i64::from(reals[i].weight) >= *current {
            *position = Some(i);
            return Some(i);
        }
    }
    None
}

/// Buckets in the source-hash table (the kernel's default `IP_VS_SH_TAB_BITS` = 8).
const SH_BUCKETS: usize = 256;

/// Source hashing: the client's address (and port with `sh-port`) picks one of 256
/// buckets; the buckets are dealt to the reals in table order, `weight` consecutive
/// buckets each (one for a weight-0 real, as in the kernel). An unavailable real refuses
/// the connection unless `sh-fallback` is set, which tries the following buckets.
fn sh(reals: &[Candidate], flags: ShFlags, client: IpAddr, client_port: u16) -> Option<usize> {
    if reals.is_empty() {
        return None;
    }
    let mut buckets = [0usize; SH_BUCKETS];
    let (mut real, mut dealt) = (0usize, 0u32);
    for bucket in buckets.iter_mut() {
        *bucket = real;
        dealt += 1;
        if dealt >= reals[real].weight {
            real = (real + 1) % reals.len();
            dealt = 0;
        }
    }
    let folded = match client {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => v6
            .segments()
            .chunks(2)
            .map(|w| (u32::from(w[0]) << 16) | u32::from(w[1]))
            .fold(0, |acc, w| acc ^ w),
    };
    let port = if flags.port {
        u32::from(client_port)
    } else {
        0
    };
    // Fibonacci hashing to 8 bits (the kernel's hash_32 with its golden-ratio constant).
    let hash = (port.wrapping_add(folded).wrapping_mul(0x61C8_8647) >> 24) as usize;
    let tries = if flags.fallback { SH_BUCKETS } else { 1 };
    (0..tries)
        .map(|offset| buckets[(hash + offset) % SH_BUCKETS])
        .find(|&i| reals[i].available())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn w(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .map(|&weight| Candidate {
                weight,
                active: 0,
                inactive: 0,
                overloaded: false,
            })
            .collect()
    }

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn picks(s: &mut Scheduler, reals: &[Candidate], n: usize) -> Vec<Option<usize>> {
        (0..n).map(|_| s.pick(reals, CLIENT, 1)).collect()
    }

    #[test]
    fn rr_cycles_and_skips_quiesced() {
        let mut s = Scheduler::new("rr", &SchedFlags::default()).unwrap();
        let reals = w(&[1, 0, 5]);
        assert_eq!(
            picks(&mut s, &reals, 4),
            [Some(0), Some(2), Some(0), Some(2)]
        );
        assert_eq!(s.pick(&w(&[0, 0]), CLIENT, 1), None);
    }

    #[test]
    fn wrr_interleaves_like_the_kernel() {
        let mut s = Scheduler::new("wrr", &SchedFlags::default()).unwrap();
        let got = picks(&mut s, &w(&[3, 1]), 8);
        let want = [0, 0, 0, 1, 0, 0, 0, 1].map(Some);
        assert_eq!(got, want);
        let mut s = Scheduler::new("wrr", &SchedFlags::default()).unwrap();
        // 4:2 has gcd 2: A A B A A B … just like 2:1.
        let got = picks(&mut s, &w(&[4, 2]), 6);
        assert_eq!(got, [0, 0, 1, 0, 0, 1].map(Some));
        assert_eq!(s.pick(&w(&[0, 0]), CLIENT, 1), None);
    }

    #[test]
    fn least_connection_kinds_break_ties_by_table_order() {
        let mut reals = w(&[1, 3]);
        reals[0].active = 1;
        reals[1].active = 2;
        assert_eq!(Scheduler::Lc.pick(&reals, CLIENT, 1), Some(0));
        // wlc: 256/1 vs 512/3 → the second.
        assert_eq!(Scheduler::Wlc.pick(&reals, CLIENT, 1), Some(1));
        // sed: 2/1 vs 3/3 → the second.
        assert_eq!(Scheduler::Sed.pick(&reals, CLIENT, 1), Some(1));
        reals[1].active = 5; // sed: 2/1 vs 6/3 → tie, the first.
        assert_eq!(Scheduler::Sed.pick(&reals, CLIENT, 1), Some(0));
        let idle = w(&[1, 1, 1]);
        assert_eq!(Scheduler::Lc.pick(&idle, CLIENT, 1), Some(0));
    }

    #[test]
    fn nq_prefers_an_idle_real() {
        let mut reals = w(&[10, 1]);
        reals[0].active = 1;
        assert_eq!(Scheduler::Nq.pick(&reals, CLIENT, 1), Some(1));
        reals[1].active = 1; // sed then: 2/10 vs 2/1
        assert_eq!(Scheduler::Nq.pick(&reals, CLIENT, 1), Some(0));
    }

    #[test]
    fn overloaded_and_quiesced_reals_are_skipped() {
        let mut reals = w(&[1, 1, 0]);
        reals[0].overloaded = true;
        for name in SUPPORTED.iter().filter(|n| **n != "sh") {
            let mut s = Scheduler::new(name, &SchedFlags::default()).unwrap();
            assert_eq!(s.pick(&reals, CLIENT, 1), Some(1), "{name}");
        }
    }

    #[test]
    fn sh_is_stable_per_source_and_spreads_sources() {
        let reals = w(&[1, 1]);
        let mut s = Scheduler::new("sh", &SchedFlags::default()).unwrap();
        let mut seen = [0; 2];
        for last in 1..=64u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, last));
            let first = s.pick(&reals, ip, 1000).unwrap();
            assert_eq!(s.pick(&reals, ip, 2000), Some(first));
            seen[first] += 1;
        }
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }

    #[test]
    fn sh_refuses_a_quiesced_bucket_unless_fallback() {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
        let both = w(&[1, 1]);
        let hashed = Scheduler::new("sh", &SchedFlags::default())
            .unwrap()
            .pick(&both, ip, 1)
            .unwrap();
        let mut one_down = both.clone();
        one_down[hashed].weight = 0;
        assert_eq!(
            Scheduler::new("sh", &SchedFlags::default())
                .unwrap()
                .pick(&one_down, ip, 1),
            None
        );
        let flags = SchedFlags::parse("sh-fallback");
        let mut s = Scheduler::new("sh", &flags).unwrap();
        assert_eq!(s.pick(&one_down, ip, 1), Some(1 - hashed));
    }

    #[test]
    fn unknown_schedulers_name_the_supported_ones() {
        let e = Scheduler::new("lblc", &SchedFlags::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "scheduler lblc is not supported by the userspace engine; supported: \
             rr, wrr, lc, wlc, sh, sed, nq"
        );
    }
}
