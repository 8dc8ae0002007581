//! Looking into a supervisor from outside, and restarting one child on
//! request: what an operator's control tool needs (the daemon's control
//! socket is built on these two asks).
//!
//! ```
//! use std::time::Duration;
//! use proc_daemon_actors::prelude::*;
//! use proc_daemon_actors::supervision::Supervisor;
//!
//! struct Worker;
//! impl Actor for Worker {}
//!
//! let executor = Executor::builder().worker_threads(1).build()?;
//! let root = Supervisor::builder().spawn(&executor);
//! executor
//!     .spawn(async move {
//!         let worker = root.child("worker", || Worker).spawn().await?;
//!         root.restart_child("worker").await??;
//!         let children = root.children().await?;
//!         assert_eq!(children[0].name, "worker");
//!         assert_eq!(children[0].restarts, 1);
//!         // A restart keeps the child's identity.
//!         assert_eq!(children[0].id, worker.id());
//!         root.stop();
//!         root.wait_for_stop().await;
//!         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//!     })
//!     .join()??;
//! # executor.shutdown(Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
//!
//! # A restart on request
//!
//! [`ActorRef::<Supervisor>::restart_child`] ends the child's running
//! incarnation the way a strategy restart does (graceful, then an abort at
//! its shutdown timeout), keeps its mailbox, and starts a new incarnation
//! at once. It restarts only that child, whatever the strategy: the
//! operator asked for one. It counts against the supervisor's restart
//! intensity like any restart, but one that would exceed the intensity is
//! refused rather than made: an operator's request never makes a
//! supervisor give up. A child stopped for good (its policy did not
//! restart it, or it stopped itself) cannot be restarted: its mailbox is
//! closed.

use std::any::Any;
use std::time::Duration;

use super::{Child, Supervisor, TypedRunner};
use crate::actor::{Actor, ActorId};
use crate::actor_ref::ActorRef;
use crate::cell::ActorState;
use crate::context::Context;
use crate::error::AskError;
use crate::message::Handler;

/// One child of a supervisor, as [`ActorRef::<Supervisor>::children`]
/// saw it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChildSnapshot {
    /// Its name under the supervisor.
    pub name: String,
    /// Its identity, the same across restarts.
    pub id: ActorId,
    /// Where it is in its life.
    pub state: ActorState,
    /// Restarts so far: by its policy, by its supervisor's strategy, or on
    /// request.
    pub restarts: u64,
    /// How long its current incarnation has run; `None` when none runs
    /// (stopped for good, or waiting for a delayed restart).
    pub uptime: Option<Duration>,
    /// Messages waiting in its mailbox.
    pub mailbox_depth: usize,
    /// The child itself, when it is a supervisor: its own children can be
    /// looked at the same way.
    pub supervisor: Option<ActorRef<Supervisor>>,
}

/// Why [`ActorRef::<Supervisor>::restart_child`] did not restart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestartRefused {
    /// No child has that name.
    #[error("no child is named `{name}`; the children are: {}", known.join(", "))]
    NoSuchChild {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// More than one child has that name.
    #[error("{count} children are named `{name}`; a restart needs a unique name")]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// How many have it.
        count: usize,
    },
    /// The child stopped for good: its mailbox is closed.
    #[error("child `{name}` has stopped for good (its policy did not restart it, or it stopped itself); it cannot be restarted")]
    StoppedForGood {
        /// The child.
        name: String,
    },
    /// One more restart would exceed the supervisor's restart intensity.
    #[error("restarting `{name}` now would make more than {max_restarts} restarts within {window:?}, the supervisor's restart intensity; try again later")]
    IntensityExceeded {
        /// The child.
        name: String,
        /// The intensity's restarts.
        max_restarts: u32,
        /// The intensity's window.
        window: Duration,
    },
    /// The supervisor is giving up (its intensity was exceeded).
    #[error("the supervisor has given up and is stopping its children")]
    GivingUp,
}

