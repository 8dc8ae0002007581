//! The daemon's root actor: signals, shutdown requests and escalations
//! arrive as messages, one at a time, and drive the staged shutdown.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use proc_daemon_actors::executor::{Executor, JoinHandle};
use proc_daemon_actors::prelude::*;
use proc_daemon_actors::supervision::{DrainReport, Escalation};
use proc_daemon_actors::support::{ABORT_GRACE, Drain, EventBus, panic_message};

use crate::Config;
use crate::config::render_key;
use crate::kill_stage::KillSwitch;
use crate::lock::lock;
use crate::reload::{ConfigReloaded, ReloadOutcome, ReloadStats, merge};
use crate::service::Note;
use crate::shutdown::{DaemonShutdown, ShutdownReason, wait_until};
use crate::signal::{Signal, SignalConfig};

/// The daemon's root actor. See the module docs.
pub(crate) struct DaemonActor {
    pub(super) root: Option<ActorRef<Supervisor>>,
    pub(super) shutdown: Arc<DaemonShutdown>,
    pub(super) signals: SignalConfig,
    pub(super) reload_subscribers: Vec<Recipient<ConfigReloaded>>,
    /// The configuration in effect: this actor's, and every reader's
    /// outside it (`Daemon::config_snapshot`).
    pub(super) snapshot: Arc<arc_swap::ArcSwap<Config>>,
    pub(super) reload: ReloadState,
    pub(super) reload_stats: Arc<ReloadStats>,
    /// Subsystems' health-check schedule, which a reload changes.
    pub(super) health: proc_daemon_actors::supervision::HealthSchedule,
    pub(super) phase: Phase,
    /// Where `run` finds how the daemon stopped.
    pub(super) finish: Arc<FinishRecord>,
    pub(super) executor: Executor,
    pub(super) kill: Arc<KillSwitch>,
    pub(super) force_timer: Option<JoinHandle<()>>,
    pub(super) events: Arc<EventBus>,
    pub(super) signal_listeners: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// What the service manager hears of reloads and the shutdown.
    pub(super) service: crate::service::Notes,
}

impl fmt::Debug for DaemonActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonActor")
            .field("name", &self.snapshot.load().name)
            .field("phase", &self.phase)
            .finish()
    }
}

#[derive(Debug)]
pub(super) enum Phase {
    Running,
    Draining {
        began: Instant,
        force_at: Instant,
        escalation: Option<String>,
    },
    Finished,
}

/// What the root actor hands to [`Daemon::run`] when the tree has stopped.
pub(super) struct Finish {
    pub(super) reason: ShutdownReason,
    pub(super) began: Instant,
    pub(super) report: DrainReport,
    pub(super) forced: bool,
    pub(super) escalation: Option<String>,
}

/// How the daemon stopped, recorded by the root actor for `run`.
#[derive(Default)]
pub(super) struct FinishRecord {
    record: Mutex<Option<Finish>>,
    /// Wakes a `run` that is waiting for the record (only after it gave up
    /// waiting for the workers: normally the record is there before the
    /// workers exit).
    recorded: tokio::sync::Notify,
}

impl FinishRecord {
    /// Records how the daemon stopped; the first record counts.
    pub(super) fn record(&self, finish: Finish) {
        lock(&self.record).get_or_insert(finish);
        self.recorded.notify_waiters();
    }

    /// The record. Waits for it while the workers have not all exited: the
    /// root actor may be stuck behind a blocked worker, and then the kill
    /// stage ends the process.
    pub(super) async fn take(&self, executor: &Executor) -> Finish {
        wait_until(&self.recorded, || {
            if let Some(finish) = lock(&self.record).take() {
                return Some(finish);
            }
            // No record, yet every worker is gone (the root actor's own
            // `Drop` records one): the executor was shut down from outside
            // before the root actor was dropped.
            executor.drain().is_finished().then(|| Finish {
                reason: ShutdownReason::Escalated(
                    "the daemon's executor was shut down outside the daemon".into(),
                ),
                began: Instant::now(),
                report: DrainReport::default(),
                forced: true,
                escalation: None,
            })
        })
        .await
    }
}

impl Actor for DaemonActor {}

/// Answered at once: `/livez` and the watchdog ask whether this actor is
/// alive.
impl Handler<crate::service::Ping> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, _ping: crate::service::Ping, _ctx: &mut Context<Self>) {}
}

