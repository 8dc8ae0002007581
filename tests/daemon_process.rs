//! Process-level tests: each starts the `shutdown_scenarios` example as a
//! real process, sends it real signals, and checks its output and exit
//! code. Every wait is bounded; a daemon still running at the end of a
//! test is killed.
//!
//! `cargo test` builds the examples before it runs tests, so the binary is
//! found next to this test's own executable.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "fixtures/process.rs"]
mod process;
use process::{Process as Daemon, example_binary};

fn scenario_binary() -> PathBuf {
    example_binary("shutdown_scenarios")
}

/// Starts the scenario daemon and waits for its `ready` line.
fn start(args: &[&str], env: &[(&str, &str)]) -> Daemon {
    Daemon::start(&scenario_binary(), args, env, "ready")
}

/// Asserts that each of the first `subsystems` logged its cleanup and
/// that the daemon reported a clean stop on SIGTERM.
fn assert_every_cleanup_and_a_sigterm_stop(daemon: &Daemon, subsystems: usize) {
    for index in 0..subsystems {
        assert!(
            daemon.saw(&format!("cleanup done: sub-{index}")),
            "sub-{index} did not clean up: {:?}",
            daemon.seen
        );
    }
    assert!(
        daemon.saw("stopped: received SIGTERM (code 0)"),
        "{:?}",
        daemon.seen
    );
}

#[test]
fn sigterm_stops_ten_subsystems_cleanly_and_promptly() {
    let mut daemon = start(&["--subsystems", "10"], &[]);
    daemon.signal(libc::SIGTERM);
    let (code, took) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", daemon.seen);
    assert_every_cleanup_and_a_sigterm_stop(&daemon, 10);
    // Promptly: nothing waits for a tick (the generous bound is for a
    // loaded CI machine; the benchmark measures the real figure).
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn two_seconds_of_cleanup_completes_within_a_five_second_graceful_timeout() {
    let mut daemon = start(
        &["--subsystems", "1", "--cleanup-ms", "2000"],
        &[("DAEMON_SHUTDOWN_TIMEOUT_MS", "5000")],
    );
    daemon.signal(libc::SIGTERM);
    let (code, took) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", daemon.seen);
    assert!(daemon.saw("cleanup done: sub-0"), "{:?}", daemon.seen);
    assert!(
        took >= Duration::from_millis(2000),
        "cleanup was cut short: {took:?}"
    );
}

#[test]
fn a_subsystem_ignoring_cancellation_is_aborted_at_the_force_timeout() {
    let mut daemon = start(
        &["--subsystems", "2", "--ignore-cancel"],
        &[
            ("DAEMON_SHUTDOWN_TIMEOUT_MS", "300"),
            ("DAEMON_SHUTDOWN_FORCE_TIMEOUT_MS", "1000"),
            ("DAEMON_SHUTDOWN_KILL_TIMEOUT_MS", "4000"),
        ],
    );
    daemon.signal(libc::SIGTERM);
    let (code, took) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 2, "a forced stop exits 2: {:?}", daemon.seen);
    assert!(daemon.saw("cleanup done: sub-0") && daemon.saw("cleanup done: sub-1"));
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_millis(4000),
        "aborted at {took:?}, not at the force timeout"
    );
    let last = daemon.seen.last().cloned().unwrap_or_default();
    assert!(
        last.contains("stubborn"),
        "the error names the aborted child: {last}"
    );
}

#[test]
fn a_thread_blocked_in_cleanup_is_ended_by_the_kill_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pid_path = dir.path().join("killed.pid");
    let mut daemon = start(
        &[
            "--block-on-cancel",
            "--pid-file",
            pid_path.to_str().unwrap(),
        ],
        &[
            ("DAEMON_SHUTDOWN_TIMEOUT_MS", "200"),
            ("DAEMON_SHUTDOWN_FORCE_TIMEOUT_MS", "500"),
            ("DAEMON_SHUTDOWN_KILL_TIMEOUT_MS", "1500"),
        ],
    );
    assert!(pid_path.exists());
    daemon.signal(libc::SIGTERM);
    let (code, took) = daemon.wait_exit(Duration::from_secs(10));
    assert!(daemon.saw("blocking the thread"), "{:?}", daemon.seen);
    assert_eq!(code, 3, "the kill stage exits 3: {:?}", daemon.seen);
    assert!(!pid_path.exists(), "the kill stage removes the PID file");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "killed at {took:?}"
    );
}

