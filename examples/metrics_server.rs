//! A daemon with its monitoring endpoint: a few actors do work, and
//! `/metrics`, `/livez` and `/readyz` show it.
//!
//! ```text
//! cargo run --example metrics_server --features "tokio metrics"
//! curl http://127.0.0.1:9090/metrics
//! ```
//!
//! It listens on `127.0.0.1:9090` unless `DAEMON_MONITORING_HTTP_LISTEN`
//! says otherwise (port 0 lets the system choose), prints the URL, and
//! stops on SIGTERM or Ctrl-C with exit code 0. A `counter` actor handles
//! a message every few milliseconds, a `flaky` one fails every two
//! seconds and is restarted, and the program records its own series
//! through [`MetricsCollector`] and the `metrics` facade. A `connections`
//! subsystem takes a second to close its connections at shutdown: meanwhile
//! `/readyz` answers 503, which is what a load balancer watches to stop
//! sending traffic before the daemon is gone.

use std::time::Duration;

use proc_daemon::metrics::MetricsCollector;
use proc_daemon::prelude::*;

/// Adds what it is sent.
struct Counter(u64);

impl Actor for Counter {}

struct Add(u64);

impl Handler<Add> for Counter {
    type Reply = u64;
    async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) -> u64 {
        self.0 += n;
        self.0
    }
}

/// Fails when told to, so that restarts show.
struct Flaky;

impl Actor for Flaky {}

struct Fail;

impl Handler<Fail> for Flaky {
    type Reply = ();
    async fn handle(&mut self, _fail: Fail, ctx: &mut Context<Self>) {
        ctx.fail("told to fail");
    }
}

#[tokio::main]
async fn main() {
    std::process::exit(match run().await {
        Ok(exit) => exit.exit_code(),
        Err(err) => {
            eprintln!("metrics_server: {err}");
            err.exit_code()
        }
    });
}

async fn run() -> Result<DaemonExit> {
    let config = Config::builder()
        .name("metrics-server")
        .enable_metrics(true)
        .track_resources(true)
        .http_listen(([127, 0, 0, 1], 9090).into())
        .build()?;
    let daemon = Daemon::builder(config)
        .with_subsystem_fn("connections", |mut shutdown| async move {
            shutdown.cancelled().await;
            println!("closing connections");
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .build()?;
    let addr = daemon
        .monitoring_addr()
        .expect("the config sets monitoring.http_listen");
    println!(
        "serving http://{addr}/metrics, /livez and /readyz (pid {})",
        std::process::id()
    );

    let counter = daemon
        .supervisor()
        .child("counter", || Counter(0))
        .spawn()
        .await?;
    let flaky = daemon
        .supervisor()
        .child("flaky", || Flaky)
        .restart(RestartPolicy::Always)
        .spawn()
        .await?;
    let collector = MetricsCollector::new();
    let mut shutdown = daemon.shutdown_handle();
    let _work = daemon.executor().spawn(async move {
        let mut ticks = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            ticks += 1;
            let began = std::time::Instant::now();
            if counter.ask(Add(1)).await.is_ok() {
                collector.record_histogram("request_latency_ms", began.elapsed());
            }
            collector.increment_counter("requests_total", 1);
            collector.set_gauge("active_connections", ticks % 50);
            metrics::counter!("example_ticks_total").increment(1);
            if ticks.is_multiple_of(400) {
                let _ = flaky.tell(Fail).await;
            }
        }
    });
    daemon.run().await
}
