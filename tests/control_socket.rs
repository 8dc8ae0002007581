//! The control socket against the demo daemon (`examples/comprehensive.rs`)
//! run as a real process, with `DAEMON_CONTROL_SOCKET` set: every request,
//! a restart that leaves the siblings alone, the events of a restart as it
//! happens, bad and abusive input, the file's mode, stale and live
//! sockets, and a peer of another uid.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proc_daemon::ipc::{Client, ClientError, Status};

#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

const READY: &str = "proc-daemon running as pid";

fn start_demo(socket: &Path) -> Process {
    Process::start(
        &example_binary("comprehensive"),
        &[],
        &[("DAEMON_CONTROL_SOCKET", socket.to_str().unwrap())],
        READY,
    )
}

fn connect(socket: &Path) -> Client {
    Client::connect(socket)
        .expect("the control socket accepts")
        .with_timeout(Duration::from_secs(10))
}

fn child<'a>(status: &'a Status, path: &str) -> &'a proc_daemon::ipc::ChildStatus {
    status
        .tree
        .iter()
        .find(|c| c.path == path)
        .unwrap_or_else(|| panic!("no {path} in {:#?}", status.tree))
}

/// Waits until `check` holds for a fresh status.
fn wait_for_status(socket: &Path, what: &str, check: impl Fn(&Status) -> bool) -> Status {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = connect(socket).status().unwrap();
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "never {what}: {status:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_request_is_answered_by_the_running_demo() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("demo.sock");
    let mut daemon = start_demo(&socket);

    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "the socket's mode"
    );

    let mut client = connect(&socket);
    // The flaky subsystem fails once after 1.5 s and is restarted.
    let status = wait_for_status(&socket, "flaky restarted", |s| {
        s.tree
            .iter()
            .any(|c| c.path == "root/flaky" && c.restarts == 1 && c.state == "running")
    });
    assert_eq!(status.pid, daemon.child.id());
    assert_eq!(status.name, "proc-daemon");
    assert_eq!(status.config_source, "defaults, environment and code");
    assert!(!status.shutting_down);
    let paths: Vec<&str> = status.tree.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "root/control",
            "root/heartbeat",
            "root/flaky",
            "root/stats",
            "root/sampler"
        ]
    );
    for c in &status.tree {
        assert_eq!(c.state, "running", "{c:?}");
        assert!(c.uptime_s.is_some(), "{c:?}");
    }

    // reload: nothing changed (no file, same environment).
    let reloaded = client.reload().unwrap();
    assert_eq!(reloaded.outcome, "unchanged");

    // log-level: a good one until the next reload, a bad one refused.
    client.log_level("debug").unwrap();
    assert_eq!(client.status().unwrap().log_level, "debug");
    let bad = client.log_level("loud").unwrap_err();
    assert!(matches!(bad, ClientError::Refused(_)), "{bad}");
    assert_eq!(bad.exit_code(), 1);
    client.reload().unwrap();
    assert_eq!(
        client.status().unwrap().log_level,
        "info",
        "a reload puts logging.level back"
    );

    // restart: only that child, the others keep their identity.
    let before = client.status().unwrap();
    client.restart("root/stats").unwrap();
    let after = client.status().unwrap();
    for (old, new) in before.tree.iter().zip(&after.tree) {
        assert_eq!(old.path, new.path);
        assert_eq!(old.id, new.id, "{} kept its identity", old.path);
        if old.path == "root/stats" {
            assert_eq!(new.restarts, old.restarts + 1);
            assert!(new.uptime_s.unwrap() < old.uptime_s.unwrap());
        } else {
            assert_eq!(new.restarts, old.restarts, "{} was not restarted", old.path);
            assert!(new.uptime_s.unwrap() >= old.uptime_s.unwrap());
        }
    }
    // The leading root/ may be left out.
    client.restart("sampler").unwrap();
    let missing = client.restart("root/nope").unwrap_err().to_string();
    assert!(
        missing.contains("no child is named `nope`") && missing.contains("stats"),
        "{missing}"
    );
    let itself = client.restart("root/control").unwrap_err().to_string();
    assert!(itself.contains("does not restart itself"), "{itself}");

    // profile: with the `profiling` feature a pprof file next to the
    // socket, without it a refusal that says so.
    let profiled = client.profile_cpu(1);
    if cfg!(feature = "profiling") {
        let path = profiled.unwrap();
        assert_eq!(path.parent(), Some(dir.path()));
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.len() > 0);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    } else {
        let refused = profiled.unwrap_err().to_string();
        assert!(refused.contains("`profiling` feature"), "{refused}");
    }
    let kind = client
        .request(proc_daemon::ipc::Command::Profile {
            kind: "heap".into(),
            seconds: 1,
        })
        .unwrap_err()
        .to_string();
    assert!(kind.contains("`heap`"), "{kind}");

    // stop: the staged shutdown, exit 0, and the socket file is gone.
    client.stop().unwrap();
    let (code, _) = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(code, 0, "{}", daemon.log());
    daemon.expect_log("stop from the control socket (pid", Duration::from_secs(5));
    assert!(!socket.exists(), "the socket file is removed at exit");
    let unreachable = Client::connect(&socket).unwrap_err();
    assert_eq!(unreachable.exit_code(), 2);
}

