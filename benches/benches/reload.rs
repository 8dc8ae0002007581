//! From a change to the new configuration snapshot: proc-daemon's file
//! watcher (`hot_reload`, feature `config-watch`), proc-daemon's SIGHUP
//! reload, and the proc-daemon 1.x crate's watcher (`upstream`, 1.1.3,
//! the anchor: the one case where it reloads at all).
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench reload
//! cargo bench -p proc-daemon-benches --bench reload -- --edits 50 --json target/reload.json
//! ```
//!
//! Each role runs in a fresh copy of this binary. It starts a daemon on a
//! TOML file in a temporary directory, then `--edits` times: writes the
//! file in place with a new `name` (the watcher roles), or writes it and
//! sends itself SIGHUP (the SIGHUP role), and polls `config_snapshot()`
//! every 20 µs until the new name is there. The time runs from just
//! before the write (or the signal) to the poll that sees it. Edits are
//! 30 ms apart, so no reload coalesces with the one before. It reports
//! the median and the 99th percentile.
//!
//! 1.1.3 watches the file itself (its inode) and reloads on the first
//! event, without settling; proc-daemon waits for 10 ms of quiet after the
//! last event (`src/reload/watch.rs`), which protects against reading a
//! half-written file and costs those 10 ms. 1.1.3 does not reload on
//! SIGHUP (its `signal.rs` shuts down: "initiating shutdown for now"), so
//! that row has no peer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use proc_daemon_benches::{arg_or, percentile, write_json_results};

const ROLE: &str = "RELOAD_BENCH_ROLE";
const EDITS: &str = "RELOAD_BENCH_EDITS";
const ROLES: [&str; 3] = ["watch", "sighup", "upstream-watch"];

fn main() {
    match std::env::var(ROLE) {
        Ok(role) => run_role(&role),
        Err(_) => drive(),
    }
}

fn drive() {
    let edits: usize = arg_or("--edits", 50);
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut json = serde_json::Map::new();
    println!("change to new snapshot, {edits} edits each (median, p99):");
    for role in ROLES {
        let output = Command::new(&exe)
            .env(ROLE, role)
            .env(EDITS, edits.to_string())
            .output()
            .expect("run a role");
        assert!(
            output.status.success(),
            "role {role} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut samples: Vec<Duration> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.strip_prefix("sample "))
            .map(|nanos| Duration::from_nanos(nanos.trim().parse().expect("nanoseconds")))
            .collect();
        assert_eq!(samples.len(), edits, "role {role}: one sample per edit");
        samples.sort();
        let median = percentile(&samples, 0.5);
        let p99 = percentile(&samples, 0.99);
        println!("  {role:<16} median {median:>10.2?}   p99 {p99:>10.2?}");
        json.insert(
            role.to_owned(),
            serde_json::json!({
                "median_ns": median.as_nanos() as u64,
                "p99_ns": p99.as_nanos() as u64,
                "edits": edits,
            }),
        );
    }
    write_json_results(&serde_json::Value::Object(json));
}

// ---- the roles ----------------------------------------------------------------

fn run_role(role: &str) {
    let edits: usize = std::env::var(EDITS)
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("the parent sets the edit count");
    let dir = std::env::temp_dir().join(format!("reload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let file = dir.join("daemon.toml");
    std::fs::write(&file, named(0)).expect("the first file");
    match role {
        "watch" => ours(&file, edits, false),
        "sighup" => ours(&file, edits, true),
        "upstream-watch" => upstream_watch(&file, edits),
        other => panic!("unknown role {other}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn named(n: usize) -> String {
    format!("name = \"edit-{n}\"\n")
}

/// Waits until `current()` is `edit-{n}`, polling every 20 µs, for at most
/// 5 s; returns the time since `since`.
fn until_named(current: impl Fn() -> String, n: usize, since: Instant) -> Duration {
    let want = format!("edit-{n}");
    loop {
        if current() == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "no snapshot named {want} within 5 s"
        );
        std::thread::sleep(Duration::from_micros(20));
    }
}

fn report(sample: Duration) {
    println!("sample {}", sample.as_nanos());
}

fn ours(file: &Path, edits: usize, by_signal: bool) {
    let config = proc_daemon::Config::builder()
        .file(file)
        .hot_reload(!by_signal)
        .log_level(proc_daemon::LogLevel::Warn)
        .ignore_env()
        .build()
        .expect("a valid config");
    let daemon = proc_daemon::Daemon::builder(config)
        .build()
        .expect("the daemon starts");
    std::thread::sleep(Duration::from_millis(100));
    for n in 1..=edits {
        let started = Instant::now();
        std::fs::write(file, named(n)).expect("write the file");
        let started = if by_signal {
            let started = Instant::now();
            // SAFETY: kill(2) on this process with a valid signal number;
            // the daemon handles SIGHUP.
            unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
            started
        } else {
            started
        };
        report(until_named(
            || daemon.config_snapshot().name.clone(),
            n,
            started,
        ));
        std::thread::sleep(Duration::from_millis(30));
    }
    daemon.shutdown();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(daemon.run())
        .expect("a clean stop");
}

fn upstream_watch(file: &Path, edits: usize) {
    let config = upstream::Config::builder()
        .name("edit-0")
        .hot_reload(true)
        .log_level(upstream::LogLevel::Warn)
        .build()
        .expect("a valid config");
    let daemon = upstream::Daemon::builder(config)
        .with_config_path(PathBuf::from(file))
        .build()
        .expect("the 1.x daemon builds");
    std::thread::sleep(Duration::from_millis(100));
    for n in 1..=edits {
        let started = Instant::now();
        std::fs::write(file, named(n)).expect("write the file");
        report(until_named(
            || daemon.config_snapshot().name.clone(),
            n,
            started,
        ));
        std::thread::sleep(Duration::from_millis(30));
    }
}
