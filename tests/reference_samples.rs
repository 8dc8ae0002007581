//! The API reference's daemon samples, written as in the reference, run
//! against this crate and stopped with real signals sent to this test
//! process. One test function runs them in turn: signals are
//! process-wide, so nothing else may run beside them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use proc_daemon::prelude::{Actor, Context, Handler};
use proc_daemon::{ConfigReloaded, SignalConfig};

/// Sends `signal` to this process every 100 ms until dropped. Repeating
/// covers a daemon whose listeners register after the first one.
struct Pester {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pester {
    fn start(signal: libc::c_int, after: Duration) -> Pester {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(after);
            while !flag.load(Ordering::SeqCst) {
                // SAFETY: kill(2) on our own pid with a valid signal; the
                // test registered a handler for it first (see `guard`).
                unsafe { libc::kill(libc::getpid(), signal) };
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Pester {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Pester {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[path = "fixtures/wait.rs"]
mod wait;
use wait::within;

// ---- "Daemon Builder" ------------------------------------------------------

async fn builder_sample() -> proc_daemon::Result<()> {
    use proc_daemon::{Config, Daemon};
    use std::time::Duration;

    let config = Config::builder()
        .name("my-daemon")
        .shutdown_timeout(Duration::from_secs(30))
        .enable_metrics(true)
        .build()?;

    let _daemon = Daemon::builder(config)
        .with_task("main_service", |_shutdown| {
            Box::pin(async move {
                // Your async service code
                Ok(())
            })
        })
        .run()
        .await?;
    Ok(())
}

// ---- "Simple Subsystem" and "Using with Daemon" ----------------------------

use proc_daemon::{RestartPolicy, Result, ShutdownHandle, Subsystem};

static MY_SERVICE_STOPPED: AtomicUsize = AtomicUsize::new(0);

struct MyService {
    name: String,
}

impl Subsystem for MyService {
    fn run(
        &self,
        mut shutdown: ShutdownHandle,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send>> {
        let name = self.name.clone();
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        tracing::info!("service {} shutting down", name);
                        MY_SERVICE_STOPPED.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        tracing::info!("service {} working", name);
                    }
                }
            }
            Ok(())
        })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn restart_policy(&self) -> RestartPolicy {
        RestartPolicy::OnFailure
    }

    fn health_check(&self) -> Option<Box<dyn Fn() -> bool + Send + Sync>> {
        Some(Box::new(|| {
            // Simple health check
            true
        }))
    }
}

async fn subsystem_sample(config: proc_daemon::Config) -> Result<()> {
    use proc_daemon::Daemon;
    let _daemon = Daemon::builder(config)
        .with_subsystem(MyService {
            name: "worker".into(),
        })
        .run()
        .await?;
    Ok(())
}

// ---- "Error Handling" -------------------------------------------------------

async fn error_handling_main() -> proc_daemon::Result<()> {
    use proc_daemon::{Config, Daemon};
    let config = Config::new()?;
    Daemon::builder(config).run().await?;
    Ok(())
}

// ---- "Configuration Hot-Reload" ---------------------------------------------

/// The reference's sample, in a function that returns the live name it
/// printed (the sample's `Daemon` binding is the `DaemonExit` of `run`).
#[cfg(feature = "config-watch")]
async fn hot_reload_sample() -> proc_daemon::Result<String> {
    use proc_daemon::{Config, Daemon};

    let config = Config::builder()
        .name("hot-reload-daemon")
        .hot_reload(true) // Enable file watcher
        .build()?;

    let daemon = Daemon::builder(config).run().await?;

    // Later: read live config snapshot
    let live = daemon.config_snapshot();
    println!("Current name: {}", live.name);
    println!("Current log level: {:?}", live.logging.level);
    Ok(live.name.clone())
}

// ---- SIGHUP and SIGUSR1 -------------------------------------------------------

struct ReloadCounter(Arc<AtomicUsize>);
impl Actor for ReloadCounter {}
impl Handler<ConfigReloaded> for ReloadCounter {
    type Reply = ();
    async fn handle(&mut self, _: ConfigReloaded, _ctx: &mut Context<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_samples_run_and_stop_on_signals() {
    // Handle SIGTERM/SIGHUP/SIGUSR1 in this process before anything sends
    // them, so an early one cannot kill the test.
    let mut guard_term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let _guard_hup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let _guard_usr1 =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).unwrap();

    {
        let _term = Pester::start(libc::SIGTERM, Duration::from_millis(200));
        within("the builder sample", builder_sample())
            .await
            .expect("a clean stop");
    }
    {
        let _term = Pester::start(libc::SIGTERM, Duration::from_millis(200));
        let config = proc_daemon::Config::builder()
            .health_check_interval(Duration::from_millis(50))
            .build()
            .unwrap();
        within("the subsystem sample", subsystem_sample(config))
            .await
            .expect("a clean stop");
        assert_eq!(
            MY_SERVICE_STOPPED.load(Ordering::SeqCst),
            1,
            "cancelled once, not restarted"
        );
    }
    {
        let _term = Pester::start(libc::SIGTERM, Duration::from_millis(200));
        within("the error-handling main", error_handling_main())
            .await
            .expect("a clean stop");
    }
    #[cfg(feature = "config-watch")]
    {
        let _term = Pester::start(libc::SIGTERM, Duration::from_millis(200));
        let name = within("the hot-reload sample", hot_reload_sample())
            .await
            .expect("a clean stop");
        assert_eq!(name, "hot-reload-daemon");
    }
    {
        // SIGHUP reloads (subscribers hear of each) and never stops the daemon;
        // SIGUSR1 runs its handler.
        let usr1 = Arc::new(AtomicUsize::new(0));
        let usr1_seen = usr1.clone();
        let daemon = proc_daemon::Daemon::builder(proc_daemon::Config::new().unwrap())
            .with_signal_config(SignalConfig::new().on_sigusr1(move || {
                usr1_seen.fetch_add(1, Ordering::SeqCst);
            }))
            .build()
            .unwrap();
        let reloads = Arc::new(AtomicUsize::new(0));
        let counter = within(
            "spawning the subscriber",
            daemon
                .supervisor()
                .child("reload-counter", {
                    let reloads = reloads.clone();
                    move || ReloadCounter(reloads.clone())
                })
                .spawn(),
        )
        .await
        .unwrap();
        daemon.subscribe_reload(counter.recipient());
        for signal in [libc::SIGHUP, libc::SIGHUP, libc::SIGHUP, libc::SIGUSR1] {
            // SAFETY: as in `Pester`.
            unsafe { libc::kill(libc::getpid(), signal) };
            std::thread::sleep(Duration::from_millis(50));
        }
        within("three reloads and a SIGUSR1", async {
            while reloads.load(Ordering::SeqCst) < 3 || usr1.load(Ordering::SeqCst) < 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            !daemon.shutdown_handle().is_shutdown(),
            "SIGHUP started a shutdown"
        );
        let _term = Pester::start(libc::SIGTERM, Duration::ZERO);
        let exit = within("run", daemon.run()).await.expect("a clean stop");
        assert_eq!(
            exit.reason(),
            &proc_daemon::ShutdownReason::Signal(proc_daemon::signal::Signal::Terminate)
        );
    }
    // The guard saw the signals too; drain it so nothing is left pending.
    let _ = tokio::time::timeout(Duration::from_millis(10), guard_term.recv()).await;
}

// ---- "Metrics Collection", "Resource Tracking", "Profiling" ----------------
// As written in the reference, inside the `cfg` blocks it puts them in.

#[test]
fn metrics_collection_sample() {
    #[cfg(feature = "metrics")]
    {
        use proc_daemon::metrics::MetricsCollector;

        let collector = MetricsCollector::new();

        // Counters
        collector.increment_counter("requests_total", 1);

        // Gauges
        collector.set_gauge("active_connections", 42);

        // Histograms
        use std::time::Duration;
        collector.record_histogram("request_latency_ms", Duration::from_millis(150));

        // Snapshot
        let snapshot = collector.get_metrics();
        println!("Uptime: {:?}", snapshot.uptime);
        println!("Worker threads: {}", snapshot.worker_count);

        // What the sample recorded is in the snapshot and the exposition.
        assert_eq!(snapshot.counters["requests_total"], 1);
        assert_eq!(snapshot.gauges["active_connections"], 42.0);
        assert_eq!(snapshot.histograms["request_latency_ms"].count, 1);
        let text = proc_daemon::metrics::render();
        assert!(text.contains("requests_total 1"), "{text}");
        assert!(text.contains("request_latency_seconds_sum 0.15"), "{text}");
    }
}

#[tokio::test]
async fn resource_tracking_sample() {
    #[cfg(feature = "metrics")]
    {
        use proc_daemon::resources::ResourceTracker;
        #[allow(unused_imports)]
        use std::sync::Arc;

        let tracker = ResourceTracker::new();

        // Start tracking in background
        let tracker_clone = tracker.clone();
        tokio::spawn(async move {
            tracker_clone.start().await;
        });

        // Read current resource usage
        let current = tracker.current_usage();
        println!("Memory: {} MB", current.memory_mb);
        println!("CPU: {} %", current.cpu_percent);
        println!("Threads: {}", current.thread_count);

        assert!(current.memory_mb > 0, "{current:?}");
        assert!(current.thread_count >= 1, "{current:?}");
    }
}

/// The reference's CPU and heap profiling samples; they write
/// `cpu_profile.pb` and `heap_profile.json` in the working directory,
/// which this test then checks and removes.
#[test]
fn profiling_samples() -> proc_daemon::Result<()> {
    #[cfg(feature = "profiling")]
    {
        use proc_daemon::profiling::CpuProfiler;

        let cpu = CpuProfiler::start()?;
        // ... run workload ...
        cpu.stop_to_file("cpu_profile.pb")?;

        // Analyze with: go tool pprof cpu_profile.pb
        let written = std::fs::metadata("cpu_profile.pb").map(|m| m.len());
        std::fs::remove_file("cpu_profile.pb").unwrap();
        assert!(written.unwrap() > 0);
    }
    #[cfg(feature = "heap-profiling")]
    {
        use proc_daemon::profiling::heap::HeapProfiler;

        let hp = HeapProfiler::start(Some("heap_profile.json"))?;
        // ... run workload ...
        hp.stop();

        // Analyze with dhat viewer
        let written = std::fs::read_to_string("heap_profile.json");
        std::fs::remove_file("heap_profile.json").unwrap();
        assert!(written.unwrap().contains("dhatFileVersion"));
    }
    Ok(())
}

// ---- "Coordination & Events", "High-Resolution Timing", "Scheduler Hints" --

#[test]
fn channel_facade_sample() {
    use proc_daemon::coord::chan;

    let (tx, rx) = chan::unbounded::<String>();
    tx.send("hello".into()).ok();

    // Non-blocking receive
    let mut got = None;
    if let Ok(msg) = chan::try_recv(&rx) {
        println!("Got: {}", msg);
        got = Some(msg);
    }
    assert_eq!(got.as_deref(), Some("hello"));
}

#[test]
fn subsystem_events_sample() {
    #[cfg(feature = "lockfree-coordination")]
    {
        use proc_daemon::SubsystemManager;

        let manager = SubsystemManager::new();
        manager.enable_events();

        // Poll events without blocking
        if let Some(ev) = manager.try_next_event() {
            match ev {
                proc_daemon::subsystem::SubsystemEvent::StateChanged {
                    id,
                    name,
                    state,
                    at,
                } => {
                    println!("[{:?}] {} -> {:?}", at, name, state);
                    let _ = id;
                }
            }
        }
    }
}

#[test]
fn high_resolution_timing_sample() {
    #[cfg(feature = "high-res-timing")]
    {
        use proc_daemon::timing;

        let t0 = timing::now();
        // ... do work ...
        let t1 = timing::now();
        let elapsed = t1.duration_since(t0);

        println!("Elapsed: {} nanoseconds", elapsed.as_nanos());
    }
}

#[test]
fn scheduler_hints_sample() -> proc_daemon::Result<()> {
    #[cfg(feature = "scheduler-hints")]
    {
        use proc_daemon::Config;
        use proc_daemon::scheduler;

        let config = Config::new()?;

        // Apply process-level hints (best-effort)
        scheduler::apply_process_hints(&config);

        // Apply runtime-level hints (currently noop)
        scheduler::apply_runtime_hints();
    }
    Ok(())
}
