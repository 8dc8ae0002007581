//! Supervision: restart policies, strategies, restart intensity and
//! ordered shutdown, with Erlang/OTP's meanings.
//!
//! ```
//! use std::time::Duration;
//! use proc_daemon_actors::prelude::*;
//! use proc_daemon_actors::supervision::{RestartPolicy, Strategy, Supervisor};
//!
//! struct Counter(u64);
//! impl Actor for Counter {}
//! struct Add(u64);
//! impl Handler<Add> for Counter {
//!     type Reply = u64;
//!     async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) -> u64 {
//!         self.0 += n;
//!         self.0
//!     }
//! }
//!
//! let executor = Executor::builder().worker_threads(1).build()?;
//! let root = Supervisor::builder().strategy(Strategy::OneForOne).spawn(&executor);
//! let total = executor
//!     .spawn(async move {
//!         // A child is a factory, so a restart builds a fresh actor; its
//!         // ActorRef stays the same.
//!         let counter = root
//!             .child("counter", || Counter(0))
//!             .restart(RestartPolicy::OnFailure)
//!             .spawn()
//!             .await?;
//!         counter.tell(Add(1)).await?;
//!         let total = counter.ask(Add(2)).await?;
//!         root.stop();
//!         root.wait_for_stop().await;
//!         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(total)
//!     })
//!     .join()??;
//! assert_eq!(total, 3);
//! # executor.shutdown(Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
//!
//! # Semantics
//!
//! - [`RestartPolicy::Never`] is OTP's *temporary*: never restarted.
//!   [`RestartPolicy::Always`] is *permanent*: restarted after a failure and
//!   after a clean end of its incarnation ([`Context::complete`]).
//!   [`RestartPolicy::OnFailure`] is *transient*: restarted after a panic, a
//!   failed start or [`Context::fail`]. [`RestartPolicy::ExponentialBackoff`]
//!   is transient with a growing delay, reset after a stable run.
//! - A child stopped for good ([`ActorRef::stop`], [`Context::stop`]) has
//!   closed its mailbox and is never restarted, whatever its policy.
//! - [`Strategy::OneForOne`] restarts the child that ended;
//!   [`Strategy::OneForAll`] ends every other child's incarnation too and
//!   restarts them all; [`Strategy::RestForOne`] does so for the children
//!   started after it. Children start in order and stop in reverse order.
//! - Restart intensity: more than `max_restarts` restarts within `window`
//!   make the supervisor give up: it stops its children in reverse order and
//!   fails ([`ExitReason::Failed`]), which its own supervisor sees as a
//!   child failure. Supervisors nest, so a restart storm escalates.
//! - Every child has a shutdown timeout: a graceful stop first, then its
//!   task is aborted.
//! - A restart keeps the child's mailbox, so its `ActorRef` stays valid and
//!   messages sent meanwhile reach the next incarnation in order. The
//!   message a panicking handler was handling is a dead letter.

use crate::lock::lock;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

// Restart bookkeeping (intensity windows, stable runs) reads tokio's clock,
// which is the system clock unless a test pauses it: then backoff, resets
// and intensity follow the paused time together.
use tokio::time::Instant as TokioInstant;

use crate::actor::{Actor, ActorId, ExitReason, message_error};
use crate::actor_ref::{ActorRef, Recipient};
use crate::cell::{ActorState, Adoption, Cell};
use crate::context::Context;
use crate::error::AskError;
use crate::events::bus::EventBus;
use crate::executor::{Executor, JoinHandle};
use crate::panic::panic_message;
use crate::mailbox::Capacity;
use crate::message::Handler;
use crate::metrics::{ActorMetrics, SupervisorMetrics};
use crate::spawn::{Inboxes, SpawnOptions, close_for_good, new_actor, run_incarnation};
use crate::system::SystemMsg;

pub(crate) mod drain;
mod health;
mod inspect;
pub use drain::DrainReport;
pub use health::HealthSchedule;
pub use inspect::{ChildSnapshot, RestartRefused};

/// When a child is restarted. See the module docs for the OTP meanings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// Temporary: never restarted.
    Never,
    /// Permanent: restarted after a failure and after a clean completion.
    Always,
    /// Transient: restarted after a failure only.
    OnFailure,
    /// Transient, with a delay that grows after each consecutive failure;
    /// see [`Backoff`], and build it with
    /// [`RestartPolicy::exponential_backoff`].
    ExponentialBackoff(Backoff),
}

impl RestartPolicy {
    /// [`RestartPolicy::ExponentialBackoff`], checked where it is built.
    ///
    /// ```
    /// use std::time::Duration;
    /// use proc_daemon_actors::supervision::RestartPolicy;
    ///
    /// let policy = RestartPolicy::exponential_backoff(
    ///     Duration::from_millis(100), // before the first restart
    ///     Duration::from_secs(30),    // the longest delay
    ///     2.0,                        // growth per consecutive failure
    ///     0.1,                        // ± 10% spread
    /// )?;
    /// assert!(RestartPolicy::exponential_backoff(Duration::ZERO, Duration::ZERO, 0.5, 0.0).is_err());
    /// # let _ = policy;
    /// # Ok::<(), proc_daemon_actors::supervision::InvalidBackoff>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidBackoff`] when `multiplier` is below 1.0 or not finite,
    /// `jitter` is outside 0.0..=1.0, or `initial_delay` exceeds
    /// `max_delay`.
    pub fn exponential_backoff(
        initial_delay: Duration,
        max_delay: Duration,
        multiplier: f64,
        jitter: f64,
    ) -> Result<RestartPolicy, InvalidBackoff> {
        Backoff::new(initial_delay, max_delay, multiplier, jitter)
            .map(RestartPolicy::ExponentialBackoff)
    }
}

