//! Service managers: telling systemd or s6 where the daemon stands.
//!
//! A daemon under a service manager says when it is ready, reloading and
//! stopping, and (under systemd's watchdog) that it is still alive. The
//! daemon does it by itself; a program only writes the unit file or the
//! service directory (docs/deploy/).
//!
//! | When | systemd (`NOTIFY_SOCKET`) | s6 (`service.notification_fd`) |
//! |---|---|---|
//! | every initial child is Running (what `/readyz` checks) | `READY=1`, `STATUS=` | a newline on the fd, which is then closed |
//! | a reload starts (SIGHUP, `Daemon::reload`, the file watcher, the control socket) | `RELOADING=1`, `MONOTONIC_USEC=` | — |
//! | it has ended, applied or refused | `READY=1`, `STATUS=` | — |
//! | shutdown begins | `STOPPING=1`, `EXTEND_TIMEOUT_USEC=` up to the kill stage | — |
//! | every half `WATCHDOG_USEC`, while healthy | `WATCHDOG=1` | — |
//!
//! Without `NOTIFY_SOCKET` and without the fd, nothing is sent and nothing
//! runs: no task, no socket.
//!
//! **Socket activation**: [`tcp_listener`] and [`unix_listener`] take the
//! socket systemd passed under a name (`LISTEN_FDS`, `LISTEN_FDNAMES`),
//! or bind the program's own address when it passed none (see
//! `activation.rs`).
//!
//! The watchdog is petted until shutdown begins (systemd stops
//! watching a service that is being stopped; `EXTEND_TIMEOUT_USEC` covers
//! the stop).
//!
//! **Healthy**, for the watchdog, is what `/livez` checks: the root
//! supervisor is not giving up, and the daemon's root actor answers a
//! ping within a quarter of the interval. A wedged daemon stops petting,
//! so that systemd restarts it.
//!
//! **The environment.** `NOTIFY_SOCKET`, `WATCHDOG_USEC`,
//! `WATCHDOG_PID`, `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES` are
//! read once. They are also removed from the
//! environment, so that child processes do not inherit them, when that is
//! sound: only while the process has a single thread, since removing a
//! variable while another thread may read the environment is undefined
//! behaviour in C (and `unsafe` in Rust 2024). A daemon started from
//! `#[tokio::main]` already has the runtime's threads, so call
//! [`claim_environment`] first thing in a plain `main` to have them
//! removed; otherwise they stay, and are logged at debug level. (systemd
//! ignores a child's notifications under the default `NotifyAccess=main`,
//! and `WATCHDOG_PID` names this process, so a leak is harmless there.)

mod activation;
mod notify;
mod s6;
pub(crate) mod upgrade;

pub(crate) use activation::taken;
pub(crate) use activation::{listeners_to_hand_over, take_internal};
pub use activation::{tcp_listener, unix_listener, untaken};
pub use upgrade::{UpgradeError, UpgradeReport};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proc_daemon_actors::prelude::*;
use tokio::sync::mpsc;

use crate::shutdown::DaemonShutdown;

use sd_notify::NotifyState;

pub use notify::claim_environment;

use crate::Result;

/// What the daemon tells its service manager; built once per daemon.
#[derive(Debug)]
pub(crate) struct ServiceManager {
    systemd: Option<notify::NotifySocket>,
    watchdog: Option<Duration>,
    s6: s6::ReadinessFd,
    /// The readiness pipe of the daemon this one succeeds, if it is an
    /// upgrade's successor.
    predecessor: s6::ReadinessFd,
    /// Set by the first readiness: a reload's `READY=1` is sent only
    /// after it, never instead of it.
    ready: AtomicBool,
}

impl ServiceManager {
    /// From the environment (see the module docs) and
    /// `service.notification_fd`.
    ///
    /// # Errors
    ///
    /// The notification fd is not open for writing.
    pub(crate) fn new(config: &crate::Config) -> Result<ServiceManager> {
        let env = notify::environment();
        Ok(ServiceManager {
            systemd: env.notify_socket.clone(),
            watchdog: env.watchdog,
            s6: s6::ReadinessFd::open(config.service.notification_fd)?,
            predecessor: s6::ReadinessFd::handed_over(take_internal(upgrade::READY_NAME)),
            ready: AtomicBool::new(false),
        })
    }

