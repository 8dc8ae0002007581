//! Subsystems: the reference's `Subsystem` trait and closures, run as
//! supervised actors.
//!
//! ```no_run
//! use proc_daemon::{Config, Daemon, RestartPolicy, Result, ShutdownHandle, Subsystem};
//! use std::future::Future;
//! use std::pin::Pin;
//!
//! struct Listener;
//!
//! impl Subsystem for Listener {
//!     fn run(&self, mut shutdown: ShutdownHandle) -> Pin<Box<dyn Future<Output = Result<()>> + Send>> {
//!         Box::pin(async move {
//!             shutdown.cancelled().await;
//!             Ok(())
//!         })
//!     }
//!     fn name(&self) -> &str {
//!         "listener"
//!     }
//!     fn restart_policy(&self) -> RestartPolicy {
//!         RestartPolicy::Always
//!     }
//! }
//!
//! # async fn demo() -> Result<()> {
//! Daemon::builder(Config::new()?).with_subsystem(Listener).run().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # One mechanism
//!
//! A subsystem is not a second kind of task next to actors. Each one is
//! wrapped in a [`SubsystemActor`], an ordinary actor supervised by the
//! daemon's root supervisor, so restart policies, restart intensity, health
//! checks, ordered shutdown and [`SubsystemEvent`]s apply to it exactly as
//! to any actor. Every incarnation:
//!
//! 1. gets a fresh [`ShutdownHandle`], cancelled when the daemon shuts down
//!    or when the supervisor ends this incarnation;
//! 2. runs `run(handle)` as a task on the actor's worker;
//! 3. ends when that future does: `Ok(())` is a clean completion
//!    (restarted only under [`RestartPolicy::Always`]), `Err` is a failure,
//!    a panic is a failure with the panic's message;
//! 4. when it is asked to stop, cancels its handle and waits for `run` to
//!    return, within the child's shutdown timeout; past it, the supervisor
//!    aborts the actor, and the `run` task with it.
//!
//! A subsystem that returns is not the end of the daemon: a daemon runs
//! until it is asked to stop, or its tree fails.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use proc_daemon_actors::cancel::CancelToken;
use proc_daemon_actors::executor::JoinHandle;
use proc_daemon_actors::prelude::*;
use proc_daemon_actors::support::{CatchUnwind, EventBus};

use crate::shutdown::{DaemonShutdown, ShutdownHandle};
use crate::{RestartPolicy, Result};

pub use proc_daemon_actors::events::{ChildEvent as SubsystemEvent, ChildState as SubsystemState};

/// The future a subsystem's `run` returns.
pub type SubsystemFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// How many subsystem events the daemon's ring keeps for
/// [`SubsystemManager::try_next_event`] polling before it counts drops.
pub const EVENT_RING_CAPACITY: usize = 1024;

/// A long-running part of the daemon, as in the API reference.
///
/// `run` is called once per incarnation, so a restart runs it again on the
/// same value (take `&self` state through `Arc`s, or rebuild it in `run`).
pub trait Subsystem: Send + Sync + 'static {
    /// Runs the subsystem until `shutdown` is cancelled (or its work is
    /// done). `Err` and panics count as failures for the restart policy.
    /// (The return type is [`SubsystemFuture`], spelled out in the API
    /// reference as `Pin<Box<dyn Future<Output = Result<()>> + Send>>`;
    /// either spelling implements it.)
    fn run(&self, shutdown: ShutdownHandle) -> SubsystemFuture;

    /// The name, unique among the daemon's subsystems; used in logs and
    /// events.
    fn name(&self) -> &str;

    /// What the supervisor does when `run` ends (default
    /// [`RestartPolicy::OnFailure`]).
    fn restart_policy(&self) -> RestartPolicy {
        RestartPolicy::OnFailure
    }

    /// A health check, run every `monitoring.health_check_interval_ms`
    /// while `monitoring.health_checks` is on. Three failures in a row
    /// (a panic counts as one) end the incarnation as a failure, which the
    /// restart policy handles. Default: none.
    fn health_check(&self) -> Option<Box<dyn Fn() -> bool + Send + Sync>> {
        None
    }
}