/// Asks a supervisor for its children.
struct InspectChildren;

/// Asks a supervisor to restart one child.
struct RestartChild {
    name: String,
}

impl ActorRef<Supervisor> {
    /// The supervisor's children, in start order. See the module docs.
    ///
    /// # Errors
    ///
    /// [`AskError`] when the supervisor has stopped.
    pub async fn children(&self) -> Result<Vec<ChildSnapshot>, AskError> {
        self.ask(InspectChildren).await
    }

    /// Restarts the child called `name` now. See the module docs for what
    /// that means and when it is refused.
    ///
    /// # Errors
    ///
    /// [`AskError`] when the supervisor has stopped; inside it,
    /// [`RestartRefused`] when the restart was not made.
    pub async fn restart_child(
        &self,
        name: impl Into<String>,
    ) -> Result<Result<(), RestartRefused>, AskError> {
        self.ask(RestartChild { name: name.into() }).await
    }
}

impl Handler<InspectChildren> for Supervisor {
    type Reply = Vec<ChildSnapshot>;

    async fn handle(&mut self, _: InspectChildren, _ctx: &mut Context<Self>) -> Self::Reply {
        self.children.iter().map(snapshot).collect()
    }
}

fn snapshot(child: &Child) -> ChildSnapshot {
    ChildSnapshot {
        name: child.name.clone(),
        id: child.id,
        state: child.runner.state(),
        restarts: child.restarts,
        uptime: child
            .running
            .as_ref()
            .map(|_| child.started_at.elapsed()),
        mailbox_depth: child.runner.mailbox_depth(),
        supervisor: child.runner.as_supervisor(),
    }
}

impl Handler<RestartChild> for Supervisor {
    type Reply = Result<(), RestartRefused>;

    async fn handle(
        &mut self,
        RestartChild { name }: RestartChild,
        ctx: &mut Context<Self>,
    ) -> Self::Reply {
        if self.giving_up {
            return Err(RestartRefused::GivingUp);
        }
        let named: Vec<usize> = (0..self.children.len())
            .filter(|&i| self.children[i].name == name)
            .collect();
        let index = match named[..] {
            [index] => index,
            [] => {
                return Err(RestartRefused::NoSuchChild {
                    name,
                    known: self.children.iter().map(|c| c.name.clone()).collect(),
                });
            }
            _ => {
                return Err(RestartRefused::Ambiguous {
                    name,
                    count: named.len(),
                });
            }
        };
        if self.children[index].stopped_for_good {
            return Err(RestartRefused::StoppedForGood { name });
        }
        if !self.try_count_restart() {
            return Err(RestartRefused::IntensityExceeded {
                name,
                max_restarts: self.max_restarts,
                window: self.window,
            });
        }
        tracing::info!(child = %name, "restarting the child on request");
        self.end_incarnation(index).await;
        let child = &mut self.children[index];
        if let Some(timer) = child.restart_timer.take() {
            timer.abort();
        }
        child.restarts += 1;
        if let Some(metrics) = &child.metrics {
            metrics.count_restart();
        }
        child.runner.mark_restarting();
        Self::start_child(child, ctx);
        Ok(())
    }
}

/// What [`ChildSnapshot`] reads from a child of any actor type.
pub(super) trait Inspect {
    fn state(&self) -> ActorState;
    fn mailbox_depth(&self) -> usize;
    fn as_supervisor(&self) -> Option<ActorRef<Supervisor>>;
}

impl<A: Actor> Inspect for TypedRunner<A> {
    fn state(&self) -> ActorState {
        self.me.cell().state()
    }

    fn mailbox_depth(&self) -> usize {
        self.me.cell().mailbox.len()
    }

    fn as_supervisor(&self) -> Option<ActorRef<Supervisor>> {
        (&self.me as &dyn Any)
            .downcast_ref::<ActorRef<Supervisor>>()
            .cloned()
    }
}
