//! Socket activation: two subsystems, each serving on a listener that
//! systemd passed by name, or, run by hand, on an address of its own.
//!
//! ```text
//! cargo build --example socket_activation
//! systemd-socket-activate -l 127.0.0.1:8080 -l 127.0.0.1:8081 --fdname=http:admin \
//!     target/debug/examples/socket_activation
//! curl -s 127.0.0.1:8080      # the first connection starts the daemon
//! echo hi | nc -q1 127.0.0.1 8081
//! cargo run --example socket_activation -- 127.0.0.1:8080 127.0.0.1:8081   # not activated
//! ```
//!
//! - `http` answers every connection with a one-line HTTP response;
//! - `admin` answers each line with `admin: <line>`.
//!
//! Under systemd the units are a `.socket` with `ListenStream=8080`,
//! `FileDescriptorName=http` (and another for `admin`), and the service
//! (docs/deploy/systemd.md).

use std::sync::Arc;

use proc_daemon::prelude::*;
use proc_daemon::service;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main]
async fn main() {
    let code = match run().await {
        Ok(exit) => exit.exit_code(),
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}

async fn run() -> Result<proc_daemon::DaemonExit> {
    let mut args = std::env::args().skip(1);
    let http_addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let admin_addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    // Taken before the daemon starts; shared by every incarnation of the
    // subsystem that serves it (a restart keeps the socket).
    let http = Arc::new(service::tcp_listener("http", &*http_addr)?);
    let admin = Arc::new(service::tcp_listener("admin", &*admin_addr)?);
    println!(
        "http on {}, admin on {}",
        http.local_addr()?,
        admin.local_addr()?
    );

    let daemon = Daemon::builder(Config::new()?)
        .with_task("http", move |mut shutdown| {
            let http = http.clone();
            async move {
                let listener = tokio::net::TcpListener::from_std(http.try_clone()?)?;
                loop {
                    let (stream, _) = tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        accepted = listener.accept() => accepted?,
                    };
                    drop(tokio::spawn(async move {
                        // The request's head first: closing a socket with
                        // unread bytes resets the connection.
                        let mut stream = BufReader::new(stream);
                        let mut line = String::new();
                        while stream.read_line(&mut line).await.is_ok_and(|n| n > 0)
                            && line.trim_end() != ""
                        {
                            line.clear();
                        }
                        let body = format!("hello from http (pid {})\n", std::process::id());
                        let response = format!(
                            "HTTP/1.0 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.get_mut().write_all(response.as_bytes()).await;
                    }));
                }
            }
        })
        .with_task("admin", move |mut shutdown| {
            let admin = admin.clone();
            async move {
                let listener = tokio::net::TcpListener::from_std(admin.try_clone()?)?;
                loop {
                    let (stream, _) = tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        accepted = listener.accept() => accepted?,
                    };
                    drop(tokio::spawn(async move {
                        let (read, mut write) = stream.into_split();
                        let mut lines = BufReader::new(read).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if write
                                .write_all(format!("admin: {line}\n").as_bytes())
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    }));
                }
            }
        })
        .build()?;
    println!("running as pid {}", std::process::id());
    daemon.run().await
}
