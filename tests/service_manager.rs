//! The service-manager protocols against real processes: systemd's
//! notifications read from a `NOTIFY_SOCKET` this test binds (start,
//! reloads valid and invalid, shutdown; the watchdog healthy, then
//! wedged), and s6's readiness under a real `s6-supervise`.
//!
//! The s6 test needs s6 (`apt-get install s6`); without `s6-supervise` on
//! PATH it is skipped with a message, unless `PROC_DAEMON_REQUIRE_SERVICE_TOOLS` is
//! set, as `.ci/run` does, which makes a missing s6 a failure.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

/// A `NOTIFY_SOCKET` of the test's own.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
        }
    }

    /// The next datagram, within `within`.
    fn next(&self, within: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    fn expect(&self, what: &str) -> String {
        self.next(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no notification for {what}"))
    }
}

fn config_file(dir: &Path, level: &str) -> PathBuf {
    let path = dir.join("daemon.toml");
    std::fs::write(
        &path,
        format!(
            "[logging]\nlevel = \"{level}\"\n\n[shutdown]\ntimeout_ms = 2000\nforce_timeout_ms = 3000\nkill_timeout_ms = 4000\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn systemd_hears_ready_reloading_and_stopping_in_order() {
    let notify = NotifySocket::bind();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "info");
    let mut daemon = Process::start(
        &example_binary("comprehensive"),
        &[config.to_str().unwrap()],
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
        "proc-daemon running as pid",
    );

    let ready = notify.expect("readiness");
    assert!(
        ready.starts_with("READY=1\nSTATUS=") && ready.ends_with("; no reload yet\n"),
        "{ready:?}"
    );
    assert!(ready.contains("children running, 0 restarts"), "{ready:?}");

    // A valid reload: RELOADING with the monotonic clock, then READY.
    config_file(dir.path(), "debug");
    daemon.signal(libc::SIGHUP);
    let reloading = notify.expect("a reload");
    let usec: u64 = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{reloading:?}"))
        .parse()
        .unwrap();
    assert!(usec > 0);
    let done = notify.expect("the reload's end");
    assert!(
        done.starts_with("READY=1\nSTATUS=")
            && done.ends_with("; last reload applied (logging.level)\n"),
        "{done:?}"
    );

    // An invalid one: the same two, and the error in the status.
    std::fs::write(&config, "[logging\nlevel = ").unwrap();
    daemon.signal(libc::SIGHUP);
    assert!(
        notify
            .expect("a reload")
            .starts_with("RELOADING=1\nMONOTONIC_USEC=")
    );
    let failed = notify.expect("the failed reload's end");
    assert!(
        failed.starts_with("READY=1\nSTATUS=") && failed.contains("; last reload failed: "),
        "{failed:?}"
    );
    assert_eq!(failed.lines().count(), 2, "STATUS is one line: {failed:?}");

    // Shutdown: STOPPING, and time up to the kill stage (4 s).
    daemon.signal(libc::SIGTERM);
    assert_eq!(
        notify.expect("the shutdown"),
        "STOPPING=1\nEXTEND_TIMEOUT_USEC=4000000\n"
    );
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).0, 0);
    // And nothing else: no watchdog was asked for.
    assert_eq!(notify.next(Duration::from_millis(200)), None);
}

#[test]
fn the_watchdog_is_petted_while_healthy_and_not_once_wedged() {
    let notify = NotifySocket::bind();
    let mut daemon = Process::start(
        &example_binary("shutdown_scenarios"),
        &["--subsystems", "2", "--wedge-after-ms", "1500"],
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
            ("DAEMON_PERFORMANCE_WORKER_THREADS", "2"),
        ],
        "ready pid=",
    );
    let started = Instant::now();
    let mut pets = Vec::new();
    // Healthy: a pet every 100 ms.
    while started.elapsed() < Duration::from_millis(1200) {
        if let Some(message) = notify.next(Duration::from_millis(500)) {
            if message == "WATCHDOG=1\n" {
                pets.push(started.elapsed());
            } else {
                assert!(message.starts_with("READY=1\n"), "{message:?}");
            }
        }
    }
    assert!(
        pets.len() >= 8,
        "only {} pets in 1.2 s: {pets:?}",
        pets.len()
    );
    // Wedged from 1.5 s: after one interval at most, no more pets.
    daemon.expect_line("wedging the control worker", Duration::from_secs(10));
    let wedged = Instant::now();
    let mut late = Vec::new();
    while wedged.elapsed() < Duration::from_millis(1500) {
        if let Some(message) = notify.next(Duration::from_millis(200)) {
            late.push((wedged.elapsed(), message));
        }
    }
    assert!(
        late.iter().all(|(at, _)| *at < Duration::from_millis(200)),
        "petted while wedged: {late:?}"
    );
    daemon.expect_log(
        "not healthy: systemd's watchdog is not petted",
        Duration::from_secs(5),
    );
    // Process's drop kills it.
}

