//! `performance.memory_pool_size` sizes the process's message pool, and
//! messages between the daemon's actors come from it. A file of its own:
//! the pool is fixed at a process's first message, so no other test may
//! run in this process first.

use std::time::Duration;

use proc_daemon::SignalConfig;
use proc_daemon::actors::pool;
use proc_daemon::prelude::*;

struct Echo;
impl Actor for Echo {}
struct Say(u64);
impl Handler<Say> for Echo {
    type Reply = u64;
    async fn handle(&mut self, Say(n): Say, _ctx: &mut Context<Self>) -> u64 {
        n
    }
}

#[tokio::test]
async fn the_configured_pool_serves_the_daemons_messages() {
    let config = Config::builder()
        .memory_pool_size(256 * 1024)
        .worker_threads(1)
        .ignore_env()
        .build()
        .unwrap();
    let daemon = Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .build()
        .unwrap();
    assert_eq!(pool::stats().installed_bytes, 256 * 1024);
    let before = pool::stats().hits;
    let echo = tokio::time::timeout(
        Duration::from_secs(10),
        daemon.supervisor().child("echo", || Echo).spawn(),
    )
    .await
    .expect("spawned in time")
    .unwrap();
    for n in 0..100 {
        echo.tell(Say(n)).await.unwrap();
    }
    assert_eq!(echo.ask(Say(7)).await.unwrap(), 7);
    // Each tell and ask: an envelope and a handling future.
    assert!(pool::stats().hits >= before + 202, "{:?}", pool::stats());
    daemon.shutdown();
    tokio::time::timeout(Duration::from_secs(10), daemon.run())
        .await
        .expect("stopped in time")
        .unwrap();
}
