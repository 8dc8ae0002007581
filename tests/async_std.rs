//! async-std (feature `async-std`): a daemon run from
//! `async_std::task::block_on`, with no tokio context of the caller's, and
//! the `async_std_tcp` example (a TCP echo subsystem on async-std's
//! `TcpListener`, started from `#[async_std::main]`) answering and exiting
//! 0 on a real SIGTERM.
#![cfg(feature = "async-std")]

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use proc_daemon::prelude::*;

#[path = "fixtures/process.rs"]
mod process;
use process::{Process, example_binary};

#[test]
fn a_daemon_runs_from_async_std_block_on() {
    let exit = async_std::task::block_on(async {
        let config = Config::builder()
            .worker_threads(1)
            .ignore_env()
            .build()
            .unwrap();
        let daemon = Daemon::builder(config)
            .with_signal_config(SignalConfig::none())
            .with_subsystem_fn("waits", |mut shutdown| async move {
                shutdown.cancelled().await;
                Ok(())
            })
            .build()
            .unwrap();
        daemon.shutdown();
        async_std::future::timeout(Duration::from_secs(20), daemon.run())
            .await
            .expect("run returns within 20 s")
    })
    .expect("a clean stop");
    assert_eq!(exit.exit_code(), 0);
}

#[test]
fn the_async_std_tcp_example_echoes_and_stops_on_sigterm() {
    let mut daemon = Process::start(&example_binary("async_std_tcp"), &[], &[], "listening on ");
    let line = daemon.seen.last().unwrap().clone();
    let addr = line.trim_start_matches("listening on ").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"ping\n").unwrap();
    let mut answer = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut answer)
        .unwrap();
    assert_eq!(answer, "ping\n");
    daemon.signal(libc::SIGTERM);
    daemon.expect_line("echo stopped", Duration::from_secs(5));
    let (code, _) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{}", daemon.log());
}