/// The parameters of [`RestartPolicy::ExponentialBackoff`]. The delay
/// before restart *n* (counting consecutive failures from 0) is
/// `initial_delay × multiplier^n`, capped at `max_delay`, then spread by
/// ± `jitter` (a fraction of the delay). After
/// [`max_attempts`](Backoff::max_attempts) consecutive failures, if set,
/// the child is left stopped. The count resets once an incarnation has run
/// for [`ChildBuilder::backoff_reset_after`].
///
/// The fields are private so that every `Backoff` was checked by
/// [`Backoff::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: f64,
    max_attempts: Option<u32>,
}

/// Why [`Backoff::new`] refused its parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid exponential backoff: {reason}")]
pub struct InvalidBackoff {
    reason: String,
}

impl Backoff {
    /// A backoff with no limit on attempts. See
    /// [`RestartPolicy::exponential_backoff`] for the rules.
    ///
    /// # Errors
    ///
    /// [`InvalidBackoff`], naming the parameter and its value.
    pub fn new(
        initial_delay: Duration,
        max_delay: Duration,
        multiplier: f64,
        jitter: f64,
    ) -> Result<Backoff, InvalidBackoff> {
        let refuse = |reason: String| Err(InvalidBackoff { reason });
        if !multiplier.is_finite() || multiplier < 1.0 {
            return refuse(format!(
                "the multiplier must be a finite number of at least 1.0, got {multiplier}"
            ));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return refuse(format!(
                "the jitter must be a fraction from 0.0 to 1.0, got {jitter}"
            ));
        }
        if initial_delay > max_delay {
            return refuse(format!(
                "the initial delay ({initial_delay:?}) exceeds the longest delay ({max_delay:?})"
            ));
        }
        Ok(Backoff {
            initial_delay,
            max_delay,
            multiplier,
            jitter,
            max_attempts: None,
        })
    }

    /// Gives up after `attempts` consecutive failures: the child is then
    /// left stopped.
    pub fn max_attempts(mut self, attempts: u32) -> Backoff {
        self.max_attempts = Some(attempts);
        self
    }

    /// The delay before the first restart.
    pub fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The longest delay.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The growth factor per consecutive failure.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The spread, as a fraction of the delay.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The consecutive failures after which the child is left stopped.
    pub fn attempts_limit(&self) -> Option<u32> {
        self.max_attempts
    }
}

/// Which children a failure restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the child that ended.
    #[default]
    OneForOne,
    /// Every child.
    OneForAll,
    /// The child that ended and every child started after it.
    RestForOne,
}

/// The default restart intensity: more than 3 restarts in 5 seconds.
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
/// See [`DEFAULT_MAX_RESTARTS`].
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(5);
/// A child's default shutdown timeout.
pub const DEFAULT_CHILD_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an incarnation must run before its backoff count resets.
pub const DEFAULT_BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);

/// Configures a [`Supervisor`].
#[derive(Debug, Clone)]
pub struct SupervisorBuilder {
    strategy: Strategy,
    max_restarts: u32,
    window: Duration,
    events: Option<Arc<EventBus>>,
    escalate_to: Option<Recipient<Escalation>>,
    name: Option<Arc<str>>,
    giving_up_flag: Option<Arc<AtomicBool>>,
}

