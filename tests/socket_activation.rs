//! Socket activation as systemd does it, with `systemd-socket-activate`
//! (Debian's `systemd` package; it needs no systemd as PID 1): two named
//! TCP sockets, each served by its own subsystem of
//! `examples/socket_activation.rs`; the same binary binding its own
//! addresses when not activated; and a passed socket of the wrong kind
//! refused in words.
//!
//! Without `systemd-socket-activate` on PATH the tests are skipped with a
//! message, unless `PROC_DAEMON_REQUIRE_SERVICE_TOOLS` is set (`.ci/run` sets it and
//! installs both packages), which makes that a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

fn activator() -> Option<PathBuf> {
    process::service_tool("systemd-socket-activate", "systemd")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects, retrying while the activator is not listening yet.
fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                return stream;
            }
            Err(err) => {
                assert!(Instant::now() < deadline, "cannot connect to {port}: {err}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

struct Activated(Child);

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn each_subsystem_serves_on_the_socket_passed_under_its_name() {
    let Some(activator) = activator() else { return };
    let (http, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("daemon.log");
    let mut activated = Activated(
        Command::new(activator)
            .args([
                "-l",
                &format!("127.0.0.1:{http}"),
                "-l",
                &format!("127.0.0.1:{admin}"),
            ])
            .arg("--fdname=http:admin")
            .args(["-E", "DAEMON_LOGGING_COLOR=false"])
            // Addresses nobody should bind: the passed sockets win.
            .arg(example_binary("socket_activation"))
            .args(["127.0.0.1:1", "127.0.0.1:2"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );

    // The first connection starts the daemon; it is answered once the
    // daemon accepts on the passed socket.
    let mut stream = connect(http);
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200 OK"), "{response:?}");
    assert!(response.contains("hello from http (pid "), "{response:?}");

    let mut stream = connect(admin);
    stream.write_all(b"hi\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "admin: hi\n");
    drop(stream);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text
            .matches("listener passed by the service manager")
            .count()
            == 2
        {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A clean stop on SIGTERM (the activator exec'd the daemon).
    let pid = libc::pid_t::try_from(activated.0.id()).unwrap();
    // SAFETY: kill(2) on the child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = activated.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn without_activation_the_same_binary_binds_its_own_addresses() {
    let mut daemon = Process::start(
        &example_binary("socket_activation"),
        &["127.0.0.1:0", "127.0.0.1:0"],
        &[],
        "http on ",
    );
    let line = daemon.seen.last().unwrap().clone();
    let port: u16 = line
        .strip_prefix("http on 127.0.0.1:")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    daemon.expect_line("running as pid", Duration::from_secs(10));
    let mut stream = connect(port);
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.contains("hello from http"), "{response:?}");
    let bound = daemon.expect_log_times("listener bound by the program", 2, Duration::from_secs(5));
    assert_eq!(bound, 2, "{}", daemon.log());
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).0, 0);
}

#[test]
fn a_passed_socket_of_the_wrong_kind_is_refused_in_words() {
    let Some(activator) = activator() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("http.sock");
    let out = Command::new(activator)
        .args(["-l", path.to_str().unwrap(), "--fdname=http"])
        .args(["-E", "DAEMON_LOGGING_COLOR=false"])
        .arg(example_binary("socket_activation"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut activated = Activated(out);
    // Starts it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&path).is_err() {
        assert!(Instant::now() < deadline, "the activator never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = loop {
        if let Some(status) = activated.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    activated
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("the socket passed as `http` is a Unix socket; a TCP listener was asked for"),
        "{stderr}"
    );
}
