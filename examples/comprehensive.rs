//! The demo daemon: several subsystems, supervised actors exchanging typed
//! messages, a restart, events, and a clean stop on Ctrl-C (or SIGTERM).
//!
//! ```text
//! cargo run --example comprehensive                      # embedded defaults
//! cargo run --example comprehensive -- examples/daemon.toml
//! DAEMON_LOGGING_LEVEL=debug cargo run --example comprehensive
//! DAEMON_CONTROL_SOCKET=/tmp/demo.sock cargo run --example comprehensive
//! ```
//!
//! With a control socket, `cargo run --features ctl --bin proc-daemon-ctl --
//! --socket /tmp/demo.sock status` shows the tree below, and `restart
//! root/stats`, `events`, `reload`, `log-level debug` and `stop` act on it.
//!
//! What runs:
//!
//! ```text
//! DaemonActor                      signals -> messages
//! └── root supervisor
//!     ├── heartbeat   (with_task)          logs every 2 s until cancelled
//!     ├── flaky       (with_subsystem_fn)  fails once after 1.5 s; OnFailure restarts it
//!     ├── stats       (actor)              counts samples; answers Snapshot
//!     └── sampler     (actor, Always)      tells stats a Sample every 500 ms,
//!                                          asks it for a Snapshot every 2 s
//! ```
//!
//! Ctrl-C cancels every handle, stops the children in reverse order
//! (sampler, stats, flaky, heartbeat) and exits 0. A second Ctrl-C forces
//! the stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proc_daemon::SubsystemEvent;
use proc_daemon::prelude::*;

/// Counts samples by source.
#[derive(Default)]
struct Stats {
    samples: u64,
    total: u64,
}

impl Actor for Stats {
    async fn stopped(&mut self, _ctx: &mut Context<Self>, reason: &ExitReason) {
        tracing::info!(samples = self.samples, total = self.total, %reason, "stats stopped");
    }
}

/// A measurement (fire-and-forget).
struct Sample(u64);

impl Handler<Sample> for Stats {
    type Reply = ();
    async fn handle(&mut self, Sample(value): Sample, _ctx: &mut Context<Self>) {
        self.samples += 1;
        self.total += value;
    }
}

/// Asks for the totals so far.
struct Snapshot;

impl Handler<Snapshot> for Stats {
    type Reply = (u64, u64);
    async fn handle(&mut self, _: Snapshot, _ctx: &mut Context<Self>) -> (u64, u64) {
        (self.samples, self.total)
    }
}

/// Sends samples to whatever accepts them: it knows only the message
/// type, through a `Recipient<Sample>`, plus a typed ref for snapshots.
struct Sampler {
    samples: Recipient<Sample>,
    stats: ActorRef<Stats>,
    ticks: u64,
    /// The timer task, stopped with the actor: a task left behind would
    /// keep the executor busy until its next tick.
    timer: Option<proc_daemon::actors::executor::JoinHandle<()>>,
}

/// The sampler's own timer tick.
struct Tick;

impl Actor for Sampler {
    async fn started(&mut self, ctx: &mut Context<Self>) -> std::result::Result<(), BoxError> {
        // A timer task that messages the actor; `stopped` ends it.
        let me = ctx.actor_ref().clone();
        self.timer = Some(ctx.executor().spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            every.tick().await;
            loop {
                every.tick().await;
                if me.tell(Tick).await.is_err() {
                    break;
                }
            }
        }));
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

impl Handler<Tick> for Sampler {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _ctx: &mut Context<Self>) {
        self.ticks += 1;
        let value = self.ticks;
        let _ = self.samples.tell(Sample(value)).await;
        if self.ticks.is_multiple_of(4) {
            match self
                .stats
                .ask(Snapshot)
                .timeout(Duration::from_secs(1))
                .await
            {
                Ok((samples, total)) => tracing::info!(samples, total, "stats snapshot"),
                Err(err) => tracing::warn!(%err, "stats did not answer"),
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let code = match run().await {
        Ok(exit) => {
            println!(
                "stopped: {} in {:?}; stopped in order: {:?}",
                exit.reason(),
                exit.elapsed(),
                exit.report().stopped
            );
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
    let mut config = Config::builder();
    if let Some(path) = std::env::args().nth(1) {
        config = config.file(path);
    }
    let config = config.build()?;
    let failed_once = Arc::new(AtomicBool::new(false));

    let daemon = Daemon::builder(config)
        .with_task("heartbeat", |mut shutdown| async move {
            let started = Instant::now();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {
                        tracing::info!(uptime = ?started.elapsed(), "heartbeat");
                    }
                }
            }
            tracing::info!(left = ?shutdown.time_remaining(), "heartbeat: cleanup done");
            Ok(())
        })
        .with_subsystem_fn("flaky", move |mut shutdown| {
            let failed_once = failed_once.clone();
            async move {
                if !failed_once.load(Ordering::SeqCst) {
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(1500)) => {}
                    }
                    failed_once.store(true, Ordering::SeqCst);
                    return Err(Error::subsystem(
                        "flaky",
                        "a simulated failure; it is restarted",
                    ));
                }
                shutdown.cancelled().await;
                tracing::info!("flaky: cleanup done");
                Ok(())
            }
        })
        .build()?;

    // Print the tree's state changes as they happen.
    let mut events = daemon.subsystems().subscribe();
    drop(daemon.executor().spawn(async move {
        while let Some(SubsystemEvent::StateChanged { name, state, .. }) = events.recv().await {
            tracing::info!(subsystem = %name, ?state, "state changed");
        }
    }));

    let stats = daemon
        .supervisor()
        .child("stats", Stats::default)
        .mailbox(daemon.mailbox_options())
        .spawn()
        .await?;
    let samples = stats.clone().recipient::<Sample>();
    daemon
        .supervisor()
        .child("sampler", move || Sampler {
            samples: samples.clone(),
            stats: stats.clone(),
            ticks: 0,
            timer: None,
        })
        .restart(RestartPolicy::Always)
        .spawn()
        .await?;

    println!(
        "{} running as pid {}; press Ctrl-C to stop",
        daemon.config().name,
        std::process::id()
    );
    if let Some(socket) = daemon.control_socket() {
        println!(
            "control socket at {}: try `proc-daemon-ctl --socket {} status`",
            socket.display(),
            socket.display()
        );
    }
    daemon.run().await
}