impl SupervisorBuilder {
    /// Sets `flag` the moment this supervisor exceeds its restart
    /// intensity, before it stops its children and escalates. Stopping
    /// the children can take their shutdown timeouts; a liveness probe or
    /// a watchdog reads the flag to know the tree is failing meanwhile.
    pub fn giving_up_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.giving_up_flag = Some(flag);
        self
    }

    /// The path this supervisor's children are recorded under in the
    /// runtime metrics ([`crate::metrics`]): a child `web` of a supervisor
    /// named `root` is `root/web`. A nested supervisor without a name uses
    /// the path its own supervisor recorded it under.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// The restart strategy (default [`Strategy::OneForOne`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Restart intensity: more than `max_restarts` restarts within `window`
    /// make the supervisor fail. Default: [`DEFAULT_MAX_RESTARTS`] in
    /// [`DEFAULT_RESTART_WINDOW`].
    pub fn intensity(mut self, max_restarts: u32, window: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.window = window;
        self
    }

    /// Publishes every state change of this supervisor's children on
    /// `bus` (give nested supervisors the same bus to see the whole tree).
    pub fn events(mut self, bus: Arc<EventBus>) -> Self {
        self.events = Some(bus);
        self
    }

    /// Tells `parent` when this supervisor gives up (its restart intensity
    /// is exceeded), with the reason. A nested supervisor escalates through
    /// its own supervisor without this; a root supervisor needs it, or its
    /// failure is only logged. The daemon's root actor uses it to turn a
    /// restart storm into a non-zero exit.
    pub fn escalate_to(mut self, parent: Recipient<Escalation>) -> Self {
        self.escalate_to = Some(parent);
        self
    }

    /// The supervisor actor, not yet running; use it as a child's factory
    /// output to nest supervisors.
    pub fn build(&self) -> Supervisor {
        Supervisor {
            strategy: self.strategy,
            max_restarts: self.max_restarts,
            window: self.window,
            children: Vec::new(),
            index: HashMap::new(),
            restarts: VecDeque::new(),
            giving_up: false,
            events: self.events.clone(),
            escalate_to: self.escalate_to.clone(),
            name: self.name.clone(),
            metrics: None,
            giving_up_flag: self.giving_up_flag.clone(),
        }
    }

    /// Starts the supervisor on `executor`, unsupervised (a root).
    pub fn spawn(&self, executor: &Executor) -> ActorRef<Supervisor> {
        spawn_supervisor(executor, self.build())
    }

    /// As [`spawn`](Self::spawn), on worker `worker`: next to the actor it
    /// escalates to, so that the messages between them stay on one core.
    pub fn spawn_on(
        &self,
        executor: &Executor,
        worker: usize,
    ) -> Result<ActorRef<Supervisor>, crate::executor::SpawnError> {
        crate::spawn::spawn_on(
            executor,
            worker,
            self.build(),
            SpawnOptions::default().capacity(Capacity::Unbounded),
        )
    }
}

/// Starts `supervisor` with the mailbox a supervisor needs: unbounded, so
/// that a child's exit is never held up by a full mailbox.
fn spawn_supervisor(executor: &Executor, supervisor: Supervisor) -> ActorRef<Supervisor> {
    crate::spawn::spawn_with(
        executor,
        supervisor,
        SpawnOptions::default().capacity(Capacity::Unbounded),
    )
}

/// An actor that starts, watches and restarts children. See the module
/// docs.
pub struct Supervisor {
    strategy: Strategy,
    max_restarts: u32,
    window: Duration,
    children: Vec<Child>,
    /// Each child's index in `children`, by identity: a child's exit,
    /// health failure or due restart finds it in O(1), not by scanning its
    /// siblings (children are only ever appended, so an index is stable).
    index: HashMap<ActorId, usize>,
    restarts: VecDeque<TokioInstant>,
    giving_up: bool,
    events: Option<Arc<EventBus>>,
    escalate_to: Option<Recipient<Escalation>>,
    /// The path its children's metrics are recorded under, if set by
    /// [`SupervisorBuilder::name`].
    name: Option<Arc<str>>,
    /// Its own metrics, once it records a child.
    metrics: Option<Arc<SupervisorMetrics>>,
    /// Set when it gives up ([`SupervisorBuilder::giving_up_flag`]).
    giving_up_flag: Option<Arc<AtomicBool>>,
}

/// A supervisor gave up: its restart intensity was exceeded, it stopped
/// its children and failed. Sent to the recipient given to
/// [`SupervisorBuilder::escalate_to`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The supervisor that gave up.
    pub supervisor: ActorId,
    /// Why, in words (which child, how many restarts in what window).
    pub error: String,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.strategy)
            .field("children", &self.children.len())
            .finish()
    }
}

impl Supervisor {
    /// A builder with the defaults.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder {
            strategy: Strategy::OneForOne,
            max_restarts: DEFAULT_MAX_RESTARTS,
            window: DEFAULT_RESTART_WINDOW,
            events: None,
            escalate_to: None,
            name: None,
            giving_up_flag: None,
        }
    }
}

/// One child, type-erased.
struct Child {
    name: String,
    id: ActorId,
    runner: Box<dyn ChildRunner>,
    policy: RestartPolicy,
    shutdown_timeout: Duration,
    backoff_reset_after: Duration,
    /// Bumped for every incarnation, so that a stale exit report is ignored.
    generation: u64,
    running: Option<JoinHandle<ExitReason>>,
    started_at: TokioInstant,
    consecutive_failures: u32,
    stopped_for_good: bool,
    health: Option<HealthCheck>,
    /// The running incarnation's health-check task.
    health_task: Option<JoinHandle<()>>,
    /// The timer of a delayed (backoff) restart, aborted if the child is
    /// stopped for good first, so no task outlives the supervisor.
    restart_timer: Option<JoinHandle<()>>,
    /// Its runtime metrics, when recording was on as it was added.
    metrics: Option<Arc<ActorMetrics>>,
    /// Restarts so far, for [`ActorRef::children`].
    restarts: u64,
}

impl Child {
    /// Marks the child stopped for good: no exit report of it counts any
    /// more, its health check and pending restart are cancelled, and a
    /// running incarnation is asked to stop. Returns that incarnation, for
    /// the caller to wait on.
    fn retire(&mut self) -> Option<JoinHandle<ExitReason>> {
        self.stopped_for_good = true;
        let generation = self.generation;
        self.generation += 1;
        if let Some(health) = self.health_task.take() {
            health.abort();
        }
        if let Some(timer) = self.restart_timer.take() {
            timer.abort();
        }
        let running = self.running.take()?;
        self.runner.request_stop(generation);
        Some(running)
    }
}

