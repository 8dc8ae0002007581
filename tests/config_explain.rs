//! The `config_explain` example, run as a real process with a real
//! environment: what a user sees.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The example binary, built by `cargo test` next to this test's binary.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("examples").join("config_explain");
    assert!(
        binary.exists(),
        "{} is missing; `cargo test` builds examples, so build it with \
         `cargo build --example config_explain`",
        binary.display()
    );
    binary
}

/// Runs the example with `args` and only the given `DAEMON_*` variables,
/// within a time bound.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(example_binary());
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("DAEMON_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn config_explain");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("config_explain did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

fn line_for<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no line for {key} in:\n{stdout}"))
}

#[test]
fn prints_every_value_of_the_reference_file_with_its_source() {
    let out = run(&["examples/daemon.toml"], &[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(line_for(&stdout, "name").contains("\"my-production-daemon\""));
    assert!(line_for(&stdout, "name").contains("examples/daemon.toml line 1"));
    let timeout = line_for(&stdout, "shutdown.timeout_ms");
    assert!(
        timeout.contains("30000") && timeout.contains("line 12"),
        "{timeout}"
    );
    assert!(line_for(&stdout, "pid_file").contains("default"));
    assert!(line_for(&stdout, "control.socket").contains("default"));
    assert!(line_for(&stdout, "service.notification_fd").contains("default"));
    // 28 keys, one line each, plus the header.
    assert_eq!(stdout.lines().count(), 29, "{stdout}");
}

#[test]
fn the_references_env_variables_take_effect() {
    let out = run(
        &[],
        &[
            ("DAEMON_NAME", "env-daemon"),
            ("DAEMON_LOGGING_LEVEL", "debug"),
            ("DAEMON_SHUTDOWN_TIMEOUT_MS", "60000"),
            ("DAEMON_PERFORMANCE_WORKER_THREADS", "16"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    for (key, value, var) in [
        ("name", "\"env-daemon\"", "DAEMON_NAME"),
        ("logging.level", "\"debug\"", "DAEMON_LOGGING_LEVEL"),
        ("shutdown.timeout_ms", "60000", "DAEMON_SHUTDOWN_TIMEOUT_MS"),
        (
            "performance.worker_threads",
            "16",
            "DAEMON_PERFORMANCE_WORKER_THREADS",
        ),
    ] {
        let line = line_for(&stdout, key);
        assert!(line.contains(value) && line.contains(var), "{line}");
    }
    assert!(line_for(&stdout, "shutdown.force_timeout_ms").contains("90000"));
}

#[test]
fn builder_values_win_over_env_and_file() {
    let out = run(
        &["examples/daemon.toml", "--worker-threads", "8"],
        &[("DAEMON_PERFORMANCE_WORKER_THREADS", "4")],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = line_for(&stdout, "performance.worker_threads");
    assert!(line.contains(" 8 ") && line.contains("builder"), "{line}");
}

#[test]
fn bad_input_exits_non_zero_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[logging]\nlevel = \"info\"\nlevle = \"debug\"\n").unwrap();
    let out = run(&[bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("logging.levle") && stderr.contains("line 3"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = run(&[], &[("DAEMON_PERFORMANCE_WORKER_THREADS", "lots")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("DAEMON_PERFORMANCE_WORKER_THREADS") && stderr.contains("\"lots\""),
        "{stderr}"
    );

    // The reference file pins force_timeout_ms = 45000, so a 60 s graceful
    // timeout from the environment is refused, naming both sources.
    let out = run(
        &["examples/daemon.toml"],
        &[("DAEMON_SHUTDOWN_TIMEOUT_MS", "60000")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("DAEMON_SHUTDOWN_TIMEOUT_MS") && stderr.contains("line 13"),
        "{stderr}"
    );

    let out = run(&["/nonexistent/daemon.toml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("/nonexistent/daemon.toml")
    );
}
