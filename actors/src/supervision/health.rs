//! Health checks: how often a child's check runs, changeable while it
//! runs.
//!
//! A [`HealthSchedule`] is shared by every child it is given to (a daemon
//! gives one to all its subsystems, from `monitoring.health_checks` and
//! `monitoring.health_check_interval_ms`). Setting it takes effect at
//! once: each child's check task waits on the schedule as well as on its
//! timer, so a shorter interval starts counting from the change, and
//! switching checks off pauses them (and forgets the failures counted so
//! far) until they are switched on again.

use std::time::Duration;

use tokio::sync::watch;

/// How often health checks run, or `None` when they are off. Cloning
/// gives another handle on the same schedule. See the module docs.
#[derive(Debug, Clone)]
pub struct HealthSchedule {
    every: watch::Sender<Option<Duration>>,
}

impl HealthSchedule {
    /// A schedule that runs checks every `interval`.
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    pub fn every(interval: Duration) -> Self {
        assert!(
            !interval.is_zero(),
            "a health check interval must be greater than zero"
        );
        HealthSchedule {
            every: watch::Sender::new(Some(interval)),
        }
    }

    /// A schedule with checks off until [`set`](Self::set) turns them on.
    pub fn off() -> Self {
        HealthSchedule {
            every: watch::Sender::new(None),
        }
    }

    /// Changes the interval, or switches checks off with `None`, for every
    /// child on this schedule, at once. A zero interval counts as off.
    pub fn set(&self, every: Option<Duration>) {
        let every = every.filter(|interval| !interval.is_zero());
        self.every.send_if_modified(|current| {
            let changed = *current != every;
            *current = every;
            changed
        });
    }

    /// The interval now in effect; `None` when checks are off.
    pub fn current(&self) -> Option<Duration> {
        *self.every.borrow()
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<Option<Duration>> {
        self.every.subscribe()
    }
}

/// Runs `check` on `schedule` until `max_failures` checks in a row fail
/// (a panic counts as a failure), then returns how many failed.
pub(super) async fn run_checks(
    mut schedule: watch::Receiver<Option<Duration>>,
    max_failures: u32,
    check: &(dyn Fn() -> bool + Send + Sync),
) -> u32 {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    let mut failures = 0;
    // Whether the schedule can still change (its senders are alive).
    let mut open = true;
    loop {
        let every = *schedule.borrow_and_update();
        if every.is_none() {
            // Off: the failures counted so far are forgotten.
            failures = 0;
        }
        let tick = async {
            match every {
                Some(interval) => tokio::time::sleep(interval).await,
                None => std::future::pending().await,
            }
        };
        let change = async {
            if open {
                schedule.changed().await.is_ok()
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            () = tick => {}
            // A new schedule counts from now.
            still_open = change => {
                open = still_open;
                continue;
            }
        }
        let healthy = catch_unwind(AssertUnwindSafe(check)).unwrap_or(false);
        failures = if healthy { 0 } else { failures + 1 };
        if failures >= max_failures {
            return failures;
        }
    }
}