/// A child's health check: `check` runs on `schedule` while an
/// incarnation runs; `max_failures` failures in a row end the
/// incarnation as a failure.
struct HealthCheck {
    check: Arc<dyn Fn() -> bool + Send + Sync>,
    schedule: HealthSchedule,
    max_failures: u32,
}

/// The default interval between health checks (the reference's
/// `monitoring.health_check_interval_ms` default).
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// The default number of consecutive failed health checks that restart a
/// child.
pub const DEFAULT_HEALTH_CHECK_FAILURES: u32 = 3;

/// What the supervisor needs from a child of any actor type.
trait ChildRunner: inspect::Inspect + Send {
    /// Starts a new incarnation; when it ends, it reports [`ChildExited`]
    /// to `supervisor`, unless the supervisor ended it itself (through
    /// `end_incarnation` or `request_stop`) and so waits on its handle.
    fn start(
        &mut self,
        executor: &Executor,
        supervisor: ActorRef<Supervisor>,
        generation: u64,
    ) -> JoinHandle<ExitReason>;
    /// Asks incarnation `generation` to end, keeping the mailbox. (A
    /// request for an incarnation that has already ended is dropped.)
    fn end_incarnation(&self, generation: u64);
    /// Asks the actor, running incarnation `generation`, to stop for good
    /// (graceful).
    fn request_stop(&self, generation: u64);
    /// Closes the mailbox for good; what was queued becomes dead letters.
    fn close_for_good(&self);
    /// Marks the actor as waiting for its next incarnation.
    fn mark_restarting(&self);
    /// Adopts the actor: publishes its state changes on `events`' bus
    /// under its name, and records its runtime metrics as
    /// `(path, supervisor path)`; returns the metrics, if recorded.
    fn adopt(
        &self,
        events: Option<(Arc<str>, Arc<EventBus>)>,
        metrics: Option<(Arc<str>, Arc<str>)>,
    ) -> Option<Arc<ActorMetrics>>;
}

struct TypedRunner<A: Actor> {
    factory: Box<dyn FnMut() -> A + Send>,
    me: ActorRef<A>,
    slot: Arc<Mutex<InboxSlot<A>>>,
    /// The worker every incarnation runs on; round-robin if `None`.
    worker: Option<usize>,
}

/// The mailboxes, held here between incarnations and by the running
/// incarnation's task while it runs.
struct InboxSlot<A: Actor> {
    inboxes: Option<Inboxes<A>>,
    /// Set once the child is stopped for good: whoever holds the
    /// mailboxes then closes them instead of keeping them.
    closed: bool,
    /// The incarnation the supervisor has ended itself and waits on: its
    /// end needs no [`ChildExited`], which the supervisor would only
    /// discard as stale. On a daemon's way out this saves a message per
    /// child, each handled by the supervisor before it can stop.
    awaited: Option<u64>,
}

/// Takes the mailboxes for an incarnation and gives them back on drop,
/// even when the task is aborted; closes them if the child was stopped for
/// good meanwhile.
struct InboxLease<A: Actor> {
    me: ActorRef<A>,
    slot: Arc<Mutex<InboxSlot<A>>>,
    inboxes: Option<Inboxes<A>>,
}

impl<A: Actor> InboxLease<A> {
    fn take(me: ActorRef<A>, slot: Arc<Mutex<InboxSlot<A>>>) -> Option<Self> {
        let inboxes = lock(&slot).inboxes.take()?;
        Some(InboxLease {
            me,
            slot,
            inboxes: Some(inboxes),
        })
    }
}

impl<A: Actor> Drop for InboxLease<A> {
    fn drop(&mut self) {
        let Some(mut inboxes) = self.inboxes.take() else {
            return;
        };
        let mut slot = lock(&self.slot);
        if slot.closed {
            drop(slot);
            close_for_good(&self.me, &mut inboxes);
        } else {
            slot.inboxes = Some(inboxes);
        }
    }
}

impl<A: Actor> ChildRunner for TypedRunner<A> {
    fn start(
        &mut self,
        executor: &Executor,
        supervisor: ActorRef<Supervisor>,
        generation: u64,
    ) -> JoinHandle<ExitReason> {
        let made = catch_unwind(AssertUnwindSafe(|| (self.factory)()));
        let slot = self.slot.clone();
        let report_slot = self.slot.clone();
        let me = self.me.clone();
        let exec = executor.clone();
        let incarnation = async move {
            let reason = match made {
                Err(payload) => ExitReason::Panicked {
                    message: format!(
                        "the child's factory panicked: {}",
                        panic_message(payload.as_ref())
                    ),
                },
                Ok(actor) => match InboxLease::take(me.clone(), slot) {
                    Some(mut lease) => {
                        let inboxes = lease
                            .inboxes
                            .as_mut()
                            .expect("a fresh lease holds the mailboxes");
                        run_incarnation(actor, &me, &exec, inboxes, generation).await
                    }
                    None => ExitReason::Failed {
                        error: message_error("the child's mailbox is held by another incarnation"),
                    },
                },
            };
            // Checked after the end: should the supervisor end this
            // incarnation meanwhile, the report it gets is stale, and it
            // discards it (see `ChildExited`'s handler).
            if lock(&report_slot).awaited != Some(generation) {
                let exited = ChildExited {
                    id: me.id(),
                    generation,
                    reason: reason.clone(),
                };
                // The supervisor may be gone; then nobody restarts anything.
                let _ = supervisor.try_tell(exited);
            }
            reason
        };
        match self.worker {
            Some(worker) if worker < executor.worker_count() => executor
                .spawn_on(worker, incarnation)
                .expect("the worker index was checked"),
            Some(worker) => {
                tracing::warn!(
                    worker,
                    workers = executor.worker_count(),
                    "the child's worker does not exist; placing it round-robin"
                );
                executor.spawn(incarnation)
            }
            None => executor.spawn(incarnation),
        }
    }

