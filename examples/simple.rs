//! The smallest daemon: one task that works every second until Ctrl-C or
//! SIGTERM, then cleans up. The API reference's "simple" example.
//!
//! ```text
//! cargo run --example simple
//! ```

use std::time::Duration;

use proc_daemon::{Config, Daemon, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::builder().name("simple").build()?;
    let exit = Daemon::builder(config)
        .with_task("worker", |mut shutdown| async move {
            let mut rounds = 0u64;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        rounds += 1;
                        tracing::info!(rounds, "working");
                    }
                }
            }
            tracing::info!(rounds, "worker: cleanup done");
            Ok(())
        })
        .run()
        .await?;
    println!("stopped: {}", exit.reason());
    Ok(())
}