/// Gives the root actor its supervisor.
pub(super) struct Attach(pub(super) ActorRef<Supervisor>);
pub(super) struct SignalReceived(pub(super) Signal);
pub(super) struct ShutdownRequest(pub(super) ShutdownReason);
pub(super) struct SubscribeReload(pub(super) Recipient<ConfigReloaded>);
/// Asks for a reload; `reply`, if any, gets the outcome of a reload that
/// read the file after this request.
pub(super) struct ReloadRequest {
    /// Who asked, for the log.
    pub(super) trigger: &'static str,
    pub(super) reply: Option<oneshot::Sender<ReloadOutcome>>,
}
/// A config rebuilt from its layers, off the root's thread.
pub(super) struct ReloadBuilt(std::result::Result<Config, crate::ConfigError>, Duration);

/// Where the reload in progress stands (see `crate::reload`).
#[derive(Debug, Default)]
pub(super) struct ReloadState {
    /// A config is being rebuilt.
    in_flight: bool,
    /// Requests came in while it was: one more reload follows.
    again: bool,
    /// Answered by the reload in flight.
    waiting: Vec<oneshot::Sender<ReloadOutcome>>,
    /// Answered by the reload after it.
    waiting_next: Vec<oneshot::Sender<ReloadOutcome>>,
    /// Restart-only keys whose new value waits for a restart: each is
    /// logged when it starts waiting, not at every reload.
    held: Vec<&'static str>,
}
pub(super) struct ForceDeadline;

impl Handler<Attach> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, Attach(root): Attach, _ctx: &mut Context<Self>) {
        self.root = Some(root);
    }
}

impl Handler<SignalReceived> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, SignalReceived(signal): SignalReceived, ctx: &mut Context<Self>) {
        match signal {
            Signal::Hangup => self.request_reload("SIGHUP", None, ctx),
            Signal::User1 | Signal::User2 => {
                if let Some(handler) = self.signals.user_handler(signal) {
                    tracing::info!(%signal, "running the signal handler");
                    let handler = handler.clone();
                    if let Err(panic) =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler()))
                    {
                        tracing::error!(%signal, panic = %panic_message(panic.as_ref()), "the signal handler panicked");
                    }
                } else {
                    tracing::warn!(%signal, "{signal} received with no handler set; ignored");
                }
            }
            Signal::Interrupt if matches!(self.phase, Phase::Draining { .. }) => {
                tracing::warn!("second SIGINT: forcing the shutdown");
                self.finish_now(DrainReport::default(), true, ctx);
            }
            _ => {
                tracing::info!(%signal, "shutdown signal received");
                self.begin_shutdown(ShutdownReason::Signal(signal), None, ctx);
            }
        }
    }
}

impl Handler<ShutdownRequest> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, ShutdownRequest(reason): ShutdownRequest, ctx: &mut Context<Self>) {
        tracing::info!(%reason, "shutdown requested");
        self.begin_shutdown(reason, None, ctx);
    }
}

impl Handler<Escalation> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, escalation: Escalation, ctx: &mut Context<Self>) {
        tracing::error!(error = %escalation.error, "the root supervisor gave up; shutting the daemon down");
        self.begin_shutdown(
            ShutdownReason::Escalated(escalation.error.clone()),
            Some(escalation.error),
            ctx,
        );
    }
}

impl Handler<SubscribeReload> for DaemonActor {
    type Reply = ();
    async fn handle(
        &mut self,
        SubscribeReload(subscriber): SubscribeReload,
        _ctx: &mut Context<Self>,
    ) {
        self.reload_subscribers.push(subscriber);
    }
}

impl Handler<ReloadRequest> for DaemonActor {
    type Reply = ();
    async fn handle(
        &mut self,
        ReloadRequest { trigger, reply }: ReloadRequest,
        ctx: &mut Context<Self>,
    ) {
        self.request_reload(trigger, reply, ctx);
    }
}

impl Handler<ReloadBuilt> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, ReloadBuilt(built, took): ReloadBuilt, ctx: &mut Context<Self>) {
        self.reload.in_flight = false;
        let outcome = match built {
            Ok(fresh) => self.apply_reload(fresh),
            Err(err) => self.refuse_reload(err),
        };
        self.service.send(Note::Reloaded(match &outcome {
            ReloadOutcome::Applied { changed, .. } if changed.is_empty() => "unchanged".to_owned(),
            ReloadOutcome::Applied { changed, .. } => format!("applied ({})", changed.join(", ")),
            ReloadOutcome::Failed(err) => format!("failed: {err}"),
            ReloadOutcome::ShuttingDown => "not done: shutting down".to_owned(),
        }));
        // After the new level is in effect: a reload to `debug` shows it.
        tracing::debug!(?took, "the configuration's layers were read again");
        for waiter in self.reload.waiting.drain(..) {
            let _ = waiter.send(outcome.clone());
        }
        if std::mem::take(&mut self.reload.again) {
            self.reload.waiting = std::mem::take(&mut self.reload.waiting_next);
            self.start_reload(ctx);
        }
    }
}