    fn end_incarnation(&self, generation: u64) {
        lock(&self.slot).awaited = Some(generation);
        self.me
            .cell()
            .system
            .send_to_incarnation(generation, SystemMsg::EndIncarnation);
    }

    fn request_stop(&self, generation: u64) {
        lock(&self.slot).awaited = Some(generation);
        self.me.stop();
    }

    fn close_for_good(&self) {
        let mut slot = lock(&self.slot);
        slot.closed = true;
        if let Some(mut inboxes) = slot.inboxes.take() {
            drop(slot);
            close_for_good(&self.me, &mut inboxes);
        }
        // Otherwise a running (aborted) incarnation still holds them; its
        // lease closes them when the task lets go.
    }

    fn mark_restarting(&self) {
        self.me.cell().set_state(ActorState::Restarting);
    }

    fn adopt(
        &self,
        events: Option<(Arc<str>, Arc<EventBus>)>,
        metrics: Option<(Arc<str>, Arc<str>)>,
    ) -> Option<Arc<ActorMetrics>> {
        let metrics = metrics.map(|(path, supervisor)| {
            let cell: Weak<Cell<A>> = Arc::downgrade(self.me.cell());
            crate::metrics::register_actor(path, supervisor, cell)
        });
        self.me.cell().adopt(Adoption {
            events,
            metrics: metrics.clone(),
        });
        metrics
    }
}

/// Builds a child for [`ActorRef<Supervisor>::child`].
#[must_use = "a child is started by .spawn().await"]
pub struct ChildBuilder<'a, A: Actor> {
    supervisor: &'a ActorRef<Supervisor>,
    name: String,
    factory: Box<dyn FnMut() -> A + Send>,
    policy: RestartPolicy,
    shutdown_timeout: Duration,
    backoff_reset_after: Duration,
    options: SpawnOptions,
    health: Option<HealthCheck>,
    worker: Option<usize>,
}

impl<A: Actor> fmt::Debug for ChildBuilder<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildBuilder")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

impl<'a, A: Actor> ChildBuilder<'a, A> {
    /// The restart policy (default [`RestartPolicy::OnFailure`]).
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long a graceful stop may take before the child is aborted
    /// (default [`DEFAULT_CHILD_SHUTDOWN_TIMEOUT`]).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long an incarnation must run for its backoff count to reset
    /// (default [`DEFAULT_BACKOFF_RESET_AFTER`]).
    pub fn backoff_reset_after(mut self, stable: Duration) -> Self {
        self.backoff_reset_after = stable;
        self
    }

    /// Runs every incarnation on worker `worker` of the supervisor's
    /// executor, instead of the round-robin placement. An index past the
    /// executor's workers falls back to round-robin, with a warning.
    pub fn on_worker(mut self, worker: usize) -> Self {
        self.worker = Some(worker);
        self
    }

    /// The child's mailbox.
    pub fn mailbox(mut self, options: SpawnOptions) -> Self {
        self.options = options;
        self
    }

    /// Checks the child's health with `check` every `interval` while an
    /// incarnation runs (the first check one interval after it starts).
    /// `max_failures` failures in a row (a panic counts as one) end the
    /// incarnation as a failure, which the restart policy then handles.
    /// Panics if `interval` is zero or `max_failures` is 0.
    pub fn health_check(
        self,
        interval: Duration,
        max_failures: u32,
        check: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        self.health_check_on(&HealthSchedule::every(interval), max_failures, check)
    }

    /// As [`health_check`](Self::health_check), on a schedule that can
    /// change while the child runs (see [`HealthSchedule`]). Panics if
    /// `max_failures` is 0.
    pub fn health_check_on(
        mut self,
        schedule: &HealthSchedule,
        max_failures: u32,
        check: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        assert!(
            max_failures > 0,
            "a health check needs max_failures of at least 1"
        );
        self.health = Some(HealthCheck {
            check: Arc::new(check),
            schedule: schedule.clone(),
            max_failures,
        });
        self
    }