    /// Whether there is anybody to tell anything.
    pub(crate) fn is_active(&self) -> bool {
        self.systemd.is_some() || self.s6.is_set() || self.predecessor.is_set()
    }

    /// The watchdog interval systemd asked for, if it did.
    pub(crate) fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Every initial child is Running.
    pub(crate) fn ready(&self, status: &str) {
        if self.ready.swap(true, Ordering::AcqRel) {
            return;
        }
        let status = one_line(status);
        let status = status.as_str();
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
        self.s6.notify();
        self.predecessor.notify();
    }

    /// A reload begins.
    pub(crate) fn reloading(&self) {
        if self.systemd.is_some() {
            self.send(&[
                NotifyState::Reloading,
                NotifyState::MonotonicUsec(notify::monotonic_usec()),
            ]);
        }
    }

    /// A reload has ended, applied or refused.
    pub(crate) fn reloaded(&self, status: &str) {
        let status = one_line(status);
        let status = status.as_str();
        if self.ready.load(Ordering::Acquire) {
            self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
        } else {
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// Shutdown begins; it may take up to `until_killed`.
    pub(crate) fn stopping(&self, until_killed: Duration) {
        let usec = u32::try_from(until_killed.as_micros()).unwrap_or(u32::MAX);
        self.send(&[NotifyState::Stopping, NotifyState::ExtendTimeoutUsec(usec)]);
    }

    /// An upgrade's successor, `pid`, is ready and takes over.
    pub(crate) fn main_pid(&self, pid: u32, status: &str) {
        self.send(&[NotifyState::MainPid(pid), NotifyState::Status(status)]);
    }

    /// The daemon is healthy.
    pub(crate) fn pet_watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    fn send(&self, states: &[NotifyState]) {
        if let Some(socket) = &self.systemd {
            let message: String = states.iter().map(|state| format!("{state}\n")).collect();
            socket.send(&message);
        }
    }
}

/// `STATUS=` is one line.
fn one_line(status: &str) -> String {
    status
        .split('\n')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Asks the daemon's root actor whether it is alive (it answers at once);
/// used by the watchdog and by `/livez`.
#[derive(Debug)]
pub(crate) struct Ping;

/// Reads one actor's state.
pub(crate) type StateOf = Box<dyn Fn() -> ActorState + Send + Sync>;

/// A boxed future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What happened, for the service manager, in the order it happened.
#[derive(Debug)]
pub(crate) enum Note {
    /// A reload began.
    Reloading,
    /// It ended; how, in a few words.
    Reloaded(String),
    /// Shutdown began; it may take up to this long.
    Stopping(Duration),
}

/// Where the root actor sends its [`Note`]s: to the task that tells the
/// service manager, or nowhere when there is nobody to tell.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notes(Option<mpsc::UnboundedSender<Note>>);

impl Notes {
    pub(crate) fn send(&self, note: Note) {
        if let Some(sender) = &self.0 {
            let _ = sender.send(note);
        }
    }
}

/// The sending and receiving ends for `manager`: no channel when it has
/// nobody to tell.
pub(crate) fn channel(manager: &ServiceManager) -> (Notes, Option<mpsc::UnboundedReceiver<Note>>) {
    if !manager.is_active() {
        return (Notes(None), None);
    }
    let (sender, receiver) = mpsc::unbounded_channel();
    (Notes(Some(sender)), Some(receiver))
}

/// What the service tasks read of the daemon.
pub(crate) struct Tree {
    /// The subsystems registered before start: ready when all run.
    pub(crate) initial: Vec<(String, StateOf)>,
    pub(crate) root: ActorRef<Supervisor>,
    pub(crate) shutdown: Arc<DaemonShutdown>,
    /// Pings the root actor; resolves to whether it answered in time.
    pub(crate) ping: Box<dyn Fn(Duration) -> BoxFuture<bool> + Send + Sync>,
}

/// Starts the task that sends readiness, reload and stop notifications in
/// order, and, when systemd asked for one, the watchdog's.
pub(crate) fn spawn(
    manager: Arc<ServiceManager>,
    notes: mpsc::UnboundedReceiver<Note>,
    tree: Tree,
    executor: &Executor,
) {
    let tree = Arc::new(tree);
    if let Some(interval) = manager.watchdog().filter(|_| manager.systemd.is_some()) {
        // Off the control worker when there is another: the watchdog
        // then sees a wedged control worker through the ping.
        let watchdog = watchdog(manager.clone(), tree.clone(), interval);
        let worker = executor.worker_count().saturating_sub(1);
        drop(
            executor
                .spawn_on(worker, watchdog)
                .expect("the last worker exists"),
        );
    }
    drop(executor.spawn(notify_in_order(manager, notes, tree)));
}

/// Readiness once every initial child runs, then each note in order.
async fn notify_in_order(
    manager: Arc<ServiceManager>,
    mut notes: mpsc::UnboundedReceiver<Note>,
    tree: Arc<Tree>,
) {
    let mut last_reload = "no reload yet".to_owned();
    let mut ready = false;
    loop {
        let note = if ready {
            notes.recv().await
        } else {
            tokio::select! {
                note = notes.recv() => note,
                () = tokio::time::sleep(READY_POLL) => {
                    if !tree.shutdown.is_shutting_down()
                        && tree.initial.iter().all(|(_, state)| state() == ActorState::Running)
                    {
                        manager.ready(&status_line(&tree, &last_reload).await);
                        ready = true;
                    }
                    continue;
                }
            }
        };
        match note {
            None => return,
            Some(Note::Reloading) => manager.reloading(),
            Some(Note::Reloaded(how)) => {
                last_reload = format!("last reload {how}");
                manager.reloaded(&status_line(&tree, &last_reload).await);
            }
            Some(Note::Stopping(until_killed)) => {
                manager.stopping(until_killed);
                return;
            }
        }
    }
}

/// How often readiness is checked until it is reached.
const READY_POLL: Duration = Duration::from_millis(5);

/// `STATUS=`: children running, restarts so far, the last reload.
async fn status_line(tree: &Tree, last_reload: &str) -> String {
    match tokio::time::timeout(Duration::from_millis(200), tree.root.children()).await {
        Ok(Ok(children)) => {
            let running = children
                .iter()
                .filter(|child| child.state == ActorState::Running)
                .count();
            let restarts: u64 = children.iter().map(|child| child.restarts).sum();
            format!(
                "{running} of {} children running, {restarts} restarts; {last_reload}",
                children.len()
            )
        }
        _ => format!("children not counted (the root supervisor is busy); {last_reload}"),
    }
}

/// Pets the watchdog every half interval while the daemon is healthy (see
/// the module docs).
async fn watchdog(manager: Arc<ServiceManager>, tree: Arc<Tree>, interval: Duration) {
    let every = interval / 2;
    let answer_within = (interval / 4).min(Duration::from_secs(1));
    let mut healthy = true;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            // systemd stops the watchdog when the service is being
            // stopped; this task ends too, rather than hold up the drain.
            () = tree.shutdown.token.cancelled() => return,
        }
        let why_not = if tree.shutdown.root_giving_up.load(Ordering::Acquire) {
            Some("the root supervisor is giving up")
        } else if !(tree.ping)(answer_within).await {
            Some("the daemon's root actor did not answer a ping")
        } else {
            None
        };
        match why_not {
            None => {
                if !healthy {
                    tracing::info!("healthy again: petting systemd's watchdog");
                }
                healthy = true;
                manager.pet_watchdog();
            }
            Some(why) => {
                if healthy {
                    tracing::error!(
                        reason = why,
                        ?interval,
                        "not healthy: systemd's watchdog is not petted, and restarts the daemon if this lasts"
                    );
                }
                healthy = false;
            }
        }
    }
}