impl Handler<DrainReport> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, report: DrainReport, ctx: &mut Context<Self>) {
        self.finish_now(report, false, ctx);
    }
}

impl Handler<ForceDeadline> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, _: ForceDeadline, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Draining { .. }) {
            tracing::error!(
                "force timeout reached with children still stopping; aborting what is left"
            );
            self.finish_now(DrainReport::default(), true, ctx);
        }
    }
}

impl Drop for DaemonActor {
    fn drop(&mut self) {
        if matches!(self.phase, Phase::Finished) {
            return;
        }
        // The root actor ended without finishing the shutdown (its task
        // was aborted, or the executor was shut down under it): nothing
        // else will. Record it for `run`, arm the kill stage and stop the
        // workers at once.
        let now = Instant::now();
        self.kill.arm(now + self.snapshot.load().kill_timeout());
        let began = match self.phase {
            Phase::Draining { began, .. } => began,
            _ => now,
        };
        self.finish.record(Finish {
            reason: ShutdownReason::Escalated("the daemon's root actor ended unexpectedly".into()),
            began,
            report: DrainReport::default(),
            forced: true,
            escalation: None,
        });
        let _ = self.executor.drain().begin(Duration::ZERO);
    }
}

impl DaemonActor {
    /// A reload trigger: starts a reload, or folds the request into the
    /// one after the reload in flight (see `crate::reload`).
    fn request_reload(
        &mut self,
        trigger: &'static str,
        reply: Option<oneshot::Sender<ReloadOutcome>>,
        ctx: &mut Context<Self>,
    ) {
        if !matches!(self.phase, Phase::Running) {
            tracing::info!(trigger, "shutting down: the reload is not done");
            if let Some(reply) = reply {
                let _ = reply.send(ReloadOutcome::ShuttingDown);
            }
            return;
        }
        if self.reload.in_flight {
            if self.reload.again {
                self.reload_stats.count_coalesced();
                tracing::debug!(trigger, "reload already queued; folded into it");
            } else {
                tracing::info!(trigger, "reload requested; it follows the one in progress");
            }
            self.reload.again = true;
            self.reload.waiting_next.extend(reply);
            return;
        }
        tracing::info!(trigger, "reload requested");
        self.reload.waiting.extend(reply);
        self.start_reload(ctx);
    }

    /// Rebuilds the config from its layers on the blocking pool (a file
    /// read may be slow; this actor keeps handling signals meanwhile), and
    /// sends the result back as [`ReloadBuilt`].
    fn start_reload(&mut self, ctx: &mut Context<Self>) {
        self.reload.in_flight = true;
        self.service.send(Note::Reloading);
        let running = self.snapshot.load_full();
        let me = ctx.actor_ref().clone();
        drop(ctx.executor().spawn_blocking(move || {
            let started = Instant::now();
            let built = running.rebuild();
            let _ = me.try_tell(ReloadBuilt(built, started.elapsed()));
        }));
    }

    /// Puts a valid rebuilt config in effect: see `crate::reload`.
    fn apply_reload(&mut self, fresh: Config) -> ReloadOutcome {
        if let Err(err) = crate::logging::check(&fresh.logging) {
            return self.refuse_reload(err);
        }
        let old = self.snapshot.load_full();
        let merged = merge(&old, fresh);
        for (key, wanted) in &merged.needs_restart {
            if !self.reload.held.contains(key) {
                tracing::warn!(
                    key,
                    running = %render_key(&old, key),
                    new = %wanted,
                    "`{key}` changed in the configuration, but it needs a restart to take effect; the running value stays"
                );
            }
        }
        self.reload.held = merged.needs_restart.iter().map(|(key, _)| *key).collect();
        let new = Arc::new(merged.config);
        // A `log-level` from the control socket lasts until this reload.
        let overridden = crate::logging::take_level_override();
        if (overridden || merged.changed.iter().any(|key| key.starts_with("logging.")))
            && !crate::logging::apply_live(&new.logging)
        {
            tracing::info!(
                "[logging] changed, but the program installed its own tracing subscriber; it is left alone"
            );
        }
        self.health.set(super::builder::health_schedule(&new));
        self.snapshot.store(Arc::clone(&new));
        self.reload_stats.count_applied();
        tracing::info!(changed = ?merged.changed, "configuration reloaded");
        let reloaded = ConfigReloaded {
            old,
            new,
            changed: merged.changed.clone(),
        };
        self.reload_subscribers
            .retain(|s| s.try_tell(reloaded.clone()).is_ok() || s.is_alive());
        ReloadOutcome::Applied {
            changed: merged.changed,
            needs_restart: merged
                .needs_restart
                .into_iter()
                .map(|(key, _)| key)
                .collect(),
        }
    }