    /// Adds the child to the supervisor, which starts it. Returns its
    /// reference, valid across restarts.
    pub async fn spawn(self) -> Result<ActorRef<A>, AskError> {
        let (me, inboxes) = new_actor::<A>(self.options);
        let child = Child {
            name: self.name,
            id: me.id(),
            runner: Box::new(TypedRunner {
                factory: self.factory,
                me: me.clone(),
                slot: Arc::new(Mutex::new(InboxSlot {
                    inboxes: Some(inboxes),
                    closed: false,
                    awaited: None,
                })),
                worker: self.worker,
            }),
            policy: self.policy,
            shutdown_timeout: self.shutdown_timeout,
            backoff_reset_after: self.backoff_reset_after,
            generation: 0,
            running: None,
            started_at: TokioInstant::now(),
            consecutive_failures: 0,
            stopped_for_good: false,
            health: self.health,
            health_task: None,
            restart_timer: None,
            metrics: None,
            restarts: 0,
        };
        self.supervisor.ask(AddChild(Some(child))).await??;
        Ok(me)
    }
}

impl ActorRef<Supervisor> {
    /// Describes a child made by `factory`, which the supervisor calls for
    /// every incarnation. Finish with `.spawn().await`.
    pub fn child<A, F>(&self, name: impl Into<String>, factory: F) -> ChildBuilder<'_, A>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        ChildBuilder {
            supervisor: self,
            name: name.into(),
            factory: Box::new(factory),
            policy: RestartPolicy::OnFailure,
            shutdown_timeout: DEFAULT_CHILD_SHUTDOWN_TIMEOUT,
            backoff_reset_after: DEFAULT_BACKOFF_RESET_AFTER,
            options: SpawnOptions::default(),
            health: None,
            worker: None,
        }
    }
}

/// Adds a child and starts it. (An `Option` so the handler can take it.)
struct AddChild(Option<Child>);

/// A child's incarnation ended by itself.
struct ChildExited {
    id: ActorId,
    generation: u64,
    reason: ExitReason,
}

/// A delayed restart is due.
struct RestartDue {
    id: ActorId,
    generation: u64,
}

impl Actor for Supervisor {
    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        self.stop_children_for_good(0).await;
    }
}

impl Handler<AddChild> for Supervisor {
    type Reply = Result<(), AskError>;

    async fn handle(&mut self, AddChild(child): AddChild, ctx: &mut Context<Self>) -> Self::Reply {
        let Some(mut child) = child else {
            return Ok(());
        };
        if self.giving_up {
            child.runner.close_for_good();
            return Err(AskError::Stopped);
        }
        let events = self
            .events
            .as_ref()
            .map(|bus| (Arc::from(child.name.as_str()), bus.clone()));
        let metrics = crate::metrics::enabled().then(|| {
            let me = self.own_metrics(ctx).path().clone();
            (Arc::from(format!("{me}/{}", child.name)), me)
        });
        child.metrics = child.runner.adopt(events, metrics);
        Self::start_child(&mut child, ctx);
        self.index.insert(child.id, self.children.len());
        self.children.push(child);
        Ok(())
    }
}

impl Handler<ChildExited> for Supervisor {
    type Reply = ();

    async fn handle(&mut self, exited: ChildExited, ctx: &mut Context<Self>) {
        let Some(index) = self
            .child_index(exited.id)
            .filter(|&i| self.children[i].generation == exited.generation)
        else {
            return; // a stale report: that incarnation was already dealt with
        };
        if self.giving_up {
            return;
        }
        self.children[index].running = None;
        self.on_child_ended(index, exited.reason, ctx).await;
    }
}

/// A child failed its health check too many times in a row.
struct HealthFailed {
    id: ActorId,
    generation: u64,
    failures: u32,
}

impl Handler<HealthFailed> for Supervisor {
    type Reply = ();

    async fn handle(&mut self, failed: HealthFailed, ctx: &mut Context<Self>) {
        let Some(index) = self.child_index(failed.id).filter(|&i| {
            let child = &self.children[i];
            child.generation == failed.generation && child.running.is_some()
        }) else {
            return;
        };
        if self.giving_up {
            return;
        }
        tracing::warn!(child = %self.children[index].name, failures = failed.failures, "health check failed; ending the incarnation");
        self.end_incarnation(index).await;
        let reason = ExitReason::Failed {
            error: message_error(format!(
                "the health check failed {} times in a row",
                failed.failures
            )),
        };
        self.on_child_ended(index, reason, ctx).await;
    }
}

impl Handler<RestartDue> for Supervisor {
    type Reply = ();

    async fn handle(&mut self, due: RestartDue, ctx: &mut Context<Self>) {
        if self.giving_up {
            return;
        }
        if let Some(index) = self.child_index(due.id).filter(|&i| {
            let child = &self.children[i];
            child.generation == due.generation && child.running.is_none()
        }) {
            Self::start_child(&mut self.children[index], ctx);
        }
    }
}