/// A subsystem made of a name and a closure: what `with_task` and
/// `with_subsystem_fn` register.
pub(crate) struct FnSubsystem<F> {
    pub(crate) name: String,
    pub(crate) body: F,
    pub(crate) policy: RestartPolicy,
}

impl<F, Fut> Subsystem for FnSubsystem<F>
where
    F: Fn(ShutdownHandle) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    fn run(&self, shutdown: ShutdownHandle) -> SubsystemFuture {
        Box::pin((self.body)(shutdown))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn restart_policy(&self) -> RestartPolicy {
        self.policy.clone()
    }
}

/// The actor that runs one [`Subsystem`]; see the module docs.
pub(crate) struct SubsystemActor {
    subsystem: Arc<dyn Subsystem>,
    daemon: Arc<DaemonShutdown>,
    incarnation: Arc<CancelToken>,
    running: Option<AbortOnDrop>,
}

impl fmt::Debug for SubsystemActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubsystemActor")
            .field("name", &self.subsystem.name())
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl SubsystemActor {
    pub(crate) fn new(subsystem: Arc<dyn Subsystem>, daemon: Arc<DaemonShutdown>) -> Self {
        SubsystemActor {
            subsystem,
            daemon,
            incarnation: Arc::new(CancelToken::default()),
            running: None,
        }
    }
}

/// Sent by the `run` task to its actor when `run` has returned or panicked.
struct RunEnded(std::result::Result<Result<()>, String>);

impl Actor for SubsystemActor {
    async fn started(&mut self, ctx: &mut Context<Self>) -> std::result::Result<(), BoxError> {
        let handle = ShutdownHandle::for_incarnation(self.daemon.clone(), self.incarnation.clone());
        let body = CatchUnwind::new(self.subsystem.run(handle));
        let me = ctx.actor_ref().clone();
        let daemon = self.daemon.clone();
        let name = self.subsystem.name().to_owned();
        let cut = CutDuringShutdown {
            daemon: daemon.clone(),
            name: Some(name.clone()),
        };
        let task = async move {
            let mut cut = cut;
            let ended = body.await;
            cut.name = None;
            if daemon.is_shutting_down() {
                // The daemon's drain stops this actor anyway, in its turn,
                // and restarts nothing: a return because of the shutdown
                // needs no report to the actor. A failed cleanup is
                // recorded for the exit code instead.
                match ended {
                    Ok(Ok(())) => {
                        tracing::debug!(subsystem = %name, "subsystem finished for the shutdown")
                    }
                    Ok(Err(err)) => {
                        tracing::error!(subsystem = %name, %err, "subsystem failed while stopping");
                        daemon.record_failed_cleanup(&name, format!("failed: {err}"));
                    }
                    Err(panic) => {
                        tracing::error!(subsystem = %name, %panic, "subsystem panicked while stopping");
                        daemon.record_failed_cleanup(&name, format!("panicked: {panic}"));
                    }
                }
                return;
            }
            // The actor may be gone (aborted); then nobody is waiting.
            let _ = me.try_tell(RunEnded(ended));
        };
        // The actor is bookkeeping and lives on the daemon's control
        // worker; the body, which does the work, is placed round-robin.
        self.running = Some(AbortOnDrop(ctx.executor().spawn(task)));
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        self.incarnation.cancel();
        if let Some(AbortOnDrop(join)) = self.running.as_mut() {
            // Bounded by the child's shutdown timeout: past it the
            // supervisor aborts this actor, which drops `running`, which
            // aborts the task.
            let _ = join.await;
        }
        self.running = None;
    }
}

impl Handler<RunEnded> for SubsystemActor {
    type Reply = ();