#[test]
fn without_a_free_realtime_signal_the_kill_stage_is_a_sigkill() {
    use std::os::unix::process::ExitStatusExt;
    let mut daemon = start(
        &["--block-on-cancel", "--no-free-realtime-signal"],
        &[
            ("DAEMON_SHUTDOWN_TIMEOUT_MS", "200"),
            ("DAEMON_SHUTDOWN_FORCE_TIMEOUT_MS", "500"),
            ("DAEMON_SHUTDOWN_KILL_TIMEOUT_MS", "1500"),
        ],
    );
    daemon.signal(libc::SIGTERM);
    let (status, took) = daemon.wait_status(Duration::from_secs(10));
    assert!(daemon.saw("blocking the thread"), "{:?}", daemon.seen);
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{status:?}: {:?}",
        daemon.seen
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "killed at {took:?}"
    );
}

#[test]
fn sighup_three_times_keeps_the_daemon_running() {
    let mut daemon = start(&["--subsystems", "2"], &[]);
    for _ in 0..3 {
        daemon.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        matches!(daemon.child.try_wait(), Ok(None)),
        "SIGHUP stopped the daemon: {:?}",
        daemon.seen
    );
    assert!(
        !daemon.saw("cleanup done: sub-0"),
        "SIGHUP cancelled a subsystem"
    );
    daemon.signal(libc::SIGTERM);
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0);
}

#[test]
fn back_to_back_sighup_and_sigterm_reach_a_daemon_with_four_workers() {
    // Four workers: the listener's and three others that watch the same
    // wake-up descriptor. SIGHUP and SIGTERM are sent back to back, so the
    // listener may read both in one go: the reload must not stop the
    // daemon, the SIGTERM must. A worker that consumed the wake-up for the
    // others (an earlier bug) left this daemon running.
    let mut daemon = start(
        &["--subsystems", "8"],
        &[("DAEMON_PERFORMANCE_WORKER_THREADS", "4")],
    );
    daemon.signal(libc::SIGHUP);
    daemon.signal(libc::SIGTERM);
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", daemon.seen);
    assert_every_cleanup_and_a_sigterm_stop(&daemon, 8);
}

#[test]
fn a_second_sigint_forces_the_shutdown() {
    let mut daemon = start(
        &["--subsystems", "2", "--cleanup-ms", "10000"],
        &[("DAEMON_SHUTDOWN_TIMEOUT_MS", "20000")],
    );
    daemon.signal(libc::SIGINT);
    daemon.expect_line("cleanup started", Duration::from_secs(5));
    let second = Instant::now();
    daemon.signal(libc::SIGINT);
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 2, "{:?}", daemon.seen);
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "the second SIGINT did not force"
    );
    assert!(
        !daemon.saw("cleanup done: sub-0"),
        "a forced stop waited for cleanup"
    );
    // The report names what was cut, as the force timeout's does: both
    // subsystems were in their cleanup.
    let last = daemon.seen.last().cloned().unwrap_or_default();
    assert!(
        last.contains("\"sub-0\"") && last.contains("\"sub-1\""),
        "the error names the subsystems it cut: {last}"
    );
}

#[test]
fn a_panic_in_cleanup_exits_4_and_names_the_subsystem() {
    let mut daemon = start(&["--subsystems", "1", "--panic-in-cleanup"], &[]);
    daemon.signal(libc::SIGTERM);
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(
        code, 4,
        "a failed cleanup is not a clean exit: {:?}",
        daemon.seen
    );
    assert!(daemon.saw("cleanup done: sub-0"), "{:?}", daemon.seen);
    let last = daemon.seen.last().cloned().unwrap_or_default();
    assert!(
        last.contains("cleanup failed in `fragile`") && last.contains("fails on purpose"),
        "the error names the subsystem and its panic: {last}"
    );
}

