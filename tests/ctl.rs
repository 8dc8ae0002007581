//! `proc-daemon-ctl` run the way an operator runs it, against the demo
//! daemon (`examples/comprehensive.rs`) as a real process: each command,
//! its output and its exit code (0 done, 1 refused, 2 unreachable).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

fn ctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proc-daemon-ctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run proc-daemon-ctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_command_prints_what_happened_and_exits_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("demo.sock");
    let mut daemon = Process::start(
        &example_binary("comprehensive"),
        &[],
        &[("DAEMON_CONTROL_SOCKET", socket.to_str().unwrap())],
        "proc-daemon running as pid",
    );

    // status: a header naming the daemon, then the indented tree.
    let out = ctl(&socket, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    let pid = daemon.child.id().to_string();
    assert!(
        text.starts_with(&format!("proc-daemon (pid {pid}), up ")),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].starts_with("CHILD") && lines[1].ends_with("PATH"),
        "{text}"
    );
    assert!(lines[2].starts_with("root "), "{text}");
    for child in ["control", "heartbeat", "flaky", "stats", "sampler"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("  {child} "))
                && l.contains("running")
                && l.ends_with(&format!("root/{child}"))),
            "{child} in {text}"
        );
    }

    // --json: the protocol's status, parsed.
    let out = ctl(&socket, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pid"].as_u64(), Some(u64::from(daemon.child.id())));
    assert_eq!(json["tree"].as_array().unwrap().len(), 5);

    let out = ctl(&socket, &["reload"]);
    assert_eq!(
        (out.status.code(), stdout(&out).trim()),
        (Some(0), "reloaded: nothing changed")
    );

    let out = ctl(&socket, &["log-level", "debug"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = ctl(&socket, &["log-level", "chatty"]);
    assert_eq!(out.status.code(), Some(1), "a refused request exits 1");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chatty"),
        "{out:?}"
    );

    // events while a restart happens.
    let mut events = Command::new(env!("CARGO_BIN_EXE_proc-daemon-ctl"))
        .arg("--socket")
        .arg(&socket)
        .arg("events")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(events.stdout.take().unwrap()).lines();
    // The stream is open once the daemon has answered; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let out = ctl(&socket, &["restart", "root/stats"]);
    assert_eq!(
        (out.status.code(), stdout(&out).trim()),
        (Some(0), "restarted root/stats")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("stats") && l.ends_with("running"))
    {
        assert!(Instant::now() < deadline, "{seen:?}");
        seen.push(lines.next().unwrap().unwrap());
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("  stats (") && l.ends_with("restarting")),
        "{seen:?}"
    );
    assert!(
        seen[0].starts_with("20") && seen[0].contains('T'),
        "a timestamp first: {seen:?}"
    );
    events.kill().unwrap();
    events.wait().unwrap();

    let out = ctl(&socket, &["restart", "root/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no child is named `nope`"),
        "{out:?}"
    );

    let out = ctl(&socket, &["profile", "cpu", "1"]);
    if cfg!(feature = "profiling") {
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(Path::new(stdout(&out).trim()).exists());
    } else {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
    }

    let out = ctl(&socket, &["stop"]);
    assert_eq!(
        (out.status.code(), stdout(&out).trim()),
        (Some(0), "stopping")
    );
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).0, 0);

    // Nobody there any more: exit 2, with the path in the message.
    let out = ctl(&socket, &["status"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the daemon at"),
        "{out:?}"
    );
}

#[test]
fn the_socket_comes_from_the_daemons_own_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_proc-daemon-ctl"))
        .arg("status")
        .env("DAEMON_CONTROL_SOCKET", "/nonexistent/ctl.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ctl.sock"),
        "{out:?}"
    );
    // Neither the option nor the variable: a usage error, also 2.
    let out = Command::new(env!("CARGO_BIN_EXE_proc-daemon-ctl"))
        .arg("status")
        .env_remove("DAEMON_CONTROL_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--socket"),
        "{out:?}"
    );
}
