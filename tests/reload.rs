//! Configuration reload with real files and real signals.
//!
//! The process tests run the `hot_reload` example, edit its file, send it
//! SIGHUP and read its output; the in-process tests call `Daemon::reload`
//! and read `Daemon::config_snapshot`. Every wait is bounded, and every
//! file lives in a temporary directory removed at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proc_daemon::prelude::*;
use proc_daemon::reload::RESTART_KEYS;

#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("proc-daemon-reload-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("daemon.toml")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// The example, started on `file`.
fn start(file: &Path) -> Process {
    Process::start(
        &example_binary("hot_reload"),
        &[file.to_str().unwrap()],
        &[],
        "live: ",
    )
}

const WAIT: Duration = Duration::from_secs(10);

fn stop_cleanly(mut daemon: Process) {
    daemon.signal(libc::SIGTERM);
    let (code, _) = daemon.wait_exit(WAIT);
    assert_eq!(code, 0, "{:?}\n{}", daemon.seen, daemon.log());
}

#[test]
fn a_sighup_applies_an_edit_and_a_restart_key_keeps_its_running_value() {
    let dir = TempDir::new("edit");
    write(
        &dir.file(),
        "name = \"first\"\n[logging]\nlevel = \"info\"\n",
    );
    let mut daemon = start(&dir.file());
    write(
        &dir.file(),
        "name = \"second\"\n[logging]\nlevel = \"warn\"\n[performance]\nworker_threads = 3\n",
    );
    daemon.signal(libc::SIGHUP);
    let line = daemon.expect_line("live: ", WAIT);
    assert_eq!(
        line,
        r#"live: name="second" level=warn changed=["name", "logging.level"]"#
    );
    daemon.expect_log(
        "`performance.worker_threads` changed in the configuration, but it needs a restart",
        WAIT,
    );
    stop_cleanly(daemon);
}