impl Supervisor {
    /// Where the child `id` is in `children`.
    fn child_index(&self, id: ActorId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// This supervisor's metrics, recorded on first use under its path:
    /// the name it was built with, else the path its own supervisor
    /// recorded it under, else `supervisor-<id>`.
    fn own_metrics(&mut self, ctx: &Context<Self>) -> &Arc<SupervisorMetrics> {
        self.metrics.get_or_insert_with(|| {
            let path = self
                .name
                .clone()
                .or_else(|| ctx.actor_ref().cell().metrics().map(|m| m.path().clone()))
                .unwrap_or_else(|| Arc::from(format!("supervisor-{}", ctx.id())));
            crate::metrics::register_supervisor(path)
        })
    }

    /// Starts a new incarnation of `child`. (An associated function, so a
    /// child can be started in place in `self.children`.)
    fn start_child(child: &mut Child, ctx: &mut Context<Self>) {
        child.restart_timer = None;
        child.generation += 1;
        child.started_at = TokioInstant::now();
        child.running = Some(child.runner.start(
            ctx.executor(),
            ctx.actor_ref().clone(),
            child.generation,
        ));
        if let Some(health) = &child.health {
            let check = health.check.clone();
            let schedule = health.schedule.subscribe();
            let max_failures = health.max_failures;
            let (id, generation) = (child.id, child.generation);
            let me = ctx.actor_ref().clone();
            child.health_task = Some(ctx.executor().spawn(async move {
                let failures = health::run_checks(schedule, max_failures, &*check).await;
                let _ = me.try_tell(HealthFailed {
                    id,
                    generation,
                    failures,
                });
            }));
        }
    }

    /// Child `index`'s incarnation has ended with `reason` (its `running`
    /// handle already taken): apply its policy, the intensity and the
    /// strategy.
    async fn on_child_ended(&mut self, index: usize, reason: ExitReason, ctx: &mut Context<Self>) {
        let child = &mut self.children[index];
        if let Some(health) = child.health_task.take() {
            health.abort();
        }
        let restart = match (&child.policy, &reason) {
            // Stopped for good: the mailbox is closed.
            (_, ExitReason::Requested) => false,
            (RestartPolicy::Never, _) => false,
            (RestartPolicy::Always, _) => true,
            (RestartPolicy::OnFailure | RestartPolicy::ExponentialBackoff(_), reason) => {
                reason.is_failure()
            }
        };
        tracing::info!(child = %child.name, id = %child.id, %reason, restart, "supervised child ended");
        if !restart {
            child.stopped_for_good = true;
            child.runner.close_for_good();
            return;
        }
        if self.intensity_exceeded() {
            let error = format!(
                "restart intensity exceeded: more than {} restarts in {:?} (last: child `{}` {reason})",
                self.max_restarts, self.window, self.children[index].name
            );
            tracing::error!(%error, "supervisor gives up");
            if let Some(metrics) = &self.metrics {
                metrics.count_escalation();
            }
            if let Some(flag) = &self.giving_up_flag {
                flag.store(true, Ordering::Release);
            }
            self.giving_up = true;
            self.stop_children_for_good(0).await;
            if let Some(parent) = &self.escalate_to {
                // Unbounded or not, a full or closed parent must not hold
                // up the failure; the log line above stands either way.
                let _ = parent.try_tell(Escalation {
                    supervisor: ctx.id(),
                    error: error.clone(),
                });
            }
            ctx.fail(error);
            return;
        }
        let to_restart: Vec<usize> = match self.strategy {
            Strategy::OneForOne => vec![index],
            Strategy::OneForAll => (0..self.children.len())
                .filter(|&i| !self.children[i].stopped_for_good)
                .collect(),
            Strategy::RestForOne => (index..self.children.len())
                .filter(|&i| !self.children[i].stopped_for_good)
                .collect(),
        };
        // End the siblings' incarnations in reverse start order.
        for &i in to_restart.iter().rev() {
            if i != index {
                self.end_incarnation(i).await;
            }
        }
        for &i in &to_restart {
            self.schedule_start(i, ctx);
        }
    }

    /// Records a restart; true if that makes too many within the window.
    fn intensity_exceeded(&mut self) -> bool {
        self.forget_old_restarts();
        self.restarts.push_back(TokioInstant::now());
        self.restarts.len() > self.max_restarts as usize
    }

    /// Records a restart if it keeps within the intensity; false (and
    /// nothing recorded) if it would exceed it. For restarts on request,
    /// which are refused rather than made to give up.
    fn try_count_restart(&mut self) -> bool {
        self.forget_old_restarts();
        if self.restarts.len() >= self.max_restarts as usize {
            return false;
        }
        self.restarts.push_back(TokioInstant::now());
        true
    }

    /// Drops the restarts that have left the intensity's window.
    fn forget_old_restarts(&mut self) {
        let now = TokioInstant::now();
        while self
            .restarts
            .front()
            .is_some_and(|&at| now.duration_since(at) > self.window)
        {
            self.restarts.pop_front();
        }
    }

    /// Starts child `index` again, now or after its backoff delay.
    fn schedule_start(&mut self, index: usize, ctx: &mut Context<Self>) {
        let child = &mut self.children[index];
        let delay = match &child.policy {
            RestartPolicy::ExponentialBackoff(backoff) => {
                if child.started_at.elapsed() >= child.backoff_reset_after {
                    child.consecutive_failures = 0;
                }
                if backoff
                    .max_attempts
                    .is_some_and(|max| child.consecutive_failures >= max)
                {
                    tracing::warn!(child = %child.name, attempts = child.consecutive_failures, "giving up restarting child");
                    child.stopped_for_good = true;
                    child.runner.close_for_good();
                    return;
                }
                let delay = backoff_delay(
                    backoff.initial_delay,
                    backoff.max_delay,
                    backoff.multiplier,
                    backoff.jitter,
                    child.consecutive_failures,
                    child.id,
                );
                child.consecutive_failures += 1;
                delay
            }
            _ => Duration::ZERO,
        };
        child.runner.mark_restarting();
        child.restarts += 1;
        if let Some(metrics) = &child.metrics {
            metrics.count_restart();
        }
        if delay.is_zero() {
            Self::start_child(child, ctx);
            return;
        }
        child.running = None;
        let due = RestartDue {
            id: child.id,
            generation: child.generation,
        };
        let me = ctx.actor_ref().clone();
        child.restart_timer = Some(ctx.executor().spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = me.try_tell(due);
        }));
    }

    /// Ends child `index`'s running incarnation: graceful first, then an
    /// abort at its shutdown timeout. Its mailbox stays open.
    async fn end_incarnation(&mut self, index: usize) {
        let child = &mut self.children[index];
        if let Some(health) = child.health_task.take() {
            health.abort();
        }
        let Some(running) = child.running.take() else {
            return;
        };
        child.runner.end_incarnation(child.generation);
        // Its own exit report is now stale: this incarnation is handled here.
        child.generation += 1;
        wait_or_abort(
            &mut StopTimer::new(),
            running,
            child.shutdown_timeout,
            &child.name,
        )
        .await;
    }

    /// Stops every child from `from` on for good, in reverse start order.
    async fn stop_children_for_good(&mut self, from: usize) {
        let mut timer = StopTimer::new();
        for index in (from..self.children.len()).rev() {
            let child = &mut self.children[index];
            if child.stopped_for_good {
                continue;
            }
            if let Some(running) = child.retire() {
                wait_or_abort(&mut timer, running, child.shutdown_timeout, &child.name).await;
            }
            child.runner.close_for_good();
        }
    }
}

