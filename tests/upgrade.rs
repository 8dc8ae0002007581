//! Upgrades with zero dropped connections, against
//! `examples/zero_downtime.rs` run as a real process under continuous
//! load: clients open new connections throughout and check every echoed
//! byte, while the daemon is upgraded 10 times in a row through its
//! control socket, then once to a binary that fails at start. Nothing may
//! be refused, fail or be lost; each old process exits 0; the PID file and
//! the control socket follow the new process.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proc_daemon::ipc::{Client, ClientError};

#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

/// What the clients saw.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    connections: AtomicU64,
    exchanges: AtomicU64,
    failures: Mutex<Vec<String>>,
    /// When each connection was answered, for the longest gap.
    answered: Mutex<Vec<Instant>>,
}

fn client_loop(port: u16, id: usize, load: Arc<Load>) {
    let mut n = 0u64;
    while !load.stop.load(Ordering::Relaxed) {
        n += 1;
        let result = (|| -> std::io::Result<()> {
            let mut stream = TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut reader = BufReader::new(stream.try_clone()?);
            for k in 0..3 {
                let payload = format!(
                    "client {id} connection {n} line {k} {}",
                    "x".repeat(k * 100)
                );
                stream.write_all(format!("{payload}\n").as_bytes())?;
                let mut line = String::new();
                reader.read_line(&mut line)?;
                let expected = format!("echo: {payload} (pid ");
                if !line.starts_with(&expected) || !line.ends_with(")\n") {
                    return Err(std::io::Error::other(format!(
                        "sent {payload:?}, got {line:?}"
                    )));
                }
                load.exchanges.fetch_add(1, Ordering::Relaxed);
                if k == 0 {
                    load.answered.lock().unwrap().push(Instant::now());
                }
            }
            Ok(())
        })();
        load.connections.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = result {
            load.failures
                .lock()
                .unwrap()
                .push(format!("client {id} connection {n}: {err}"));
        }
    }
}

/// Waits for `pid`, a child of this process (it is the subreaper of the
/// daemons' orphans), and returns its exit code.
fn wait_pid(pid: u32, within: Duration) -> i32 {
    let pid = libc::pid_t::try_from(pid).unwrap();
    let deadline = Instant::now() + within;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on a pid this process may wait for, writing the
        // status into a live local.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            assert!(
                libc::WIFEXITED(status),
                "pid {pid} ended by a signal: {status}"
            );
            return libc::WEXITSTATUS(status);
        }
        assert!(
            rc == 0,
            "waitpid({pid}) failed: {}",
            std::io::Error::last_os_error()
        );
        assert!(
            Instant::now() < deadline,
            "pid {pid} still running after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pid_in(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn ten_upgrades_under_load_drop_nothing_and_a_failed_one_keeps_serving() {
    // Orphans (each old daemon's successor, once the old one exits) are
    // reparented here, so that their exits can be checked.
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag.
    let subreaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(subreaper, 0);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("echo.sock");
    let pid_file = dir.path().join("echo.pid");
    let mut first = Process::start(
        &example_binary("zero_downtime"),
        &["127.0.0.1:0"],
        &[
            ("DAEMON_CONTROL_SOCKET", socket.to_str().unwrap()),
            ("DAEMON_PID_FILE", pid_file.to_str().unwrap()),
            ("DAEMON_SHUTDOWN_TIMEOUT_MS", "5000"),
        ],
        "echo on ",
    );
    let line = first.seen.last().unwrap().clone();
    let port: u16 = line
        .strip_prefix("echo on 127.0.0.1:")
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    first.expect_line("ready", Duration::from_secs(10));

    let load = Arc::new(Load::default());
    let clients: Vec<_> = (0..4)
        .map(|id| {
            let load = load.clone();
            std::thread::spawn(move || client_loop(port, id, load))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    let mut current = first.child.id();
    let mut took = Vec::new();
    for round in 0..10 {
        let started = Instant::now();
        let pid = Client::connect(&socket)
            .unwrap()
            .upgrade(None)
            .unwrap_or_else(|err| panic!("upgrade {round}: {err}"));
        took.push(started.elapsed());
        assert_ne!(pid, current);
        assert_eq!(pid_in(&pid_file), pid, "the PID file names the new process");
        // The old process drains and exits 0.
        if round == 0 {
            assert_eq!(first.wait_exit(Duration::from_secs(20)).0, 0);
        } else {
            assert_eq!(
                wait_pid(current, Duration::from_secs(20)),
                0,
                "old pid {current}"
            );
        }
        current = pid;
        // The control socket is the new process's.
        let status = Client::connect(&socket).unwrap().status().unwrap();
        assert_eq!(status.pid, current);
        std::thread::sleep(Duration::from_millis(100));
    }

    // A successor that fails at start: refused, and the daemon serves on.
    let failing = dir.path().join("broken");
    std::fs::write(
        &failing,
        "#!/bin/sh\necho 'broken on purpose' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &failing,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let refused = Client::connect(&socket)
        .unwrap()
        .upgrade(Some(&failing))
        .unwrap_err();
    assert!(matches!(refused, ClientError::Refused(_)), "{refused}");
    assert!(
        refused.to_string().contains("ended before it was ready"),
        "{refused}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        pid_in(&pid_file),
        current,
        "the PID file is this process's again"
    );
    assert_eq!(
        Client::connect(&socket).unwrap().status().unwrap().pid,
        current
    );

    load.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let failures = load.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    let connections = load.connections.load(Ordering::Relaxed);
    assert!(connections > 100, "only {connections} connections");
    let mut answered = load.answered.lock().unwrap().clone();
    answered.sort();
    let gap = answered
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "{connections} connections, {} exchanges, 0 failures; upgrades took {:?} (max {:?}); longest gap between answered connections {gap:?}",
        load.exchanges.load(Ordering::Relaxed),
        took,
        took.iter().max().unwrap()
    );

    Client::connect(&socket).unwrap().stop().unwrap();
    assert_eq!(wait_pid(current, Duration::from_secs(20)), 0);
    assert!(
        !socket.exists() && !pid_file.exists(),
        "removed by the last process"
    );
}
