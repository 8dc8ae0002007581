//! Graceful shutdown: the [`ShutdownHandle`] every subsystem receives.
//!
//! ```no_run
//! use proc_daemon::{Config, Daemon, Result};
//!
//! # async fn demo() -> Result<()> {
//! Daemon::builder(Config::new()?)
//!     .with_task("ticker", |mut shutdown| {
//!         Box::pin(async move {
//!             loop {
//!                 tokio::select! {
//!                     _ = shutdown.cancelled() => break,
//!                     _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
//!                         if std::path::Path::new("/tmp/stop-me").exists() {
//!                             // A subsystem can stop the whole daemon.
//!                             shutdown.request_shutdown("found /tmp/stop-me");
//!                         }
//!                     }
//!                 }
//!             }
//!             // Cleanup runs here, within `shutdown.time_remaining()`.
//!             Ok(())
//!         })
//!     })
//!     .run()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Why two levels
//!
//! A handle is cancelled in two situations, and a subsystem cannot tell
//! them apart, nor does it need to:
//!
//! - the daemon shuts down (a signal, [`ShutdownHandle::request_shutdown`],
//!   an escalated failure): every handle is cancelled at once, at the start
//!   of the graceful stage;
//! - the supervisor ends this one incarnation (a `OneForAll` sibling
//!   failed, a health check failed): only that incarnation's handle is
//!   cancelled, and the subsystem is started again with a fresh one.
//!
//! So a handle holds the daemon's token and its incarnation's token, and
//! reports cancelled when either is. Cancellation wakes every waiter at
//! once, through a [`CancelToken`]; nothing polls.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use proc_daemon_actors::cancel::CancelToken;
use tokio::sync::Notify;

/// Why the daemon is shutting down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownReason {
    /// A signal asked for it (SIGTERM, SIGINT, SIGQUIT).
    Signal(crate::signal::Signal),
    /// Code asked for it: [`ShutdownHandle::request_shutdown`] or
    /// [`Daemon::shutdown`](crate::Daemon::shutdown), with the caller's
    /// words.
    Requested(String),
    /// A restart storm escalated to the root supervisor: the tree gave up.
    Escalated(String),
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownReason::Signal(signal) => write!(f, "received {signal}"),
            ShutdownReason::Requested(why) => write!(f, "requested: {why}"),
            ShutdownReason::Escalated(why) => write!(f, "the supervision tree failed: {why}"),
        }
    }
}

/// Waits on `notify` until `check` gives a value. Each check runs after
/// registering for the next notification, so a `notify_waiters` between
/// the check and the wait is not missed (`notify_waiters` wakes only
/// registered waiters).
pub(crate) async fn wait_until<T>(notify: &Notify, mut check: impl FnMut() -> Option<T>) -> T {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(value) = check() {
            return value;
        }
        notified.await;
    }
}

/// The daemon-wide part shared by every handle.
pub(crate) struct DaemonShutdown {
    pub(crate) token: CancelToken,
    /// Set by the root supervisor the moment it gives up, before it stops
    /// its children (`/livez` reads it).
    pub(crate) root_giving_up: Arc<std::sync::atomic::AtomicBool>,
    reason: Mutex<Option<ShutdownReason>>,
    graceful_deadline: OnceLock<Instant>,
    /// Where [`ShutdownHandle::request_shutdown`] goes: the daemon's root
    /// actor, once it runs.
    requests: OnceLock<Box<dyn Fn(ShutdownReason) + Send + Sync>>,
    /// What went wrong with subsystems once the shutdown began.
    stopping: Mutex<StopRecord>,
}

/// What went wrong with subsystems once the daemon's shutdown began,
/// recorded by their `run` tasks, so that the exit code and the report say
/// it however the shutdown ended (a drain that reported, or a forced stop
/// that did not wait for one).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct StopRecord {
    /// Subsystems whose `run` returned an error or panicked after it was
    /// cancelled for the shutdown: their cleanup failed. Name, then what
    /// happened in words.
    pub(crate) failed: Vec<(String, String)>,
    /// Subsystems whose `run` was cut off (its task aborted) during the
    /// shutdown, before it returned.
    pub(crate) cut: Vec<String>,
}

