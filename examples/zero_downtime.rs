//! A TCP echo server that upgrades itself with zero dropped connections.
//!
//! ```text
//! cargo build --example zero_downtime --features ctl
//! DAEMON_CONTROL_SOCKET=/tmp/echo.sock target/debug/examples/zero_downtime 127.0.0.1:7000 &
//! echo hi | nc -q1 127.0.0.1 7000                  # echo: hi (pid 4242)
//! cargo build --example zero_downtime --features ctl    # a new binary at the same path
//! cargo run --features ctl --bin proc-daemon-ctl -- --socket /tmp/echo.sock upgrade
//! echo hi | nc -q1 127.0.0.1 7000                  # served by the new pid
//! ```
//!
//! The listener comes from `service::tcp_listener("echo", ...)`: the one an
//! upgrading predecessor (or systemd) passed, else a new one. Every line
//! is echoed back as `echo: <line> (pid N)`. An upgrade starts the same
//! path again with the same arguments; the new process takes the socket,
//! says it is ready, and the old one stops accepting, finishes the
//! connections it has, and exits 0 (docs/deploy/systemd.md, "Upgrades").

use std::sync::Arc;

use proc_daemon::prelude::*;
use proc_daemon::service;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main]
async fn main() {
    let code = match run().await {
        Ok(exit) => {
            println!("stopped: {}", exit.reason());
            exit.exit_code()
        }
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}

async fn run() -> Result<proc_daemon::DaemonExit> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_owned());
    let echo = Arc::new(service::tcp_listener("echo", &*addr)?);
    let pid = std::process::id();
    println!("echo on {} (pid {pid})", echo.local_addr()?);

    let daemon = Daemon::builder(Config::new()?)
        .with_task("echo", move |mut shutdown| {
            let echo = echo.clone();
            async move {
                let listener = tokio::net::TcpListener::from_std(echo.try_clone()?)?;
                let mut connections = tokio::task::JoinSet::new();
                loop {
                    let (stream, _) = tokio::select! {
                        // Stop accepting; the connections in hand finish
                        // (the new process accepts the next ones).
                        _ = shutdown.cancelled() => break,
                        accepted = listener.accept() => accepted?,
                    };
                    connections.spawn(async move {
                        let (read, mut write) = stream.into_split();
                        let mut lines = BufReader::new(read).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let reply = format!("echo: {line} (pid {pid})\n");
                            if write.write_all(reply.as_bytes()).await.is_err() {
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
    println!("ready (pid {pid})");
    daemon.run().await
}
