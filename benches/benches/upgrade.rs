//! Upgrades with zero dropped connections, timed: how long an upgrade
//! takes (from the `upgrade` request to the reply that the new process is
//! ready), and the longest gap in answered connections around it, under
//! load, against the same gap in a window with no upgrade.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench upgrade
//! cargo bench -p proc-daemon-benches --bench upgrade -- --upgrades 20 --json target/upgrade.json
//! ```
//!
//! The binary runs itself as the daemon (with `UPGRADE_BENCH_DAEMON` set):
//! a TCP echo server on `service::tcp_listener("echo", ...)` with a control
//! socket, as `examples/zero_downtime.rs`. The driver runs 4 clients that
//! open a connection, exchange one line and close, in a loop, and asks
//! for `--upgrades` upgrades, 300 ms apart; each upgrade starts this same
//! binary again. Every exchange is checked: a refused connection, an
//! error or a wrong echo is a failure, reported (and expected to be 0).
//!
//! The gap around an upgrade is the longest time between two answered
//! connections from 50 ms before the request to 200 ms after the reply;
//! the baseline is the same measure over a window as long with no
//! upgrade, before the first one. There is no peer row: no other Rust
//! daemon framework hands its listeners over.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proc_daemon::ipc::Client;
use proc_daemon_benches::{arg_or, percentile, write_json_results};

const DAEMON: &str = "UPGRADE_BENCH_DAEMON";

fn main() {
    if std::env::var_os(DAEMON).is_some() {
        daemon();
    } else {
        drive();
    }
}

/// The echo daemon (see the module docs).
fn daemon() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let code = runtime.block_on(async {
        let echo = Arc::new(proc_daemon::service::tcp_listener("echo", "127.0.0.1:0")?);
        // The driver reads the first daemon's line; a successor's goes to
        // the same pipe, and an error writing it is not the daemon's.
        let _ = writeln!(std::io::stdout(), "port {}", echo.local_addr()?.port());
        let daemon = proc_daemon::Daemon::builder(proc_daemon::Config::new()?)
            .with_task("echo", move |mut shutdown| {
                let echo = echo.clone();
                async move {
                    let listener = tokio::net::TcpListener::from_std(echo.try_clone()?)?;
                    let mut connections = tokio::task::JoinSet::new();
                    loop {
                        let (stream, _) = tokio::select! {
                            _ = shutdown.cancelled() => break,
                            accepted = listener.accept() => accepted?,
                        };
                        connections.spawn(async move {
                            use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
                            let (read, mut write) = stream.into_split();
                            let mut lines = tokio::io::BufReader::new(read).lines();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if write
                                    .write_all(format!("{line}\n").as_bytes())
                                    .await
                                    .is_err()
                                {
                                    break;
                                }
                            }
                        });
                    }
                    drop(listener);
                    while connections.join_next().await.is_some() {}
                    Ok(())
                }
            })
            .build()?;
        daemon.run().await.map(|exit| exit.exit_code())
    });
    std::process::exit(code.unwrap_or_else(|err: proc_daemon::Error| {
        eprintln!("upgrade bench daemon: {err}");
        err.exit_code()
    }));
}

#[derive(Default)]
struct Load {
    stop: AtomicBool,
    connections: AtomicU64,
    failures: AtomicU64,
    answered: Mutex<Vec<Instant>>,
}