impl fmt::Debug for DaemonShutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonShutdown")
            .field("cancelled", &self.token.is_cancelled())
            .field("reason", &self.reason())
            .finish()
    }
}

impl DaemonShutdown {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(DaemonShutdown {
            token: CancelToken::default(),
            root_giving_up: Arc::default(),
            reason: Mutex::new(None),
            graceful_deadline: OnceLock::new(),
            requests: OnceLock::new(),
            stopping: Mutex::new(StopRecord::default()),
        })
    }

    /// Records that subsystem `name`'s cleanup failed: its `run` returned
    /// `what` (an error or a panic) after the shutdown began.
    pub(crate) fn record_failed_cleanup(&self, name: &str, what: String) {
        crate::lock::lock(&self.stopping)
            .failed
            .push((name.to_owned(), what));
    }

    /// Records that subsystem `name`'s `run` was aborted during the
    /// shutdown.
    pub(crate) fn record_cut(&self, name: &str) {
        let mut record = crate::lock::lock(&self.stopping);
        if !record.cut.iter().any(|cut| cut == name) {
            record.cut.push(name.to_owned());
        }
    }

    /// What was recorded while stopping.
    pub(crate) fn stop_record(&self) -> StopRecord {
        crate::lock::lock(&self.stopping).clone()
    }

    /// Routes shutdown requests to `sink` (set once, by the daemon).
    pub(crate) fn route_requests(&self, sink: impl Fn(ShutdownReason) + Send + Sync + 'static) {
        let _ = self.requests.set(Box::new(sink));
    }

    /// Asks the daemon to shut down; returns false if nothing routes
    /// requests yet (the daemon is not built).
    pub(crate) fn request(&self, reason: ShutdownReason) -> bool {
        match self.requests.get() {
            Some(sink) => {
                sink(reason);
                true
            }
            None => false,
        }
    }

    /// Starts the graceful stage: records why and until when, then wakes
    /// every handle. Only the first call counts.
    pub(crate) fn begin(&self, reason: ShutdownReason, graceful: Duration) {
        {
            let mut slot = crate::lock::lock(&self.reason);
            if slot.is_some() {
                return;
            }
            *slot = Some(reason);
        }
        let _ = self.graceful_deadline.set(Instant::now() + graceful);
        self.token.cancel();
    }

    /// Whether the daemon's shutdown has begun.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    pub(crate) fn reason(&self) -> Option<ShutdownReason> {
        crate::lock::lock(&self.reason).clone()
    }
}

/// What a subsystem uses to learn that it should stop, and to ask the
/// daemon to stop.
///
/// Cheap to clone; every clone sees the same cancellation. See the module
/// docs for when a handle is cancelled.
#[derive(Clone)]
pub struct ShutdownHandle {
    daemon: Arc<DaemonShutdown>,
    incarnation: Option<Arc<CancelToken>>,
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("is_shutdown", &self.is_shutdown())
            .field("reason", &self.reason())
            .finish()
    }
}

impl ShutdownHandle {
    pub(crate) fn for_daemon(daemon: Arc<DaemonShutdown>) -> Self {
        ShutdownHandle {
            daemon,
            incarnation: None,
        }
    }

    pub(crate) fn for_incarnation(daemon: Arc<DaemonShutdown>, token: Arc<CancelToken>) -> Self {
        ShutdownHandle {
            daemon,
            incarnation: Some(token),
        }
    }

    /// Resolves once this handle is cancelled (at once if it already is).
    /// Cancel-safe: use it in `tokio::select!` in a loop.
    ///
    /// It takes `&mut self` only so that the reference's
    /// `mut shutdown: ShutdownHandle` parameters stay warning-free; clone
    /// the handle to wait from several places.
    pub async fn cancelled(&mut self) {
        match &self.incarnation {
            None => self.daemon.token.cancelled().await,
            Some(own) => {
                tokio::select! {
                    () = self.daemon.token.cancelled() => {}
                    () = own.cancelled() => {}
                }
            }
        }
    }

