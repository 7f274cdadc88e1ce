//! `checktype=N` (any number): stock ldirectord's "combined" check. It alternates a full
//! negotiate check with cheap TCP connects:
//!
//! - the first run is a negotiate;
//! - after each successful negotiate, the next N runs are TCP connects (`checktimeout`);
//! - a failed connect makes the next run a negotiate again;
//! - a failed negotiate is repeated on every run until it succeeds;
//! - N = 0 means a negotiate on every run.
//!
//! The sequence state lives in the checker (one per real), so a checker must not be shared
//! between reals with different identities; the registry builds one per [`CheckSpec`].
//! Reasons are those of whichever inner check ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::check::{BoxFuture, BuildError, Checker, Outcome};
use crate::connect;
use crate::spec::CheckSpec;

/// The combined checker for `spec` with `n` connects between negotiates.
pub fn build(
    spec: &CheckSpec,
    n: u32,
    negotiate: Arc<dyn Checker>,
) -> Result<Arc<dyn Checker>, BuildError> {
    Ok(Arc::new(Combined::new(
        n,
        negotiate,
        Arc::new(connect::connect_for(spec)),
    )))
}

/// Negotiate, then `n` connects after each successful negotiate.
#[derive(Debug)]
pub struct Combined {
    n: u32,
    negotiate: Arc<dyn Checker>,
    connect: Arc<dyn Checker>,
    /// Connect runs left before the next negotiate; 0 = the next run negotiates.
    connects_left: AtomicU32,
}

impl Combined {
    /// A combined check from its two halves (any checkers; tests use fakes).
    pub fn new(n: u32, negotiate: Arc<dyn Checker>, connect: Arc<dyn Checker>) -> Combined {
        Combined {
            n,
            negotiate,
            connect,
            connects_left: AtomicU32::new(0),
        }
    }
}

impl Checker for Combined {
    fn check(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            // The scheduler never overlaps runs of one checker, so load-then-store is
            // enough; atomics just keep the checker `Sync` without a lock.
            let left = self.connects_left.load(Ordering::Acquire);
            if left == 0 {
                let out = self.negotiate.check().await;
                self.connects_left
                    .store(if out.is_up() { self.n } else { 0 }, Ordering::Release);
                out
            } else {
                let out = self.connect.check().await;
                self.connects_left
                    .store(if out.is_up() { left - 1 } else { 0 }, Ordering::Release);
                out
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// A fake check that answers from a script and records that it ran.
    #[derive(Debug)]
    struct Scripted {
        name: &'static str,
        answers: Mutex<VecDeque<bool>>,
        log: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Checker for Scripted {
        fn check(&self) -> BoxFuture<'_, Outcome> {
            Box::pin(async move {
                self.log.lock().unwrap().push(self.name);
                let up = self.answers.lock().unwrap().pop_front().unwrap_or(true);
                if up {
                    Outcome::up(self.name, Duration::ZERO)
                } else {
                    Outcome::down(self.name, Duration::ZERO)
                }
            })
        }
    }

    /// Run `rounds` checks of a combined check with N = `n`, the negotiate answering
    /// `neg` and the connect answering `con` in turn (then up); returns the kinds run
    /// and the results.
    async fn run(
        n: u32,
        neg: &[bool],
        con: &[bool],
        rounds: usize,
    ) -> (Vec<&'static str>, Vec<bool>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let negotiate = Arc::new(Scripted {
            name: "N",
            answers: Mutex::new(neg.iter().copied().collect()),
            log: log.clone(),
        });
        let connect = Arc::new(Scripted {
            name: "C",
            answers: Mutex::new(con.iter().copied().collect()),
            log: log.clone(),
        });
        let c = Combined::new(n, negotiate, connect);
        let mut ups = Vec::new();
        for _ in 0..rounds {
            let out = c.check().await;
            ups.push(out.is_up());
        }
        let kinds = log.lock().unwrap().clone();
        (kinds, ups)
    }

    #[tokio::test]
    async fn healthy_runs_one_negotiate_then_n_connects() {
        let (kinds, ups) = run(3, &[], &[], 9).await;
        assert_eq!(kinds, ["N", "C", "C", "C", "N", "C", "C", "C", "N"]);
        assert!(ups.iter().all(|&u| u));
    }

    #[tokio::test]
    async fn zero_means_negotiate_every_run() {
        let (kinds, _) = run(0, &[], &[], 4).await;
        assert_eq!(kinds, ["N", "N", "N", "N"]);
    }

    #[tokio::test]
    async fn failed_negotiate_repeats_until_it_succeeds() {
        let (kinds, ups) = run(2, &[false, false, true], &[], 6).await;
        assert_eq!(kinds, ["N", "N", "N", "C", "C", "N"]);
        assert_eq!(ups, [false, false, true, true, true, true]);
    }

    #[tokio::test]
    async fn failed_connect_forces_a_negotiate_next() {
        // N=3: negotiate ok, connect ok, connect FAILS, then negotiate, then 3 connects.
        let (kinds, ups) = run(3, &[], &[true, false], 7).await;
        assert_eq!(kinds, ["N", "C", "C", "N", "C", "C", "C"]);
        assert_eq!(ups, [true, true, false, true, true, true, true]);
    }

    #[tokio::test]
    async fn reason_is_the_inner_checks() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let neg = Arc::new(Scripted {
            name: "N",
            answers: Mutex::new([false].into()),
            log: log.clone(),
        });
        let con = Arc::new(Scripted {
            name: "C",
            answers: Mutex::new(VecDeque::new()),
            log,
        });
        let c = Combined::new(1, neg, con);
        let out = c.check().await;
        assert!(!out.is_up());
        assert_eq!(out.reason, "N");
    }
}