#[test]
fn events_show_a_restart_while_it_happens() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("demo.sock");
    let mut daemon = start_demo(&socket);
    let stats_id = child(&connect(&socket).status().unwrap(), "root/stats").id;

    let mut events = connect(&socket).events().unwrap();
    connect(&socket).restart("root/stats").unwrap();
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("running") {
        let line = events.next().expect("the stream goes on").unwrap();
        assert_eq!(line.version, 1);
        if line.event.id == stats_id {
            assert_eq!(line.event.name, "stats");
            seen.push(line.event.state);
        }
        assert!(seen.len() < 10, "{seen:?}");
    }
    assert_eq!(seen, ["stopping", "restarting", "starting", "running"]);

    daemon.signal(libc::SIGTERM);
    // The stream shows the shutdown, then ends.
    let rest: Vec<String> = events
        .map(|line| line.unwrap())
        .filter(|line| line.event.id == stats_id)
        .map(|line| line.event.state)
        .collect();
    assert!(rest.contains(&"stopped".to_owned()), "{rest:?}");
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).0, 0);
}

/// Sends raw bytes, returns the reply line (empty if the connection was
/// closed without one).
fn raw_exchange(
    stream: &mut UnixStream,
    reader: &mut BufReader<UnixStream>,
    bytes: &[u8],
) -> String {
    stream.write_all(bytes).unwrap();
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    line
}

#[test]
fn malformed_oversized_and_concurrent_requests_leave_the_daemon_serving() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("demo.sock");
    let mut daemon = start_demo(&socket);

    // Malformed JSON, a wrong version, an unknown command: each gets an
    // error reply, and the connection keeps serving.
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for bad in [
        &b"{not json\n"[..],
        b"{\"version\":2,\"command\":\"status\"}\n",
        b"{\"version\":1,\"command\":\"explode\"}\n",
        b"\xff\xfe\n",
    ] {
        let reply: serde_json::Value =
            serde_json::from_str(&raw_exchange(&mut stream, &mut reader, bad)).unwrap();
        assert_eq!(reply["ok"], false, "{reply}");
        assert!(reply["error"].as_str().unwrap().len() > 10, "{reply}");
    }
    let reply: serde_json::Value = serde_json::from_str(&raw_exchange(
        &mut stream,
        &mut reader,
        b"{\"version\":1,\"command\":\"status\"}\n",
    ))
    .unwrap();
    assert_eq!(reply["ok"], true, "{reply}");

    // A 1 MiB line: refused after 64 KiB, and the connection is closed.
    let mut big = UnixStream::connect(&socket).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let line = vec![b'x'; 1 << 20];
    // The daemon stops reading at the limit: the write may fail part-way.
    let _ = big.write_all(&line);
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.contains("longer than 65536 bytes"), "{answer:?}");

    // 100 connections at once, each asking for the status: every one is
    // answered, by a status or by a `busy` refusal past the limit.
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut stream = UnixStream::connect(&socket).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let _ = stream.write_all(b"{\"version\":1,\"command\":\"status\"}\n");
                let mut line = String::new();
                BufReader::new(stream).read_line(&mut line).unwrap();
                let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
                reply["ok"].as_bool().unwrap()
                    || reply["error"].as_str().unwrap().starts_with("busy")
            })
        })
        .collect();
    for thread in threads {
        assert!(
            thread.join().unwrap(),
            "a reply that is neither a status nor busy"
        );
    }
    // Healthy afterwards.
    let status = connect(&socket).status().unwrap();
    assert!(
        status.tree.iter().all(|c| c.state == "running"),
        "{status:#?}"
    );
    drop((stream, reader, big));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).0, 0);
}

#[test]
fn a_live_socket_is_not_taken_and_a_stale_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("demo.sock");
    let mut first = start_demo(&socket);

    // A second daemon on the same path stops at start, in words.
    let second = std::process::Command::new(example_binary("comprehensive"))
        .env("DAEMON_CONTROL_SOCKET", &socket)
        .env("DAEMON_LOGGING_COLOR", "false")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("control.socket") && stderr.contains("a live daemon is serving"),
        "{stderr}"
    );
    // The first is untouched.
    assert_eq!(connect(&socket).status().unwrap().pid, first.child.id());

    // SIGKILL leaves the file behind; the next daemon takes it over.
    first.signal(libc::SIGKILL);
    first.wait_status(Duration::from_secs(10));
    assert!(socket.exists(), "a killed daemon leaves its socket");
    let mut third = start_demo(&socket);
    third.expect_log("taking over a stale control socket", Duration::from_secs(5));
    assert_eq!(connect(&socket).status().unwrap().pid, third.child.id());
    third.signal(libc::SIGTERM);
    assert_eq!(third.wait_exit(Duration::from_secs(20)).0, 0);
}