    /// Whether this handle is cancelled, without waiting.
    pub fn is_shutdown(&self) -> bool {
        self.daemon.token.is_cancelled()
            || self.incarnation.as_ref().is_some_and(|t| t.is_cancelled())
    }

    /// Asks the daemon to shut down, for `reason`. The daemon logs the
    /// reason and starts its staged shutdown, which cancels this handle
    /// too. Returns at once; a request after the first one is logged and
    /// otherwise ignored.
    ///
    /// A handle that belongs to no running daemon (a test constructing one
    /// by hand) has nowhere to send the request: it is logged as an error.
    pub fn request_shutdown(&self, reason: impl Into<String>) {
        let reason = ShutdownReason::Requested(reason.into());
        if !self.daemon.request(reason.clone()) {
            tracing::error!(%reason, "shutdown requested, but no daemon runs to receive it");
        }
    }

    /// Why the daemon is shutting down, once it is. `None` while the daemon
    /// runs, including while only this incarnation is being ended by its
    /// supervisor.
    pub fn reason(&self) -> Option<ShutdownReason> {
        self.daemon.reason()
    }

    /// How long is left of the graceful stage, once the daemon shuts down:
    /// cleanup that finishes within it is never cut off. `None` while the
    /// daemon runs; `Some(Duration::ZERO)` once the graceful stage is over
    /// (the force stage aborts what is left).
    pub fn time_remaining(&self) -> Option<Duration> {
        self.daemon
            .graceful_deadline
            .get()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn daemon_cancel_wakes_every_clone_and_records_reason_and_deadline() {
        runtime().block_on(async {
            let daemon = DaemonShutdown::new();
            let handle = ShutdownHandle::for_daemon(daemon.clone());
            assert!(!handle.is_shutdown());
            assert_eq!(handle.reason(), None);
            assert_eq!(handle.time_remaining(), None);
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let mut h = handle.clone();
                    tokio::spawn(async move { h.cancelled().await })
                })
                .collect();
            tokio::task::yield_now().await;
            daemon.begin(
                ShutdownReason::Requested("test".into()),
                Duration::from_secs(5),
            );
            for waiter in waiters {
                tokio::time::timeout(Duration::from_secs(5), waiter)
                    .await
                    .expect("a waiter was not woken")
                    .unwrap();
            }
            assert!(handle.is_shutdown());
            assert_eq!(
                handle.reason(),
                Some(ShutdownReason::Requested("test".into()))
            );
            let left = handle.time_remaining().unwrap();
            assert!(
                left > Duration::from_secs(4) && left <= Duration::from_secs(5),
                "{left:?}"
            );
            // The first reason stands.
            daemon.begin(ShutdownReason::Escalated("later".into()), Duration::ZERO);
            assert_eq!(
                handle.reason(),
                Some(ShutdownReason::Requested("test".into()))
            );
        });
    }

    #[test]
    fn incarnation_cancel_affects_only_that_incarnation() {
        runtime().block_on(async {
            let daemon = DaemonShutdown::new();
            let first = Arc::new(CancelToken::default());
            let mut one = ShutdownHandle::for_incarnation(daemon.clone(), first.clone());
            let two =
                ShutdownHandle::for_incarnation(daemon.clone(), Arc::new(CancelToken::default()));
            first.cancel();
            tokio::time::timeout(Duration::from_secs(5), one.cancelled())
                .await
                .expect("the incarnation's handle was not cancelled");
            assert!(one.is_shutdown());
            assert!(!two.is_shutdown());
            assert_eq!(one.reason(), None);
        });
    }

    #[test]
    fn request_shutdown_reaches_the_route() {
        let daemon = DaemonShutdown::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        daemon.route_requests(move |reason| sink.lock().unwrap().push(reason));
        ShutdownHandle::for_daemon(daemon).request_shutdown("disk full");
        assert_eq!(
            *seen.lock().unwrap(),
            [ShutdownReason::Requested("disk full".into())]
        );
    }
}
