//! The engine in a task of its own, so that no engine call ever holds up the main loop
//! (issue 14): a hung `ipvsadm` or a kernel that is slow to answer must not keep check
//! results, control-socket requests or signals waiting. Checks run in the scheduler's
//! tasks either way; what a blocked loop stopped was the reading of their results, and
//! once the results channel was full, the checks themselves (a check task waits for room
//! before it schedules its next run).
//!
//! ```text
//! main loop ── Job (ops, dump, sync, flush) ──▶ worker task ── owns Box<dyn Engine>
//!     ▲                                              │ each call bounded (call_timeout)
//!     └──────────── Report (op result, skipped) ◀────┘
//! ```
//!
//! Jobs run in the order they were sent, so a dump reflects every operation sent before
//! it. When a call fails in a way that says the engine itself is in trouble (timed out,
//! I/O, unavailable), the rest of that batch is not attempted: it was computed from a
//! table that can no longer be trusted, and the resync that the failure triggers computes
//! what is still missing from a fresh dump.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::run::change_sync;
use crate::engine::{Engine, EngineError, Op, SyncDaemon, Table};

/// What the worker tells the main loop.
#[derive(Debug)]
pub enum Report {
    /// One operation was tried.
    Applied(Op, Result<(), EngineError>),
    /// These operations of a batch were not tried after the engine failed.
    Skipped(usize),
}

enum Job {
    Apply(Vec<Op>),
    Dump(oneshot::Sender<Result<Table, EngineError>>),
    /// Move from one sync daemon to another; answers the one that runs afterwards.
    Sync {
        old: Option<SyncDaemon>,
        new: Option<SyncDaemon>,
        reply: oneshot::Sender<Option<SyncDaemon>>,
    },
    /// Answered once every job sent before it is done.
    Flush(oneshot::Sender<()>),
}

/// The main loop's handle on the engine task. Dropping it ends the task once its queue
/// is done.
#[derive(Debug)]
pub struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    name: &'static str,
}

impl Worker {
    /// Spawns the task; returns the handle and the receiver of its reports. Each call
    /// (an operation, or a whole dump) is bounded by [`Engine::call_timeout`]; the ipvsadm
    /// engine also kills a program run that overstays its own bound.
    pub fn spawn(engine: Box<dyn Engine>) -> (Worker, mpsc::UnboundedReceiver<Report>) {
        let bound = engine.call_timeout();
        Self::spawn_with(engine, bound)
    }

    /// [`Worker::spawn`] with another bound on a call (tests).
    pub fn spawn_with(
        engine: Box<dyn Engine>,
        call_timeout: Duration,
    ) -> (Worker, mpsc::UnboundedReceiver<Report>) {
        let (jobs, queue) = mpsc::unbounded_channel();
        let (reports, received) = mpsc::unbounded_channel();
        let name = engine.name();
        tokio::spawn(work(engine, queue, reports, call_timeout));
        (Worker { jobs, name }, received)
    }

    /// The engine's name, for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Queues operations; each one's result comes back as a [`Report`].
    pub fn apply(&self, ops: Vec<Op>) {
        if !ops.is_empty() {
            let _ = self.jobs.send(Job::Apply(ops));
        }
    }

    /// Queues a dump; the receiver gets it once the jobs before it are done (an error
    /// when the task is gone).
    pub fn request_dump(&self) -> oneshot::Receiver<Result<Table, EngineError>> {
        let (reply, rx) = oneshot::channel();
        let _ = self.jobs.send(Job::Dump(reply));
        rx
    }

    /// A dump, waiting at most `wait` for it (the jobs queued before it included).
    pub async fn dump_within(&self, wait: Duration) -> Result<Table, EngineError> {
        match tokio::time::timeout(wait, self.request_dump()).await {
            Ok(Ok(dumped)) => dumped,
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(timed_out(&format!(
                "no table dump within {}s (the engine is busy or hung)",
                wait.as_secs()
            ))),
        }
    }

    /// Stops `old` (if any) and starts `new` (if any), falling back to `old` when `new`
    /// cannot start; returns the one that runs. Logs as it goes.
    pub async fn change_sync(
        &self,
        old: Option<SyncDaemon>,
        new: Option<SyncDaemon>,
    ) -> Option<SyncDaemon> {
        let (reply, rx) = oneshot::channel();
        let fallback = old.clone();
        if self.jobs.send(Job::Sync { old, new, reply }).is_err() {
            return fallback;
        }
        rx.await.unwrap_or(fallback)
    }