#[test]
fn invalid_toml_keeps_the_old_config_and_a_fix_then_applies() {
    let dir = TempDir::new("invalid");
    write(&dir.file(), "name = \"good\"\n");
    let mut daemon = start(&dir.file());
    write(&dir.file(), "name = \"half-writ\n[shutdown\n");
    daemon.signal(libc::SIGHUP);
    daemon.expect_log("the configuration did not reload", WAIT);
    let log = daemon.log();
    let file = dir.file().display().to_string();
    assert!(
        log.contains(&format!("{file} line ")),
        "the error names the file and the line:\n{log}"
    );
    // A bad value: the error names the key too.
    write(
        &dir.file(),
        "name = \"good\"\n[shutdown]\ntimeout_ms = -5\n",
    );
    daemon.signal(libc::SIGHUP);
    daemon.expect_log("`shutdown.timeout_ms` = -5", WAIT);
    assert!(daemon.log().contains(&format!("{file} line 3")));
    write(&dir.file(), "name = \"fixed\"\n");
    daemon.signal(libc::SIGHUP);
    let line = daemon.expect_line("live: ", WAIT);
    assert!(line.starts_with(r#"live: name="fixed""#), "{line}");
    stop_cleanly(daemon);
}

#[test]
fn a_missing_file_keeps_the_old_config_and_recreating_it_applies() {
    let dir = TempDir::new("missing");
    write(&dir.file(), "name = \"here\"\n");
    let mut daemon = start(&dir.file());
    std::fs::remove_file(dir.file()).unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.expect_log("could not read config file", WAIT);
    write(&dir.file(), "name = \"back\"\n");
    daemon.signal(libc::SIGHUP);
    let line = daemon.expect_line("live: ", WAIT);
    assert!(line.starts_with(r#"live: name="back""#), "{line}");
    stop_cleanly(daemon);
}

#[test]
fn a_hundred_sighups_in_a_burst_coalesce_and_the_last_content_wins() {
    let dir = TempDir::new("burst");
    write(&dir.file(), "name = \"n0\"\n");
    let mut daemon = start(&dir.file());
    for round in 1..=100 {
        write(&dir.file(), &format!("name = \"n{round}\"\n"));
        daemon.signal(libc::SIGHUP);
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let line = daemon.expect_line("live: ", WAIT);
        if line.starts_with(r#"live: name="n100""#) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", daemon.seen);
    }
    // stderr is read on a thread of its own: the reload's log line can
    // arrive after the stdout line that followed it.
    let reloads = daemon.expect_log_times("configuration reloaded", 1, WAIT);
    assert!(
        (1..100).contains(&reloads),
        "100 SIGHUPs gave {reloads} reloads; a burst is coalesced"
    );
    stop_cleanly(daemon);
}

#[test]
fn a_level_change_to_debug_shows_debug_lines() {
    let dir = TempDir::new("level");
    write(&dir.file(), "[logging]\nlevel = \"info\"\n");
    let mut daemon = start(&dir.file());
    assert!(!daemon.log().contains(" DEBUG "), "{}", daemon.log());
    write(&dir.file(), "[logging]\nlevel = \"debug\"\n");
    daemon.signal(libc::SIGHUP);
    daemon.expect_line("live: ", WAIT);
    daemon.expect_log(" DEBUG ", WAIT);
    stop_cleanly(daemon);
}

// ---- in process --------------------------------------------------------------

fn daemon_on(file: &Path) -> Daemon {
    let config = Config::builder().file(file).ignore_env().build().unwrap();
    Daemon::builder(config)
        .with_signal_config(proc_daemon::SignalConfig::none())
        .build()
        .unwrap()
}

#[path = "fixtures/wait.rs"]
mod wait;
use wait::within;

#[tokio::test]
async fn reload_returns_its_outcome_and_the_snapshot_follows() {
    let dir = TempDir::new("outcome");
    write(&dir.file(), "name = \"a\"\n[shutdown]\ntimeout_ms = 1000\n");
    let daemon = daemon_on(&dir.file());
    let started = daemon.config_snapshot();

    write(&dir.file(), "name = \"a\"\n[shutdown]\ntimeout_ms = 2000\n");
    match within("reload", daemon.reload()).await {
        ReloadOutcome::Applied { changed, .. } => assert_eq!(
            changed,
            [
                "shutdown.timeout_ms",
                "shutdown.force_timeout_ms",
                "shutdown.kill_timeout_ms"
            ]
        ),
        other => panic!("{other:?}"),
    }
    let live = daemon.config_snapshot();
    assert_eq!(live.shutdown.timeout_ms, 2000);
    assert_eq!(
        started.shutdown.timeout_ms, 1000,
        "an old snapshot stays as it was"
    );

    write(&dir.file(), "name = \n");
    match within("reload", daemon.reload()).await {
        ReloadOutcome::Failed(err) => assert_eq!(err.line(), Some(1), "{err}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        daemon.config_snapshot(),
        live,
        "a failed reload keeps the snapshot"
    );
    assert_eq!(daemon.reload_stats().failed(), 1);
    assert_eq!(daemon.reload_stats().applied(), 1);

    // An empty file, as between a truncate and a write, is not applied.
    write(&dir.file(), "");
    match within("reload", daemon.reload()).await {
        ReloadOutcome::Failed(err) => assert!(err.to_string().contains("empty"), "{err}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*daemon.config_snapshot(), *live);

    daemon.shutdown();
    let exit = within("run", daemon.run()).await.unwrap();
    assert_eq!(exit.config_snapshot().shutdown.timeout_ms, 2000);
}

#[tokio::test]
async fn every_restart_key_keeps_its_running_value() {
    let dir = TempDir::new("restart-keys");
    write(&dir.file(), "");
    let daemon = daemon_on(&dir.file());
    let running = daemon.config_snapshot();
    let workdir = dir.0.display();
    // A changed value for each restart-only key.
    let edits = [
        ("pid_file", format!("pid_file = \"{workdir}/x.pid\"")),
        ("work_dir", format!("work_dir = \"{workdir}\"")),
        ("hot_reload", "hot_reload = true".to_owned()),
        (
            "logging.file",
            format!("[logging]\nfile = \"{workdir}/x.log\""),
        ),
        (
            "logging.max_file_size",
            "[logging]\nmax_file_size = 4096".to_owned(),
        ),
        ("logging.max_files", "[logging]\nmax_files = 2".to_owned()),
        (
            "performance.worker_threads",
            "[performance]\nworker_threads = 5".to_owned(),
        ),
        (
            "performance.thread_pinning",
            "[performance]\nthread_pinning = true".to_owned(),
        ),
        (
            "performance.memory_pool_size",
            "[performance]\nmemory_pool_size = 0".to_owned(),
        ),
        (
            "performance.numa_aware",
            "[performance]\nnuma_aware = true".to_owned(),
        ),
        (
            "performance.lock_free",
            "[performance]\nlock_free = false".to_owned(),
        ),
        (
            "performance.process_priority",
            "[performance]\nprocess_priority = 3".to_owned(),
        ),
        (
            "monitoring.enable_metrics",
            "[monitoring]\nenable_metrics = true".to_owned(),
        ),
        (
            "monitoring.http_listen",
            "[monitoring]\nhttp_listen = \"127.0.0.1:9464\"".to_owned(),
        ),
        (
            "control.socket",
            format!("[control]\nsocket = \"{workdir}/ctl.sock\""),
        ),
        (
            "service.notification_fd",
            "[service]\nnotification_fd = 9".to_owned(),
        ),
    ];
    assert_eq!(edits.len(), RESTART_KEYS.len(), "every restart-only key");
    for (key, text) in edits {
        write(&dir.file(), &text);
        match within("reload", daemon.reload()).await {
            ReloadOutcome::Applied {
                changed,
                needs_restart,
            } => {
                assert_eq!(needs_restart, [key], "{text}");
                assert!(changed.is_empty(), "{key}: {changed:?}");
            }
            other => panic!("{key}: {other:?}"),
        }
        assert_eq!(
            *daemon.config_snapshot(),
            *running,
            "{key} stays as it runs"
        );
    }
    daemon.shutdown();
    within("run", daemon.run()).await.unwrap();
}

/// Counts what it is told; its `started` hook counts its incarnations.
struct Tally {
    seen: Arc<AtomicU64>,
    starts: Arc<AtomicU64>,
}

impl Actor for Tally {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> std::result::Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Tick;

impl Handler<Tick> for Tally {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _ctx: &mut Context<Self>) {
        self.seen.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn reloads_under_a_steady_stream_lose_no_message_and_restart_nothing() {
    let dir = TempDir::new("stream");
    write(&dir.file(), "name = \"s0\"\n");
    let daemon = daemon_on(&dir.file());
    let seen = Arc::new(AtomicU64::new(0));
    let starts = Arc::new(AtomicU64::new(0));
    let tally = within(
        "spawn",
        daemon
            .supervisor()
            .child("tally", {
                let (seen, starts) = (seen.clone(), starts.clone());
                move || Tally {
                    seen: seen.clone(),
                    starts: starts.clone(),
                }
            })
            .spawn(),
    )
    .await
    .unwrap();
    let sender = {
        let tally = tally.clone();
        daemon.executor().spawn(async move {
            let mut sent = 0u64;
            for _ in 0..20_000 {
                tally.tell(Tick).await.unwrap();
                sent += 1;
                if sent.is_multiple_of(500) {
                    tokio::task::yield_now().await;
                }
            }
            sent
        })
    };
    for round in 1..=20 {
        write(&dir.file(), &format!("name = \"s{round}\"\n"));
        assert!(matches!(
            within("reload", daemon.reload()).await,
            ReloadOutcome::Applied { .. }
        ));
    }
    let sent = within("the sender", sender).await.unwrap();
    within("every message handled", async {
        while seen.load(Ordering::SeqCst) < sent {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(seen.load(Ordering::SeqCst), sent);
    assert_eq!(
        starts.load(Ordering::SeqCst),
        1,
        "a reload restarts nothing"
    );
    assert_eq!(daemon.config_snapshot().name, "s20");
    daemon.shutdown();
    within("run", daemon.run()).await.unwrap();
}

/// A subsystem that waits for the shutdown; its health check counts its
/// calls and passes.
struct Checked(Arc<AtomicU64>);

impl proc_daemon::Subsystem for Checked {
    fn run(
        &self,
        mut shutdown: proc_daemon::ShutdownHandle,
    ) -> proc_daemon::subsystem::SubsystemFuture {
        Box::pin(async move {
            shutdown.cancelled().await;
            Ok(())
        })
    }

    fn name(&self) -> &str {
        "checked"
    }

    fn health_check(&self) -> Option<Box<dyn Fn() -> bool + Send + Sync>> {
        let calls = self.0.clone();
        Some(Box::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            true
        }))
    }
}

#[tokio::test]
async fn the_health_check_interval_and_switch_change_live() {
    let dir = TempDir::new("health");
    write(
        &dir.file(),
        "[monitoring]\nhealth_check_interval_ms = 3600000\n",
    );
    let calls = Arc::new(AtomicU64::new(0));
    let config = Config::builder()
        .file(dir.file())
        .ignore_env()
        .build()
        .unwrap();
    let daemon = Daemon::builder(config)
        .with_signal_config(proc_daemon::SignalConfig::none())
        .with_subsystem(Checked(calls.clone()))
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "an hourly check has not run"
    );

    write(&dir.file(), "[monitoring]\nhealth_check_interval_ms = 20\n");
    match within("reload", daemon.reload()).await {
        ReloadOutcome::Applied { changed, .. } => {
            assert_eq!(changed, ["monitoring.health_check_interval_ms"])
        }
        other => panic!("{other:?}"),
    }
    within("checks every 20 ms", async {
        while calls.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    write(
        &dir.file(),
        "[monitoring]\nhealth_checks = false\nhealth_check_interval_ms = 20\n",
    );
    assert!(matches!(
        within("reload", daemon.reload()).await,
        ReloadOutcome::Applied { .. }
    ));
    let after_off = calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        calls.load(Ordering::SeqCst) <= after_off + 1,
        "switched off, the checks stop"
    );
    daemon.shutdown();
    within("run", daemon.run()).await.unwrap();
}