#[test]
fn a_daemon_with_a_watchdog_stops_cleanly_and_stops_petting() {
    let notify = NotifySocket::bind();
    let mut daemon = Process::start(
        &example_binary("shutdown_scenarios"),
        &["--subsystems", "1"],
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
        "ready pid=",
    );
    let mut pets = 0;
    while pets < 2 {
        let message = notify.expect("a pet");
        pets += usize::from(message == "WATCHDOG=1\n");
    }
    daemon.signal(libc::SIGTERM);
    loop {
        let message = notify.expect("the shutdown");
        if message.starts_with("STOPPING=1\n") {
            break;
        }
        assert_eq!(message, "WATCHDOG=1\n");
    }
    // The watchdog's task ends with the shutdown: a clean, prompt exit.
    let (code, took) = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(code, 0, "{}", daemon.log());
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(notify.next(Duration::from_millis(300)), None);
}

#[test]
fn systemds_variables_do_not_leak_into_child_processes() {
    // shutdown_scenarios runs on a current-thread runtime, so the process
    // has one thread when the daemon reads the variables: they are
    // removed (see src/service/mod.rs).
    let notify = NotifySocket::bind();
    let mut daemon = Process::start(
        &example_binary("shutdown_scenarios"),
        &["--child-env"],
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "5000000"),
        ],
        "ready pid=",
    );
    assert!(
        daemon.saw("child env: NOTIFY_SOCKET=unset WATCHDOG_USEC=unset LISTEN_FDS=unset"),
        "{:?}",
        daemon.seen
    );
    // The daemon itself still notifies.
    assert!(notify.expect("readiness").starts_with("READY=1\n"));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).0, 0);
}

#[test]
fn a_watchdog_for_another_pid_is_not_petted() {
    let notify = NotifySocket::bind();
    let mut daemon = Process::start(
        &example_binary("shutdown_scenarios"),
        &["--subsystems", "1"],
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "100000"),
            ("WATCHDOG_PID", "1"),
        ],
        "ready pid=",
    );
    assert!(notify.expect("readiness").starts_with("READY=1\n"));
    assert_eq!(notify.next(Duration::from_millis(400)), None);
    daemon.signal(libc::SIGTERM);
    assert!(notify.expect("the shutdown").starts_with("STOPPING=1\n"));
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).0, 0);
}

#[test]
fn a_notification_fd_that_is_not_open_is_an_error_at_start() {
    let out = Command::new(example_binary("comprehensive"))
        .env("DAEMON_SERVICE_NOTIFICATION_FD", "97")
        .env("DAEMON_LOGGING_COLOR", "false")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("service.notification_fd") && stderr.contains("fd 97 is not open"),
        "{stderr}"
    );
    let out = Command::new(example_binary("comprehensive"))
        .env("DAEMON_SERVICE_NOTIFICATION_FD", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be 3 or more"),
        "{out:?}"
    );
}

fn s6(tool: &str, args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(tool).args(args).arg(dir).output().unwrap()
}

#[test]
fn s6_svwait_returns_once_ready_and_s6_svc_stops_it_cleanly() {
    if process::service_tool("s6-supervise", "s6").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let service = dir.path().join("demo");
    std::fs::create_dir(&service).unwrap();
    let run = service.join("run");
    std::fs::write(
        &run,
        format!(
            "#!/bin/sh\nexec env DAEMON_SERVICE_NOTIFICATION_FD=3 DAEMON_LOGGING_COLOR=false {} 2>{}\n",
            example_binary("comprehensive").display(),
            dir.path().join("daemon.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(service.join("notification-fd"), "3\n").unwrap();

    let mut supervise = Command::new("s6-supervise").arg(&service).spawn().unwrap();
    struct Stop<'a>(&'a Path, &'a mut std::process::Child);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = Command::new("s6-svc").arg("-xd").arg(self.0).output();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.1.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.1.kill();
            let _ = self.1.wait();
        }
    }
    let stop = Stop(&service, &mut supervise);

    // -U: up and ready, which only the daemon's newline says.
    let started = Instant::now();
    let up = s6("s6-svwait", &["-U", "-t", "20000"], &service);
    assert!(up.status.success(), "{up:?}");
    let status = String::from_utf8_lossy(&s6("s6-svstat", &[], &service).stdout).into_owned();
    assert!(
        status.starts_with("up ") && status.contains("ready"),
        "{status}"
    );
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        log.contains("daemon running"),
        "ready before the daemon ran? {log}"
    );
    eprintln!("ready after {:?}", started.elapsed());

    // -d: SIGTERM (then SIGCONT); the daemon's clean stop is exit 0.
    assert!(s6("s6-svc", &["-d"], &service).status.success());
    let down = s6("s6-svwait", &["-D", "-t", "20000"], &service);
    assert!(down.status.success(), "{down:?}");
    let status = String::from_utf8_lossy(&s6("s6-svstat", &[], &service).stdout).into_owned();
    assert!(status.starts_with("down (exitcode 0)"), "{status}");
    drop(stop);
}