    /// Waits up to `wait` for every job sent so far; false if that took longer.
    pub async fn flush(&self, wait: Duration) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.jobs.send(Job::Flush(reply)).is_err() {
            return true;
        }
        matches!(tokio::time::timeout(wait, rx).await, Ok(Ok(())))
    }
}

fn timed_out(what: &str) -> EngineError {
    EngineError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

fn gone() -> EngineError {
    EngineError::Io(std::io::Error::other("the engine task has ended"))
}

/// An error after which the engine's state is unknown (as opposed to one refusal).
fn engine_in_trouble(error: &EngineError) -> bool {
    matches!(error, EngineError::Io(_) | EngineError::Unavailable(_))
}

async fn work(
    mut engine: Box<dyn Engine>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    reports: mpsc::UnboundedSender<Report>,
    call_timeout: Duration,
) {
    let bound = |what: String| {
        timed_out(&format!(
            "{what}: no answer within {}s",
            call_timeout.as_secs_f64()
        ))
    };
    while let Some(job) = queue.recv().await {
        match job {
            Job::Apply(ops) => {
                let total = ops.len();
                for (done, op) in ops.into_iter().enumerate() {
                    let result = tokio::time::timeout(call_timeout, engine.apply(&op))
                        .await
                        .unwrap_or_else(|_| Err(bound(op.to_string())));
                    let trouble = result.as_ref().is_err_and(engine_in_trouble);
                    let _ = reports.send(Report::Applied(op, result));
                    if trouble && done + 1 < total {
                        let _ = reports.send(Report::Skipped(total - done - 1));
                        break;
                    }
                }
            }
            Job::Dump(reply) => {
                let dumped = tokio::time::timeout(call_timeout, engine.dump())
                    .await
                    .unwrap_or_else(|_| Err(bound("dump the table".into())));
                let _ = reply.send(dumped);
            }
            Job::Sync { old, new, reply } => {
                let _ = reply.send(change_sync(engine.as_mut(), old, new).await);
            }
            Job::Flush(reply) => {
                let _ = reply.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::netlink::fake::{FakeKernel, Fault};
    use crate::engine::netlink::{NetlinkEngine, NetlinkOptions};
    use crate::engine::{IpProto, ServiceKey, ServiceSpec};

    fn service(port: u16) -> Op {
        Op::AddService(ServiceSpec::new(
            ServiceKey::Inet {
                proto: IpProto::Tcp,
                ip: "127.0.0.1".parse().unwrap(),
                port,
            },
            "wrr",
        ))
    }

    /// After an I/O failure the rest of the batch is skipped (and reported so), the
    /// refusals of a healthy engine are not: the batch goes on.
    #[tokio::test]
    async fn a_broken_engine_skips_the_rest_of_its_batch() {
        let kernel = FakeKernel::new();
        let engine = NetlinkEngine::with_transport(kernel.clone(), NetlinkOptions::default())
            .await
            .unwrap();
        let (worker, mut reports) = Worker::spawn(Box::new(engine));
        kernel.inject([Fault::Closed]);
        worker.apply(vec![service(1), service(2), service(3)]);
        assert!(worker.flush(Duration::from_secs(5)).await);
        let first = reports.recv().await.unwrap();
        assert!(
            matches!(first, Report::Applied(_, Err(EngineError::Io(_)))),
            "{first:?}"
        );
        assert!(matches!(reports.recv().await, Some(Report::Skipped(2))));
        assert_eq!(kernel.counts(), (0, 0));
        // A refusal (EEXIST) is one op's problem: the next op still runs.
        worker.apply(vec![service(1), service(1), service(2)]);
        assert!(worker.flush(Duration::from_secs(5)).await);
        let results: Vec<bool> = std::iter::from_fn(|| reports.try_recv().ok())
            .map(|r| matches!(r, Report::Applied(_, Ok(()))))
            .collect();
        assert_eq!(results, [true, false, true]);
        assert_eq!(kernel.counts(), (2, 0));
    }
}