    async fn handle(&mut self, RunEnded(ended): RunEnded, ctx: &mut Context<Self>) {
        let name = self.subsystem.name();
        match ended {
            Ok(Ok(())) => {
                tracing::info!(subsystem = %name, "subsystem finished");
                ctx.complete();
            }
            Ok(Err(err)) => {
                tracing::error!(subsystem = %name, %err, "subsystem failed");
                ctx.fail(err.into_shared());
            }
            Err(panic) => {
                tracing::error!(subsystem = %name, %panic, "subsystem panicked");
                ctx.fail(format!("panicked: {panic}"));
            }
        }
    }
}

/// Held by a subsystem's `run` task until `run` returns. Dropped before
/// that (the task was aborted) while the daemon shuts down, it records the
/// subsystem as cut off. (An abort outside a shutdown is a supervisor
/// ending one incarnation, which its own events report.)
struct CutDuringShutdown {
    daemon: Arc<DaemonShutdown>,
    /// `None` once `run` has returned.
    name: Option<String>,
}

impl Drop for CutDuringShutdown {
    fn drop(&mut self) {
        if let Some(name) = &self.name
            && self.daemon.is_shutting_down()
        {
            self.daemon.record_cut(name);
        }
    }
}

/// A task that is aborted when its owner is dropped: a subsystem's `run`
/// never outlives its actor.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The subsystem events of a daemon's supervision tree, as the API
/// reference polls them.
///
/// ```
/// use proc_daemon::subsystem::{SubsystemEvent, SubsystemManager};
///
/// let manager = SubsystemManager::new();
/// manager.enable_events();
/// // Poll events without blocking
/// if let Some(ev) = manager.try_next_event() {
///     match ev {
///         SubsystemEvent::StateChanged { id, name, state, at } => {
///             println!("[{:?}] {} ({id}) -> {:?}", at, name, state);
///         }
///     }
/// }
/// ```
///
/// A manager is a cheap handle to one event ring (a `crossbeam-queue`
/// `ArrayQueue` of [`EVENT_RING_CAPACITY`]
/// events that counts what it drops) plus subscriptions. A daemon has one,
/// [`Daemon::subsystems`](crate::Daemon::subsystems); hand a manager made
/// with [`new`](Self::new) to
/// [`DaemonBuilder::with_subsystem_manager`](crate::DaemonBuilder::with_subsystem_manager)
/// to have the daemon publish into it. The ring keeps nothing until
/// [`enable_events`](Self::enable_events), so an unpolled ring costs
/// nothing.
#[derive(Debug, Clone)]
pub struct SubsystemManager {
    bus: Arc<EventBus>,
}

impl Default for SubsystemManager {
    fn default() -> Self {
        SubsystemManager::new()
    }
}

impl SubsystemManager {
    /// A manager with its own, empty ring.
    pub fn new() -> Self {
        SubsystemManager {
            bus: Arc::new(EventBus::new(EVENT_RING_CAPACITY)),
        }
    }

    pub(crate) fn bus(&self) -> &Arc<EventBus> {
        &self.bus
    }

    /// Starts keeping events for [`try_next_event`](Self::try_next_event).
    pub fn enable_events(&self) {
        self.bus.enable();
    }

    /// Stops keeping events for polling; subscriptions still get theirs.
    pub fn disable_events(&self) {
        self.bus.disable();
    }

    /// The oldest event not yet taken, if any. Never blocks.
    pub fn try_next_event(&self) -> Option<SubsystemEvent> {
        self.bus.try_next_event()
    }

    /// Every event from now on, in a bounded mailbox: `recv().await`.
    pub fn subscribe(&self) -> proc_daemon_actors::mailbox::Receiver<SubsystemEvent> {
        self.bus.subscribe()
    }

    /// Events dropped so far because the ring or a subscriber was full.
    pub fn dropped_events(&self) -> u64 {
        self.bus.dropped()
    }
}
