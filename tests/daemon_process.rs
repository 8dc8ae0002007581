//! Process-level tests: each starts the `shutdown_scenarios` example as a
//! real process, sends it real signals, and checks its output and exit
//! code. Every wait is bounded; a daemon still running at the end of a
//! test is killed.
//!
//! `cargo test` builds the examples before it runs tests, so the binary is
//! found next to this test's own executable.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The example binary, from `target/<profile>/examples/`.
fn scenario_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<bin>
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join("examples").join("shutdown_scenarios");
    assert!(
        binary.exists(),
        "{} is missing; `cargo test` builds it (or run `cargo build --example shutdown_scenarios`)",
        binary.display()
    );
    binary
}

/// A running daemon, its stdout lines arriving on a channel. Killed on
/// drop if still running.
struct Daemon {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    /// Everything written to stderr so far (the daemon's logs).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Daemon {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut command = Command::new(scenario_binary());
        command
            .args(args)
            .env("DAEMON_LOGGING_COLOR", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start the scenario daemon");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        };
        daemon.expect_line("ready", Duration::from_secs(20));
        daemon
    }

    /// Waits for a line starting with `prefix`.
    fn expect_line(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line `{prefix}` within {within:?}; saw {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the daemon closed stdout before `{prefix}`; saw {:?}",
                        self.seen
                    )
                }
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet
        // reaped, so not reused) and a valid signal number.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits for the exit; returns its code and how long it took.
    fn wait_exit(&mut self, within: Duration) -> (i32, Duration) {
        let (status, took) = self.wait_status(within);
        let code = status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {status:?}; saw {:?}", self.seen));
        (code, took)
    }

    /// Waits for the process to end, however it ends.
    fn wait_status(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Collect whatever it printed last.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() < within,
                "still running after {within:?}; saw {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The daemon's stderr so far.
    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether stderr has `words` so far.
    fn logged(&self, words: &str) -> bool {
        self.stderr.lock().unwrap().contains(words)
    }

    fn saw(&self, line: &str) -> bool {
        self.seen.iter().any(|l| l == line)
    }

    /// Asserts that each of the first `subsystems` logged its cleanup and
    /// that the daemon reported a clean stop on SIGTERM.
    fn assert_every_cleanup_and_a_sigterm_stop(&self, subsystems: usize) {
        for index in 0..subsystems {
            assert!(
                self.saw(&format!("cleanup done: sub-{index}")),
                "sub-{index} did not clean up: {:?}",
                self.seen
            );
        }
        assert!(
            self.saw("stopped: received SIGTERM (code 0)"),
            "{:?}",
            self.seen
        );
    }
}

#[test]
fn sigterm_stops_ten_subsystems_cleanly_and_promptly() {
    let mut daemon = Daemon::start(&["--subsystems", "10"], &[]);
    daemon.signal(libc::SIGTERM);
    let (code, took) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", daemon.seen);
    daemon.assert_every_cleanup_and_a_sigterm_stop(10);
    // Promptly: nothing waits for a tick (the generous bound is for a
    // loaded CI machine; the benchmark measures the real figure).
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn two_seconds_of_cleanup_completes_within_a_five_second_graceful_timeout() {
    let mut daemon = Daemon::start(
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
    let mut daemon = Daemon::start(
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
    let mut daemon = Daemon::start(
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
    let mut daemon = Daemon::start(
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
    let mut daemon = Daemon::start(&["--subsystems", "2"], &[]);
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
    let mut daemon = Daemon::start(
        &["--subsystems", "8"],
        &[("DAEMON_PERFORMANCE_WORKER_THREADS", "4")],
    );
    daemon.signal(libc::SIGHUP);
    daemon.signal(libc::SIGTERM);
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", daemon.seen);
    daemon.assert_every_cleanup_and_a_sigterm_stop(8);
}

#[test]
fn a_second_sigint_forces_the_shutdown() {
    let mut daemon = Daemon::start(
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
    let mut daemon = Daemon::start(&["--subsystems", "1", "--panic-in-cleanup"], &[]);
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
    let mut daemon = Daemon::start(&["--pid-file", pid_path.to_str().unwrap()], &[]);
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
    let mut first = Daemon::start(&["--pid-file", pid_arg], &[]);
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
    let mut daemon = Daemon::start(&["--pid-file", pid_path.to_str().unwrap()], &[]);
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap().trim(),
        daemon.child.id().to_string()
    );
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).0, 0);
}

#[test]
fn request_shutdown_from_a_subsystem_stops_the_daemon() {
    let mut daemon = Daemon::start(
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
    let mut daemon = Daemon::start(&["--no-signals", "--request-shutdown-after-ms", "200"], &[]);
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", daemon.seen);
}

#[test]
fn a_restart_storm_escalates_to_the_root_and_exits_non_zero() {
    let mut daemon = Daemon::start(&["--subsystems", "1", "--restart-storm"], &[]);
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