    /// A rebuilt config that is not valid: the old one stays.
    fn refuse_reload(&mut self, err: crate::ConfigError) -> ReloadOutcome {
        self.reload_stats.count_failed();
        tracing::error!(
            error = %err,
            failures = self.reload_stats.failed(),
            "the configuration did not reload; the one in effect is unchanged"
        );
        ReloadOutcome::Failed(err)
    }

    fn begin_shutdown(
        &mut self,
        reason: ShutdownReason,
        escalation: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        match &mut self.phase {
            Phase::Running => {}
            Phase::Draining {
                escalation: slot, ..
            } => {
                // Already shutting down: an escalation still decides the
                // exit code; anything else is only logged.
                if slot.is_none() {
                    *slot = escalation;
                }
                tracing::info!(%reason, "already shutting down");
                return;
            }
            Phase::Finished => return,
        }
        let began = Instant::now();
        let config = self.snapshot.load();
        let force_at = began + config.force_shutdown_timeout();
        let kill_at = began + config.kill_timeout();
        self.phase = Phase::Draining {
            began,
            force_at,
            escalation,
        };
        self.kill.arm(kill_at);
        self.service.send(Note::Stopping(config.kill_timeout()));
        // Stage 1. The drain is queued at the root before any handle is
        // cancelled, so a subsystem that returns because of the
        // cancellation is never restarted: its exit report queues behind
        // the drain.
        let drain = Drain {
            force_at,
            report_to: Some(ctx.actor_ref().clone().recipient()),
        };
        let queued = self
            .root
            .as_ref()
            .is_some_and(|root| root.try_tell(drain).is_ok());
        // The cancellations below start a chain of hand-offs between
        // workers; keep them awake through it.
        ctx.executor().drain().prepare();
        self.shutdown.begin(reason, config.shutdown_timeout());
        if !queued {
            // The root already stopped (it gave up): nothing to drain.
            self.finish_now(DrainReport::default(), false, ctx);
            return;
        }
        // Stage 2 is the drain's own: it aborts its children at
        // `force_at`. This timer covers a drain that cannot report (its
        // worker is blocked); it waits `ABORT_GRACE` longer, so that a
        // drain that can report does, with the names it aborted.
        let me = ctx.actor_ref().clone();
        self.force_timer = Some(ctx.executor().spawn(async move {
            tokio::time::sleep_until((force_at + ABORT_GRACE).into()).await;
            let _ = me.try_tell(ForceDeadline);
        }));
    }

    fn finish_now(&mut self, report: DrainReport, forced: bool, ctx: &mut Context<Self>) {
        let Phase::Draining {
            began,
            force_at,
            escalation,
        } = std::mem::replace(&mut self.phase, Phase::Finished)
        else {
            return;
        };
        if let Some(timer) = self.force_timer.take() {
            timer.abort();
        }
        let reason = self
            .shutdown
            .reason()
            .unwrap_or_else(|| ShutdownReason::Requested("unknown".into()));
        // The force stage for what is left outside the tree: the listeners
        // first (they never end by themselves), then every other task, which
        // may run until the force deadline (at once if forced). Event
        // subscriptions end now that the tree is gone, so a task looping on
        // one finishes.
        for listener in lock(&self.signal_listeners).drain(..) {
            listener.abort();
        }
        self.events.close_subscriptions();
        let remaining = if forced {
            Duration::ZERO
        } else {
            force_at.saturating_duration_since(Instant::now())
        };
        // Recorded before the executor's shutdown begins: `run` reads it
        // once the workers have exited.
        self.finish.record(Finish {
            reason,
            began,
            report,
            forced,
            escalation,
        });
        // This actor ends after this handler; the workers then wind down,
        // and the last one to exit wakes `run`.
        if let Err(err) = ctx.executor().drain().begin(remaining) {
            tracing::warn!(%err, "the executor was already shutting down");
        }
        ctx.stop();
    }
}