/// Waits for an incarnation to end, aborting it at `timeout`. It does not
/// wait for the abort itself: a child stuck in blocking code would hold up
/// the whole shutdown. Its mailboxes are closed when its task lets go of
/// them (see `InboxLease`).
async fn wait_or_abort(
    timer: &mut StopTimer,
    mut running: JoinHandle<ExitReason>,
    timeout: Duration,
    name: &str,
) {
    // On tokio's clock, which a test may pause.
    if timer
        .wait(&mut running, TokioInstant::now() + timeout)
        .await
        .is_none()
    {
        tracing::warn!(child = %name, ?timeout, "child did not stop within its shutdown timeout; aborting it");
        running.abort();
    }
}

/// One tokio timer, moved from deadline to deadline while children are
/// stopped one after another.
///
/// Why not a `tokio::time::timeout` per child: registering a new timer
/// while the worker's time driver is not parked makes tokio wake the
/// driver, a `write` to its eventfd, unless the driver already expects
/// to wake earlier. On a daemon's way out the driver last parked with no
/// timer at all, so every child of a drain paid that system call, on the
/// exit's critical path (perf traces showed 10 per drain of 10
/// subsystems). Moving a registered timer *later* is a
/// single atomic operation in tokio, and children of one drain share a
/// shutdown timeout, so their deadlines only grow: the drain pays for one
/// registration.
struct StopTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StopTimer {
    fn new() -> Self {
        StopTimer { sleep: None }
    }

    /// `running`'s output, or `None` if `deadline` passed first.
    async fn wait<F: Future + Unpin>(
        &mut self,
        running: &mut F,
        deadline: TokioInstant,
    ) -> Option<F::Output> {
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        tokio::select! {
            biased;
            output = running => Some(output),
            () = sleep.as_mut() => None,
        }
    }
}

/// The backoff delay after `failures` consecutive failures.
fn backoff_delay(
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
    failures: u32,
    salt: ActorId,
) -> Duration {
    let exponent = i32::try_from(failures).unwrap_or(i32::MAX);
    let base = initial.as_secs_f64() * multiplier.powi(exponent);
    let capped = base.min(max.as_secs_f64());
    if jitter == 0.0 {
        return Duration::from_secs_f64(capped);
    }
    // A uniform spread in [-jitter, +jitter] from a small hash of the child
    // and the attempt: varied across children, no RNG dependency.
    let mut x = salt.get() ^ (u64::from(failures) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    let spread = (unit * 2.0 - 1.0) * jitter;
    Duration::from_secs_f64((capped * (1.0 + spread)).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps_without_jitter() {
        let delays: Vec<Duration> = (0..6)
            .map(|n| {
                backoff_delay(
                    Duration::from_millis(100),
                    Duration::from_secs(1),
                    2.0,
                    0.0,
                    n,
                    ActorId::next(),
                )
            })
            .collect();
        let millis: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        for n in 0..50 {
            let delay = backoff_delay(
                Duration::from_millis(1000),
                Duration::from_secs(10),
                1.0,
                0.2,
                n,
                ActorId::next(),
            );
            assert!((800..=1200).contains(&delay.as_millis()), "{delay:?}");
        }
    }
}
