//! The daemon in-process, with signal handling off: building, typed
//! messages to an actor spawned under `Daemon::supervisor()`, programmatic
//! shutdown, the reverse stop order, restarts of subsystems under their
//! policy, and the handle's reason and remaining time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proc_daemon::prelude::*;
use proc_daemon::{ShutdownReason, SignalConfig, SubsystemEvent, SubsystemManager, SubsystemState};

/// A config with short timeouts and signals left alone.
fn config() -> Config {
    Config::builder()
        .name("test-daemon")
        .shutdown_timeout(Duration::from_secs(2))
        .worker_threads(2)
        .ignore_env()
        .build()
        .expect("a valid config")
}

fn builder() -> proc_daemon::DaemonBuilder {
    Daemon::builder(config()).with_signal_config(SignalConfig::none())
}

/// A daemon whose one subsystem, "service", waits for the shutdown.
fn daemon_with_an_idle_service() -> Daemon {
    builder()
        .with_task("service", |mut shutdown| async move {
            shutdown.cancelled().await;
            Ok(())
        })
        .build()
        .unwrap()
}

#[path = "fixtures/wait.rs"]
mod wait;
use wait::{until, within};

/// Waits, bounded, until `counter` reaches `target`.
async fn until_at_least(what: &str, counter: &AtomicUsize, target: usize) {
    until(what, || counter.load(Ordering::SeqCst) >= target).await;
}

#[path = "fixtures/counter.rs"]
mod counter;
use counter::{Add, Counter};

#[tokio::test]
async fn actors_under_the_root_supervisor_and_programmatic_shutdown() {
    let daemon = daemon_with_an_idle_service();
    let counter = within(
        "spawning a child",
        daemon
            .supervisor()
            .child("counter", || Counter(0))
            .restart(RestartPolicy::OnFailure)
            .mailbox(daemon.mailbox_options())
            .spawn(),
    )
    .await
    .unwrap();
    counter.tell(Add(1)).await.unwrap();
    assert_eq!(counter.ask(Add(2)).await.unwrap(), 3);

    let handle = daemon.shutdown_handle();
    assert!(!handle.is_shutdown());
    daemon.clone().shutdown();
    let exit = within("run", daemon.run()).await.expect("a clean stop");
    assert_eq!(exit.exit_code(), 0);
    assert_eq!(
        exit.reason(),
        &ShutdownReason::Requested("Daemon::shutdown was called".into())
    );
    // Reverse start order: the actor added last stops first.
    assert_eq!(exit.report().stopped, ["counter", "service"]);
    assert!(handle.is_shutdown());
    assert!(!counter.is_alive());
    assert!(
        counter.ask(Add(1)).await.is_err(),
        "an ask after shutdown must fail at once"
    );
}

#[tokio::test]
async fn a_failing_task_restarts_and_an_always_task_is_not_restarted_by_shutdown() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let permanent_runs = Arc::new(AtomicUsize::new(0));
    let permanent_counted = permanent_runs.clone();
    struct Permanent(Arc<AtomicUsize>);
    impl Subsystem for Permanent {
        fn run(
            &self,
            mut shutdown: ShutdownHandle,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                shutdown.cancelled().await;
                Ok(())
            })
        }
        fn name(&self) -> &str {
            "permanent"
        }
        fn restart_policy(&self) -> RestartPolicy {
            RestartPolicy::Always
        }
    }
    let daemon = builder()
        .with_subsystem(Permanent(permanent_counted))
        .with_task("flaky", move |mut shutdown| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    return Err(Error::subsystem("flaky", "first run fails"));
                }
                shutdown.cancelled().await;
                Ok(())
            }
        })
        .build()
        .unwrap();
    until_at_least("the restart", &runs, 2).await;
    daemon.shutdown();
    let exit = within("run", daemon.run()).await.expect("a clean stop");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one failure, one restart");
    assert_eq!(
        permanent_runs.load(Ordering::SeqCst),
        1,
        "a permanent subsystem returning because of shutdown must not restart"
    );
    assert_eq!(exit.exit_code(), 0);
}