fn client(port: u16, id: usize, load: Arc<Load>) {
    let mut n = 0u64;
    while !load.stop.load(Ordering::Relaxed) {
        n += 1;
        let answered = (|| -> std::io::Result<bool> {
            let mut stream = TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            let line = format!("client {id} connection {n}\n");
            stream.write_all(line.as_bytes())?;
            let mut echoed = String::new();
            BufReader::new(stream).read_line(&mut echoed)?;
            Ok(echoed == line)
        })();
        load.connections.fetch_add(1, Ordering::Relaxed);
        match answered {
            Ok(true) => load.answered.lock().unwrap().push(Instant::now()),
            _ => {
                load.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The longest gap between answered connections within `[from, to]`.
fn longest_gap(answered: &[Instant], from: Instant, to: Instant) -> Duration {
    let inside: Vec<Instant> = answered
        .iter()
        .copied()
        .filter(|at| (from..=to).contains(at))
        .collect();
    inside
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or(to - from)
}

fn drive() {
    let upgrades: usize = arg_or("--upgrades", 5);
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag.
    let subreaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(subreaper, 0, "become the subreaper of the old daemons");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let socket = dir.path().join("echo.sock");
    let mut first = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .env(DAEMON, "1")
        .env("DAEMON_CONTROL_SOCKET", &socket)
        .env("DAEMON_LOGGING_LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let mut port_line = String::new();
    let mut stdout = BufReader::new(first.stdout.take().expect("piped"));
    stdout.read_line(&mut port_line).expect("the daemon's port");
    // The successors write to the same pipe: keep reading it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let port: u16 = port_line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .expect("`port N`");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Client::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "the control socket never came up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let load = Arc::new(Load::default());
    let clients: Vec<_> = (0..4)
        .map(|id| {
            let load = load.clone();
            std::thread::spawn(move || client(port, id, load))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A window as long as an upgrade's, with no upgrade in it.
    let baseline_from = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let baseline_to = Instant::now();

    let mut windows = Vec::new();
    let mut took = Vec::new();
    for round in 0..upgrades {
        let asked = Instant::now();
        let pid = Client::connect(&socket)
            .expect("the control socket")
            .upgrade(None)
            .unwrap_or_else(|err| panic!("upgrade {round}: {err}"));
        let ready = Instant::now();
        took.push(ready - asked);
        windows.push((
            asked - Duration::from_millis(50),
            ready + Duration::from_millis(200),
        ));
        let _ = pid;
        std::thread::sleep(Duration::from_millis(300));
        // Reap whichever old daemons have exited.
        // SAFETY: waitpid(-1, WNOHANG) on this process's children, with a
        // null status pointer.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }
    load.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client thread");
    }
    let _ = Client::connect(&socket).and_then(|mut c| c.stop());
    let deadline = Instant::now() + Duration::from_secs(20);
    // SAFETY: as above.
    while Instant::now() < deadline && unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
    let _ = first.wait();

    let mut answered = load.answered.lock().unwrap().clone();
    answered.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut gaps: Vec<Duration> = windows
        .iter()
        .map(|&(from, to)| longest_gap(&answered, from, to))
        .collect();
    gaps.sort();
    took.sort();
    let took_ms = (
        ms(percentile(&took, 0.5)),
        ms(*took.last().expect("an upgrade")),
    );
    let gap_ms = (
        ms(percentile(&gaps, 0.5)),
        ms(*gaps.last().expect("an upgrade")),
    );
    let baseline = ms(longest_gap(&answered, baseline_from, baseline_to));
    let connections = load.connections.load(Ordering::Relaxed);
    let failures = load.failures.load(Ordering::Relaxed);
    println!("{upgrades} upgrades under load (4 clients, a connection per exchange)");
    println!(
        "  upgrade time        median {:8.1} ms   max {:8.1} ms",
        took_ms.0, took_ms.1
    );
    println!(
        "  longest gap around  median {:8.1} ms   max {:8.1} ms   (baseline, no upgrade: {baseline:.1} ms)",
        gap_ms.0, gap_ms.1
    );
    println!("  {connections} connections, {failures} failures");
    write_json_results(&serde_json::json!({
        "upgrades": upgrades,
        "connections": connections,
        "failures": failures,
        "took_ms": { "median": took_ms.0, "max": took_ms.1 },
        "gap_ms": { "median": gap_ms.0, "max": gap_ms.1 },
        "baseline_gap_ms": baseline,
    }));
}
