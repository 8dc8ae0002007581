//! The reference's `metrics_server` example as a real process: its
//! `/metrics` passes `promtool check metrics`, and a SIGTERM turns
//! `/readyz` to 503 while the daemon drains, then it exits 0.
//!
//! `promtool` comes from `$PROMTOOL`, else `PATH`. `.ci/run` extracts it
//! from Debian's `prometheus` package; elsewhere:
//! `apt-get download prometheus && dpkg -x prometheus_*.deb /tmp/prom`,
//! then `PROMTOOL=/tmp/prom/usr/bin/promtool`.
#![cfg(feature = "metrics")]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "fixtures/http.rs"]
mod http;
#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

fn promtool() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return PathBuf::from(path);
    }
    process::on_path("promtool").expect(
            "promtool is needed: set PROMTOOL or put it on PATH (see this file's docs for how to get it)",
        )
}

#[test]
fn the_example_serves_valid_metrics_and_drains_unready() {
    let mut daemon = Process::start(
        &example_binary("metrics_server"),
        &[],
        &[("DAEMON_MONITORING_HTTP_LISTEN", "127.0.0.1:0")],
        "serving http://",
    );
    let line = daemon.seen.last().unwrap().clone();
    let addr: SocketAddr = line
        .strip_prefix("serving http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("an address in {line:?}"));
    // Let the actors work a little, so that every series has values.
    std::thread::sleep(Duration::from_millis(300));
    let metrics = http::get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for series in [
        "proc_daemon_actor_messages_handled_total{actor=\"root/counter\"",
        "proc_daemon_process_resident_memory_bytes ",
        "requests_total ",
        "request_latency_seconds_bucket{le=\"+Inf\"}",
        "example_ticks_total ",
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
    let mut check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let verdict = check.wait_with_output().unwrap();
    assert!(
        verdict.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&verdict.stdout),
        String::from_utf8_lossy(&verdict.stderr)
    );
    assert_eq!(http::get(addr, "/readyz").status, 200);

    daemon.signal(libc::SIGTERM);
    daemon.expect_line("closing connections", Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_millis(800);
    let ready = loop {
        let ready = http::get(addr, "/readyz");
        if ready.status == 503 || Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ready.status, 503, "{}", ready.text());
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{}", daemon.log());
}
