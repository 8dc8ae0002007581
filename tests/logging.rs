//! `[logging]` in a real process: a log file rotated by size, a file that
//! cannot be opened, JSON lines (feature `json-logs`), and a switch to
//! JSON on reload. Each test runs the `hot_reload` example on a file in a
//! temporary directory, removed at the end.

use std::path::Path;
use std::time::Duration;
#[cfg(feature = "json-logs")]
use std::time::Instant;

#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

const WAIT: Duration = Duration::from_secs(10);

fn start(file: &Path) -> Process {
    Process::start(
        &example_binary("hot_reload"),
        &[file.to_str().unwrap()],
        &[],
        "live: ",
    )
}

fn stop_cleanly(mut daemon: Process) {
    daemon.signal(libc::SIGTERM);
    let (code, _) = daemon.wait_exit(WAIT);
    assert_eq!(code, 0, "{:?}\n{}", daemon.seen, daemon.log());
}

#[test]
fn a_log_file_is_rotated_by_size_and_keeps_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("daemon.log");
    let config = dir.path().join("daemon.toml");
    let max_size = 2_000;
    let text = |name: &str| {
        format!(
            "name = \"{name}\"\n[logging]\nfile = \"{}\"\nmax_file_size = {max_size}\nmax_files = 3\n",
            log.display()
        )
    };
    std::fs::write(&config, text("r0")).unwrap();
    let mut daemon = start(&config);
    // Every reload logs a few lines: 60 of them make far more than
    // 3 × 2000 bytes.
    for round in 1..=60 {
        std::fs::write(&config, text(&format!("r{round}"))).unwrap();
        daemon.signal(libc::SIGHUP);
        daemon.expect_line("live: ", WAIT);
    }
    stop_cleanly(daemon);

    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("daemon.log"))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "max_files = 3: {files:?}");
    let longest_line = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::len)
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap();
    for file in &files {
        let size = std::fs::metadata(file).unwrap().len() as usize;
        assert!(
            size <= max_size + longest_line + 1,
            "{} is {size} bytes: more than max_file_size plus one line",
            file.display()
        );
    }
    // The last line of the run reached the file: it was flushed at exit.
    let current = std::fs::read_to_string(&log).unwrap();
    assert!(current.contains("daemon stopped"), "{current}");
    assert!(!current.contains('\u{1b}'), "no colour in a file");
}

#[test]
fn a_log_file_that_cannot_be_opened_is_an_error_naming_the_key_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.toml");
    let missing = dir.path().join("no-such-dir").join("daemon.log");
    std::fs::write(
        &config,
        format!("[logging]\nfile = \"{}\"\n", missing.display()),
    )
    .unwrap();
    let output = std::process::Command::new(example_binary("hot_reload"))
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`logging.file`") && stderr.contains(&missing.display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[cfg(feature = "json-logs")]
#[test]
fn json_logs_are_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.toml");
    std::fs::write(&config, "[logging]\njson = true\n").unwrap();
    let mut daemon = start(&config);
    daemon.signal(libc::SIGHUP);
    let deadline = Instant::now() + WAIT;
    while !daemon.logged("configuration reloaded") {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    stop_cleanly_json(&mut daemon);
    let log = daemon.log();
    assert!(log.lines().count() >= 3, "{log}");
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
}

#[cfg(feature = "json-logs")]
fn stop_cleanly_json(daemon: &mut Process) {
    daemon.signal(libc::SIGTERM);
    let (code, _) = daemon.wait_exit(WAIT);
    assert_eq!(code, 0, "{}", daemon.log());
}

#[cfg(feature = "json-logs")]
#[test]
fn a_reload_switches_text_logs_to_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.toml");
    std::fs::write(&config, "name = \"text\"\n").unwrap();
    let mut daemon = start(&config);
    std::fs::write(&config, "name = \"json\"\n[logging]\njson = true\n").unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.expect_line("live: ", WAIT);
    stop_cleanly_json(&mut daemon);
    let log = daemon.log();
    let last = log.lines().last().unwrap();
    let value: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|err| panic!("not JSON ({err}): {last}"));
    assert_eq!(value["fields"]["message"], "daemon stopped", "{last}");
}

/// With `console`, on a terminal: the multi-line layout (each event's
/// source location on a line of its own), in colour. `script` gives the
/// example a pseudo-terminal.
#[cfg(feature = "console")]
#[test]
fn the_console_layout_is_multi_line_and_coloured_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.toml");
    std::fs::write(&config, "name = \"console\"\n").unwrap();
    let command = format!(
        "timeout -s TERM 1 {} {}",
        example_binary("hot_reload").display(),
        config.display()
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("`script` (util-linux) runs the example on a pseudo-terminal");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("\u{1b}["), "coloured: {text}");
    let plain = strip_ansi(&text);
    assert!(
        plain
            .lines()
            .any(|line| line.trim_start().starts_with("at src/daemon/")),
        "a source-location line under each event: {plain}"
    );
    assert!(text.contains("live: name=\"console\""), "{text}");
}

/// `text` without its ANSI escape sequences (`ESC [ ... letter`).
#[cfg(feature = "console")]
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