#[tokio::test]
async fn cleanup_sees_the_reason_and_the_time_left() {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let daemon = builder()
        .with_task("cleaner", move |mut shutdown| {
            let record = record.clone();
            async move {
                assert_eq!(shutdown.time_remaining(), None);
                shutdown.cancelled().await;
                *record.lock().unwrap() = Some((shutdown.reason(), shutdown.time_remaining()));
                Ok(())
            }
        })
        .build()
        .unwrap();
    daemon.request_shutdown("maintenance");
    within("run", daemon.run()).await.unwrap();
    let (reason, left) = seen
        .lock()
        .unwrap()
        .clone()
        .expect("the task saw the shutdown");
    assert_eq!(
        reason,
        Some(ShutdownReason::Requested("maintenance".into()))
    );
    let left = left.expect("time_remaining is known during shutdown");
    assert!(
        left > Duration::from_millis(1500) && left <= Duration::from_secs(2),
        "{left:?} of a 2 s graceful timeout"
    );
}

#[tokio::test]
async fn a_subsystem_panic_is_a_failure_that_restarts_it() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let daemon = builder()
        .with_task("panicky", move |mut shutdown| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(run > 0, "first run panics");
                shutdown.cancelled().await;
                Ok(())
            }
        })
        .build()
        .unwrap();
    until_at_least("the restart", &runs, 2).await;
    daemon.shutdown();
    within("run", daemon.run()).await.unwrap();
}

#[tokio::test]
async fn a_failing_health_check_restarts_a_subsystem() {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runs = Arc::new(AtomicUsize::new(0));
    struct Checked {
        healthy: Arc<std::sync::atomic::AtomicBool>,
        runs: Arc<AtomicUsize>,
    }
    impl Subsystem for Checked {
        fn run(
            &self,
            mut shutdown: ShutdownHandle,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                shutdown.cancelled().await;
                Ok(())
            })
        }
        fn name(&self) -> &str {
            "checked"
        }
        fn health_check(&self) -> Option<Box<dyn Fn() -> bool + Send + Sync>> {
            let healthy = self.healthy.clone();
            Some(Box::new(move || healthy.load(Ordering::SeqCst)))
        }
    }
    let config = Config::builder()
        .worker_threads(1)
        .health_check_interval(Duration::from_millis(20))
        .ignore_env()
        .build()
        .unwrap();
    // The reference's event polling, through a manager handed to the
    // builder.
    let manager = SubsystemManager::new();
    manager.enable_events();
    let daemon = Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .with_subsystem_manager(manager.clone())
        .with_subsystem(Checked {
            healthy: healthy.clone(),
            runs: runs.clone(),
        })
        .build()
        .unwrap();
    until_at_least("a restart by the health check", &runs, 2).await;
    healthy.store(true, Ordering::SeqCst);
    daemon.shutdown();
    within("run", daemon.run()).await.unwrap();
    let mut states = Vec::new();
    while let Some(SubsystemEvent::StateChanged { name, state, .. }) = manager.try_next_event() {
        assert_eq!(&*name, "checked");
        states.push(state);
    }
    assert!(
        states.contains(&SubsystemState::Restarting),
        "the failed health check showed as a restart: {states:?}"
    );
}

#[tokio::test]
async fn duplicate_subsystem_names_are_refused() {
    let err = builder()
        .with_task("twin", |_| async { Ok(()) })
        .with_task("twin", |_| async { Ok(()) })
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("twin"), "{err}");
}

#[tokio::test]
async fn run_twice_is_an_error_not_a_hang() {
    let daemon = builder().build().unwrap();
    let other = daemon.clone();
    daemon.shutdown();
    within("run", daemon.run()).await.unwrap();
    let err = within("second run", other.run()).await.unwrap_err();
    assert!(err.to_string().contains("already"), "{err}");
}