#[test]
fn a_symlink_at_the_socket_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, b"keep me").unwrap();
    let socket = dir.path().join("demo.sock");
    std::os::unix::fs::symlink(&target, &socket).unwrap();
    let out = std::process::Command::new(example_binary("comprehensive"))
        .env("DAEMON_CONTROL_SOCKET", &socket)
        .env("DAEMON_LOGGING_COLOR", "false")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a symlink"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}

/// What a client running as `uid` got: `Err(errno)` from `connect`, or
/// the daemon's reply (empty when it closed without one). Forks; the
/// child makes only system calls on memory prepared before the fork.
fn request_as_uid(socket: &Path, uid: libc::uid_t) -> Result<String, i32> {
    // SAFETY: zeroed sockaddr_un is a valid value (family set below).
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = socket.as_os_str().as_encoded_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (slot, byte) in addr.sun_path.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    let request = b"{\"version\":1,\"command\":\"status\"}\n";
    let mut pipe = [0; 2];
    // SAFETY: pipe(2) writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the child calls only async-signal-safe functions on memory
    // that exists before the fork, then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: as above; every pointer is to live memory of this frame.
        unsafe {
            libc::close(pipe[0]);
            if libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
                libc::_exit(3);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let rc = libc::connect(
                fd,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            );
            if rc != 0 {
                let errno = *libc::__errno_location();
                let marker = [b'E', errno as u8];
                libc::write(pipe[1], marker.as_ptr().cast(), 2);
                libc::_exit(0);
            }
            libc::send(
                fd,
                request.as_ptr().cast(),
                request.len(),
                libc::MSG_NOSIGNAL,
            );
            let mut buf = [0u8; 512];
            buf[0] = b'R';
            let n = libc::read(fd, buf[1..].as_mut_ptr().cast(), buf.len() - 1);
            let n = if n < 0 { 0 } else { n as usize };
            libc::write(pipe[1], buf.as_ptr().cast(), n + 1);
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's end of the pipe, owned from here on.
    unsafe { libc::close(pipe[1]) };
    let mut out = Vec::new();
    // SAFETY: pipe[0] is an open descriptor this process owns.
    let mut reader = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(pipe[0]) };
    reader.read_to_end(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child failed: {status}"
    );
    match out.split_first() {
        Some((b'E', errno)) => Err(i32::from(errno[0])),
        Some((b'R', reply)) => Ok(String::from_utf8_lossy(reply).into_owned()),
        _ => panic!("the child reported nothing: {out:?}"),
    }
}

#[test]
fn another_uid_is_refused_by_the_file_mode_and_by_the_peer_check() {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping to another uid needs root");
        return;
    }
    // A directory the other uid can enter, so only the socket's own mode
    // and the peer check stand in its way.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket: PathBuf = dir.path().join("demo.sock");
    let mut daemon = start_demo(&socket);
    const NOBODY: libc::uid_t = 65534;

    // Mode 0600: connecting needs write permission on the file.
    assert_eq!(request_as_uid(&socket, NOBODY), Err(libc::EACCES));

    // Opened up by mistake: the peer check still refuses, and logs it.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let reply = request_as_uid(&socket, NOBODY).expect("connects once the mode allows it");
    assert!(
        reply.contains("permission denied") && reply.contains("uid 65534"),
        "{reply:?}"
    );
    daemon.expect_log("control socket: connection refused", Duration::from_secs(5));
    // Root is served.
    assert_eq!(
        request_as_uid(&socket, 0).map(|r| r.contains("\"ok\":true")),
        Ok(true)
    );

    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).0, 0);
}

#[tokio::test]
async fn a_relative_socket_path_is_resolved_against_work_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = proc_daemon::Config::builder()
        .work_dir(dir.path())
        .control_socket("run/ctl.sock")
        .build()
        .unwrap();
    // The directory must exist: a missing one is an error at start that
    // names the key.
    let missing = proc_daemon::Daemon::builder(config.clone())
        .build()
        .unwrap_err();
    assert!(
        missing.to_string().contains("control.socket") && missing.to_string().contains("run"),
        "{missing}"
    );
    std::fs::create_dir(dir.path().join("run")).unwrap();
    let daemon = proc_daemon::Daemon::builder(config).build().unwrap();
    let expected = dir.path().join("run/ctl.sock");
    assert_eq!(daemon.control_socket(), Some(expected.as_path()));
    let status = tokio::task::spawn_blocking(move || connect(&expected).status())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.pid, std::process::id());
    assert_eq!(status.tree[0].path, "root/control");
    daemon.shutdown();
    daemon.run().await.unwrap();
    assert!(!dir.path().join("run/ctl.sock").exists());
}
