//! A daemon started from `#[async_std::main]`, with a TCP echo subsystem
//! built on async-std's `TcpListener` (feature `async-std`).
//!
//! ```text
//! cargo run --example async_std_tcp --features async-std
//! ```
//!
//! It listens on `127.0.0.1:0` (the system picks the port; the first line
//! says which), echoes each line back, and on SIGTERM or Ctrl-C stops
//! accepting, prints `echo stopped` and exits 0.
//!
//! async-std is discontinued upstream: prefer tokio for new code. This
//! shows what still works for a program that has async-std code.

use async_std::io::prelude::BufReadExt;
use async_std::io::{BufReader, WriteExt};
use async_std::net::{TcpListener, TcpStream};
use proc_daemon::prelude::*;

/// One connection: each line back as it came.
async fn echo(stream: TcpStream) -> std::io::Result<()> {
    let mut lines = BufReader::new(stream.clone()).lines();
    let mut writer = stream;
    while let Some(line) = async_std::stream::StreamExt::next(&mut lines).await {
        writer.write_all(format!("{}\n", line?).as_bytes()).await?;
    }
    Ok(())
}

enum Next {
    Connection(std::io::Result<TcpStream>),
    Shutdown,
}

#[async_std::main]
async fn main() {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("async_std_tcp: cannot listen: {err}");
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().expect("a bound address");
    let config = match Config::builder().name("async-std-tcp").build() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("async_std_tcp: {err}");
            std::process::exit(proc_daemon::Error::from(err).exit_code());
        }
    };
    let listener = std::sync::Arc::new(listener);
    let exit = Daemon::builder(config)
        .with_subsystem_fn("echo", move |mut shutdown| {
            let listener = listener.clone();
            async move {
                println!("listening on {addr}");
                loop {
                    // The subsystem runs on the daemon's executor; the
                    // async-std listener is driven by async-std's reactor.
                    let next = tokio::select! {
                        accepted = listener.accept() => Next::Connection(accepted.map(|(s, _)| s)),
                        () = shutdown.cancelled() => Next::Shutdown,
                    };
                    match next {
                        Next::Connection(Ok(stream)) => {
                            async_std::task::spawn(async move {
                                let _ = echo(stream).await;
                            });
                        }
                        Next::Connection(Err(err)) => return Err(err.into()),
                        Next::Shutdown => break,
                    }
                }
                println!("echo stopped");
                Ok(())
            }
        })
        .run()
        .await;
    std::process::exit(match exit {
        Ok(exit) => exit.exit_code(),
        Err(err) => {
            eprintln!("async_std_tcp: {err}");
            err.exit_code()
        }
    });
}
