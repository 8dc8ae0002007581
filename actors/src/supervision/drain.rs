//! The staged shutdown of a supervisor's children: [`Drain`].
//!
//! `pub` for the daemon crate, whose root actor drains the tree through
//! [`support`](crate::support); it is not part of the actor API. An
//! application stops a supervisor with `ActorRef::stop`.

use std::time::Instant;

use super::{StopTimer, Supervisor};
use crate::actor_ref::Recipient;
use crate::context::Context;
use crate::message::Handler;

/// Stops every child for good, in reverse start order, against a deadline:
/// the staged shutdown of a daemon. Reply: a [`DrainReport`].
///
/// Each child is asked to stop and gets its own shutdown timeout, capped
/// at `force_at`. A child that overruns its timeout is not aborted at once
/// (as [`ActorRef::stop`] on the supervisor would): the drain moves on to
/// the next child and leaves it running until `force_at`, when every child
/// still running is aborted. No child is restarted once a drain starts, and
/// the supervisor stops itself when the drain is done.
///
/// Send it with `try_tell` and a `report_to` when its place in the mailbox
/// matters: everything queued after it (exit reports of children that end
/// because of the shutdown) is handled as part of the drain, never as a
/// reason to restart. An `ask` enqueues only when first polled.
#[derive(Debug)]
pub struct Drain {
    /// When children still running are aborted.
    pub force_at: Instant,
    /// Also sent the report, for callers that `try_tell` the drain.
    pub report_to: Option<Recipient<DrainReport>>,
}

/// What a [`Drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Children that stopped within their shutdown timeout, in the order
    /// they stopped.
    pub stopped: Vec<String>,
    /// Children that overran their timeout but stopped before `force_at`.
    pub late: Vec<String>,
    /// Children aborted at `force_at`.
    pub aborted: Vec<String>,
}

impl Handler<Drain> for Supervisor {
    type Reply = DrainReport;

    async fn handle(&mut self, drain: Drain, ctx: &mut Context<Self>) -> DrainReport {
        // From here on nothing restarts: exit reports are ignored.
        self.giving_up = true;
        let mut report = DrainReport::default();
        let mut overran = Vec::new();
        let mut timer = StopTimer::new();
        for index in (0..self.children.len()).rev() {
            let child = &mut self.children[index];
            if child.stopped_for_good {
                continue;
            }
            if let Some(mut running) = child.retire() {
                let deadline = (Instant::now() + child.shutdown_timeout).min(drain.force_at);
                if timer.wait(&mut running, deadline.into()).await.is_some() {
                    report.stopped.push(child.name.clone());
                } else {
                    tracing::warn!(child = %child.name, timeout = ?child.shutdown_timeout, "child overran its shutdown timeout; it is aborted at the force deadline unless it stops first");
                    overran.push((child.name.clone(), running));
                }
            } else {
                report.stopped.push(child.name.clone());
            }
            child.runner.close_for_good();
        }
        for (name, mut running) in overran {
            if timer
                .wait(&mut running, drain.force_at.into())
                .await
                .is_some()
            {
                report.late.push(name);
            } else {
                tracing::error!(child = %name, "force deadline reached; aborting the child");
                running.abort();
                report.aborted.push(name);
            }
        }
        ctx.stop();
        if let Some(to) = &drain.report_to {
            let _ = to.try_tell(report.clone());
        }
        report
    }
}