#[tokio::test]
async fn run_returns_a_forced_stop_when_the_executor_is_shut_down_under_it() {
    // Nothing of the daemon's own shutdown runs: the workers are stopped
    // from outside, which ends the root actor without a drain. `run` must
    // not wait forever for a report that will never come.
    let daemon = daemon_with_an_idle_service();
    daemon
        .executor()
        .drain()
        .begin(Duration::ZERO)
        .expect("the executor was running");
    let err = within("run", daemon.run())
        .await
        .expect_err("an unplanned stop is not a clean one");
    assert_eq!(err.exit_code(), proc_daemon::daemon::EXIT_FORCED);
    assert!(
        err.to_string().contains("root actor ended unexpectedly"),
        "{err}"
    );
}

/// The threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .count()
}

#[tokio::test]
async fn a_daemon_dropped_without_run_stops_its_subsystems_and_workers() {
    let cleaned_up = Arc::new(AtomicUsize::new(0));
    let cleanup = cleaned_up.clone();
    let config = Config::builder()
        .name("dropme")
        .worker_threads(2)
        .ignore_env()
        .build()
        .unwrap();
    let daemon = Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .with_task("service", move |mut shutdown| {
            let cleanup = cleanup.clone();
            async move {
                shutdown.cancelled().await;
                cleanup.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .unwrap();
    assert_eq!(threads_named("dropme-worker-"), 2);
    drop(daemon);
    until_at_least("the subsystem's cleanup", &cleaned_up, 1).await;
    within("the workers' exit", async {
        while threads_named("dropme-worker-") > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn an_error_from_question_mark_reaches_the_supervisor_event_with_its_type() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let opened = gate.clone();
    let missing = std::env::temp_dir().join(format!(
        "proc-daemon-test-missing-{}.toml",
        std::process::id()
    ));
    let daemon = builder()
        .with_task("reader", move |mut shutdown| {
            let opened = opened.clone();
            let missing = missing.clone();
            async move {
                // Restarted after the failure, it waits for the shutdown.
                tokio::select! {
                    () = opened.notified() => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
                // `?` on an io::Error, with no map_err.
                let text = std::fs::read_to_string(&missing)?;
                tracing::info!(bytes = text.len(), "read");
                Ok(())
            }
        })
        .build()
        .unwrap();
    let mut events = daemon.subsystems().subscribe();
    gate.notify_one();
    let reason = within("the failure event", async {
        loop {
            let event = events.recv().await.expect("the daemon is running");
            let SubsystemEvent::StateChanged { name, state, .. } = event;
            if let SubsystemState::Failed { reason } = state {
                assert_eq!(&*name, "reader");
                return reason;
            }
        }
    })
    .await;
    let error = reason.error().expect("a failure carries its error");
    let io = error
        .downcast_ref::<std::io::Error>()
        .unwrap_or_else(|| panic!("the event's error is not the io::Error itself: {error:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    daemon.shutdown();
    within("run", daemon.run()).await.unwrap();
}

#[test]
fn question_mark_keeps_the_original_error_as_the_source() {
    use std::error::Error as _;

    fn read(path: &std::path::Path) -> proc_daemon::Result<String> {
        Ok(std::fs::read_to_string(path)?)
    }
    let err = read(std::path::Path::new("/nonexistent/proc-daemon")).unwrap_err();
    assert_eq!(err.kind(), proc_daemon::ErrorKind::Io);
    let source = err.source().expect("the io::Error is the source");
    assert_eq!(
        source.downcast_ref::<std::io::Error>().map(|e| e.kind()),
        Some(std::io::ErrorKind::NotFound)
    );

    fn parse(text: &str) -> proc_daemon::Result<toml::Table> {
        Ok(toml::from_str(text)?)
    }
    let err = parse("= not toml").unwrap_err();
    assert!(err.source().unwrap().is::<toml::de::Error>());

    fn boxed() -> proc_daemon::Result<()> {
        let failure: Box<dyn std::error::Error + Send + Sync> = "a boxed failure".into();
        Err(failure)?
    }
    let err = boxed().unwrap_err();
    assert_eq!(err.to_string(), "a boxed failure");
    assert!(err.source().is_some());
}