#[test]
fn sigusr1_and_sigusr2_without_handlers_are_logged_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let pid_path = dir.path().join("usr.pid");
    let mut daemon = start(&["--pid-file", pid_path.to_str().unwrap()], &[]);
    daemon.signal(libc::SIGUSR1);
    daemon.signal(libc::SIGUSR2);
    // Both are logged once the root actor has them; then the daemon is
    // still running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(daemon.logged("SIGUSR1 received with no handler set; ignored")
        && daemon.logged("SIGUSR2 received with no handler set; ignored"))
    {
        assert!(Instant::now() < deadline, "not logged: {}", daemon.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        matches!(daemon.child.try_wait(), Ok(None)),
        "a stray SIGUSR1/2 ended the daemon"
    );
    assert!(pid_path.exists());
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).0, 0);
    assert!(!pid_path.exists(), "the PID file outlived a clean exit");
}

#[test]
fn a_symlink_at_the_pid_path_is_refused_and_its_target_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let to_victim = dir.path().join("to-victim.pid");
    std::os::unix::fs::symlink(&victim, &to_victim).unwrap();
    let dangling = dir.path().join("dangling.pid");
    let target = dir.path().join("would-be-created");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    for link in [&to_victim, &dangling] {
        let output = Command::new(scenario_binary())
            .arg("--pid-file")
            .arg(link)
            .env("DAEMON_LOGGING_COLOR", "false")
            .stderr(Stdio::null())
            .output()
            .expect("run the daemon");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains(&link.display().to_string()) && stdout.contains("symbolic link"),
            "{stdout}"
        );
        assert!(
            std::fs::symlink_metadata(link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link itself was removed or replaced"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!target.exists(), "the dangling link's target was created");
}

#[test]
fn a_second_instance_on_the_same_pid_file_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let pid_path = dir.path().join("scenario.pid");
    let pid_arg = pid_path.to_str().unwrap();
    let mut first = start(&["--pid-file", pid_arg], &[]);
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap().trim(),
        first.child.id().to_string()
    );
    let second = Command::new(scenario_binary())
        .args(["--pid-file", pid_arg])
        .env("DAEMON_LOGGING_COLOR", "false")
        .stderr(Stdio::null())
        .output()
        .expect("run the second instance");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&pid_path.display().to_string()), "{stdout}");
    assert!(
        stdout.contains(&format!("pid {}", first.child.id())),
        "{stdout}"
    );
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait_exit(Duration::from_secs(10)).0, 0);
    assert!(!pid_path.exists(), "the PID file outlived a clean exit");
}

#[test]
fn a_stale_pid_file_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let pid_path = dir.path().join("stale.pid");
    std::fs::write(&pid_path, "4194304\n").unwrap();
    let mut daemon = start(&["--pid-file", pid_path.to_str().unwrap()], &[]);
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap().trim(),
        daemon.child.id().to_string()
    );
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).0, 0);
}

#[test]
fn request_shutdown_from_a_subsystem_stops_the_daemon() {
    let mut daemon = start(
        &["--subsystems", "2", "--request-shutdown-after-ms", "200"],
        &[],
    );
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", daemon.seen);
    assert!(daemon.saw("requesting shutdown"));
    assert!(daemon.saw("cleanup done: sub-1"));
    assert!(
        daemon
            .seen
            .iter()
            .any(|l| l.starts_with("stopped: requested: the requester subsystem is done")),
        "{:?}",
        daemon.seen
    );
}

#[test]
fn request_shutdown_works_with_signal_handling_off() {
    let mut daemon = start(&["--no-signals", "--request-shutdown-after-ms", "200"], &[]);
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", daemon.seen);
}

#[test]
fn a_restart_storm_escalates_to_the_root_and_exits_non_zero() {
    let mut daemon = start(&["--subsystems", "1", "--restart-storm"], &[]);
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 1, "{:?}", daemon.seen);
    let starts = daemon
        .seen
        .iter()
        .filter(|l| *l == "crasher starting")
        .count();
    assert_eq!(
        starts, 4,
        "1 start + 3 restarts, then the root gives up: {:?}",
        daemon.seen
    );
    assert!(
        daemon.saw("cleanup done: sub-0"),
        "the healthy sibling was stopped cleanly"
    );
    let last = daemon.seen.last().cloned().unwrap_or_default();
    assert!(last.contains("restart intensity exceeded"), "{last}");
}
